"""The environments the harness runs: τ-bench (`taubench`) and τ²-bench (`tau2`)."""

from harness.domains.base import Domain, Outcome

__all__ = ["Domain", "Outcome"]
