"""Experiment trackers that mirror a job's local outputs (W&B); `conversations.jsonl` stays the truth."""
