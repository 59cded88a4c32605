"""Model backends. Each module imports its optional dependency only when built."""
