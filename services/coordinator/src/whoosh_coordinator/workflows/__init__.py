"""Workflows: durable DAGs of agent steps (definitions, executions, templates, n8n import).

`definition` (the native format and its checks), `templates` (the expression language),
`readiness` (trigger rules), `control` (steps the coordinator runs itself), `domain`
(the Workflow and Execution aggregates), `commands` (handlers, the task-end listener,
timers), `projection` (read models), `n8n` (import of n8n exports).
"""
