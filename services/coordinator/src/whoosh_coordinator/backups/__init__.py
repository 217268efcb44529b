"""Backup and restore of the event store (the source of truth: every projection, the
relay's position and the JetStream streams can be rebuilt from it)."""
