"""`on_exhausted: stop` end to end (real coordinator, CLI executor and gateway): a task
running a real process on an agent whose budget is then used up is cancelled with the
reason naming the budget, the executor kills its process, and the agent takes no more
work under that budget."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import httpx
from gateway.calls import error_of
from gateway.stack import Stack
from harness import eventually


def stopper(pid_file: Path) -> dict:
    script = f"cat >/dev/null; echo $$ > {pid_file}; exec sleep 120"
    return {"name": "stopper", "type": "cli", "command": ["sh", "-c", script],
            "max_concurrent": 2}  # fmt: skip


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with contextlib.suppress(OSError):  # a zombie not reaped yet counts as gone
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
        return state == "Z"
    return False


async def test_a_used_up_stop_budget_kills_the_running_task(
    stack: Stack, admin: httpx.AsyncClient, operator: httpx.AsyncClient, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    created = await admin.post("/api/v1/agents", json={"spec": stopper(pid_file)})
    assert created.status_code == 201, created.text
    budget = {"tokens": 100_000, "on_exhausted": "stop"}
    assert (await admin.put("/api/v1/budgets/agent:stopper", json=budget)).status_code == 200
    submitted = await operator.post("/api/v1/tasks", json={"prompt": "run", "agent": "stopper"})
    assert submitted.status_code in (200, 201, 202), submitted.text
    task_id = submitted.json()["task_id"]
    await eventually(lambda: pid_file.exists() and pid_file.read_text().strip(), timeout=30,
                     what="the task's process started")  # fmt: skip
    pid = int(pid_file.read_text())
    held = (await operator.get("/api/v1/budgets/agent:stopper")).json()
    assert held["reserved_tokens"] > 0  # the running task's reservation

    # The admin lowers the limit to nothing: the budget is used up at once.
    lowered = await admin.put(
        "/api/v1/budgets/agent:stopper", json={"tokens": 0, "on_exhausted": "stop"}
    )
    assert lowered.status_code == 200, lowered.text

    async def cancelled() -> dict | None:
        view = (await operator.get(f"/api/v1/tasks/{task_id}")).json()
        return view if view["status"] == "cancelled" else None

    view = await eventually(cancelled, timeout=20, what="the task cancelled by its budget")
    assert view["reason"].startswith("budget 'agent:stopper' is exhausted (0 of 0 tokens used")
    assert view["reason"].endswith("says on_exhausted: stop")
    await eventually(lambda: gone(pid), timeout=20, what="the executor to kill the process")
    after = (await operator.get("/api/v1/budgets/agent:stopper")).json()
    assert (after["exhausted"], after["reserved_tokens"]) == (True, 0)
    refused = await operator.post("/api/v1/tasks", json={"prompt": "again", "agent": "stopper"})
    assert "budget 'agent:stopper' is exhausted" in error_of(refused, 429, "limited")
    await admin.delete("/api/v1/agents/stopper")
