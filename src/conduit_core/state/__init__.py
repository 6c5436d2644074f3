"""Persistent state beside ingest.yml: run history (and, later, checkpoints)."""
