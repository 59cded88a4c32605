"""`python -m harness.sweep outputs/sweeps/<name>`: recompute and print a sweep's manifest."""

import sys

from harness.cluster.manifest import main

if __name__ == "__main__":
    sys.exit(main())
