"""Per-conversation analysis read from the records: failure anatomy and agent behaviour."""
