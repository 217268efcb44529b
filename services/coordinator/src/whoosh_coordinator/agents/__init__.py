"""Agents: registration, updates, removal, weights and probes; the Agent aggregate and
the dry-run finder (a bounded context of the coordinator)."""
