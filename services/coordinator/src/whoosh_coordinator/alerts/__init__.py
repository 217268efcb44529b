"""Alerts: raised and resolved from the monitor's rules, acknowledged by humans; the Alert
aggregate and its projection (a bounded context of the coordinator)."""
