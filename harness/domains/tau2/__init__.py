"""τ²-bench's retail, airline and telecom domains, through τ²'s own environment and evaluator."""
