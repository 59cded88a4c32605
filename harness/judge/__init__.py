"""The LLM judge of the simulated user: emotion per user turn, fidelity to the instruction per conversation."""
