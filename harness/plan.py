"""`python -m harness.plan SWEEP_DIR`: the MDE and cost of each planned trial count, from a pilot sweep."""

import sys

from harness.report.plan_command import main

if __name__ == "__main__":
    sys.exit(main())
