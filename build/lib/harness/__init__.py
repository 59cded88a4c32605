"""tau-emotion: τ-bench customer-service agents against emotional simulated users."""

__version__ = "0.1.0"
