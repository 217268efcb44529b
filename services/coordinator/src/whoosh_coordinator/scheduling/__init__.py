"""Scheduling: which agent runs a task and when. Pure rules (eligibility, ranking by
estimated completion, weights, fair share between keys, lookahead, admission at submit,
explanations); the coordinator's core applies them (assignment.py, dispatch.py)."""
