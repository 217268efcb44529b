"""Prompts: the two workflows a host offers its user as commands."""

from __future__ import annotations

from typing import Any

from mcp.server import MCPServer


def register_prompts(server: MCPServer[Any]) -> None:
    @server.prompt()
    def whoosh_delegate(goal: str, capabilities: str = "") -> str:
        """Hand a piece of work to the WHOOSH fleet and report the result."""
        needs = f" It needs these capabilities: {capabilities}." if capabilities else ""
        return (
            f"Delegate this work to the WHOOSH fleet: {goal}{needs}\n\n"
            "1. Call whoosh_find_agents with the capabilities to see which agents could run "
            "it and why others cannot; if none can, say so and stop.\n"
            "2. Call whoosh_submit_task with a self-contained prompt (the agent sees nothing "
            "else), the capabilities, and an idempotency_key so a retry cannot run it twice.\n"
            "3. Call whoosh_wait_task with the task id until `ended` is true (each call waits "
            "at most a few minutes; waiting again is safe and never cancels the task).\n"
            "4. Summarise the outcome: status, agent, and the essential part of the output. If "
            "the output was truncated, read the resource whoosh://tasks/{id}/output for the rest."
        )

    @server.prompt()
    def whoosh_debug_task(task_id: str) -> str:
        """Find out why a WHOOSH task failed, timed out or is stuck."""
        return (
            f"Investigate WHOOSH task {task_id}.\n\n"
            f"1. Call whoosh_get_task with task_id {task_id}: status, agent, attempts, exit "
            "code, reason and the output's tail.\n"
            "2. Call whoosh_get_task_events for its history: where it was assigned, which "
            "attempts failed and why, who cancelled it.\n"
            "3. If it is queued, call whoosh_find_agents with its capabilities to see whether "
            "any agent can take it and why not; call whoosh_get_agent for the agent it ran on.\n"
            "4. Explain the cause in a few sentences and propose the fix (resubmit with other "
            "needs, enable or repair an agent, raise the timeout)."
        )
