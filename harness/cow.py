"""Old import path; the copy-on-write views live in `harness.domains.taubench.cow`."""

from harness.domains.taubench.cow import CowDict, CowList, is_pristine, to_plain

__all__ = ["CowDict", "CowList", "is_pristine", "to_plain"]
