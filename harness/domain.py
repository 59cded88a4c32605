"""Old import path of τ-bench's domain adapter; it lives in `harness.domains.taubench.domain`."""

from harness.domains.taubench.datahash import DataHasher, data_hash, to_hashable
from harness.domains.taubench.domain import Reward, TaskLike, TauBenchDomain, ToolLike

Domain = TauBenchDomain

__all__ = [
    "DataHasher",
    "Domain",
    "Reward",
    "TaskLike",
    "TauBenchDomain",
    "ToolLike",
    "data_hash",
    "to_hashable",
]
