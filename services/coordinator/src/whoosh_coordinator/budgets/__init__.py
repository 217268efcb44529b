"""Budgets: token and USD limits reserved at assignment and charged at a task's end
(a bounded context of the coordinator)."""
