"""Old import path; τ-bench's database hash lives in `harness.domains.taubench.datahash`."""

from harness.domains.taubench.datahash import DataHasher, data_hash, to_hashable

__all__ = ["DataHasher", "data_hash", "to_hashable"]
