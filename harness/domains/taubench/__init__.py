"""τ-bench's retail and airline domains; `cow` and `datahash` are its private machinery."""
