"""Old import path of τ-bench's loader; it lives in `harness.domains.taubench.loader`."""

from harness.domains.taubench.loader import (
    INSTALL_HINT,
    SPLITS,
    TASK_LISTS,
    TAU_BENCH_COMMIT,
    load_taubench_domain,
    taubench_available,
)

__all__ = [
    "INSTALL_HINT",
    "SPLITS",
    "TASK_LISTS",
    "TAU_BENCH_COMMIT",
    "load_taubench_domain",
    "taubench_available",
]
