"""Threads: agents asked in rounds, answers parsed into votes, a deterministic tally,
escalation rules and human decisions (a bounded context of the coordinator)."""
