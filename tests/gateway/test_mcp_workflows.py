"""Workflows over MCP (in process, real stack: shell steps on the stack's `sh -s` agent):
list, run with a short wait that returns at an approval, decide it, read with a long poll
that sends progress, retry the failed step only, cancel, and the same refusals as REST."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from gateway.mcp_fixtures import TAIL_BYTES, client_as, gateway_app
from gateway.stack import Stack
from whoosh_shared.contract.api_keys import Role

FLOW = """
whoosh: workflow/v1
name: mcp-flow
inputs:
  n: {type: integer, required: true}
steps:
  big: {type: shell, command: "yes x | head -c {{ inputs.n }}; echo; echo end-of-big"}
  gate: {type: approval, needs: [big], message: "go on?"}
  slow: {type: shell, needs: [gate], command: "for i in 1 2 3 4; do echo slow-$i; sleep 0.8; done"}
"""


@pytest.fixture(scope="module")
async def app(stack: Stack) -> AsyncIterator[FastAPI]:
    async with gateway_app(stack.nats.url) as app:
        yield app


async def test_run_waits_until_the_approval_then_get_waits_until_the_end(
    app: FastAPI, operator: httpx.AsyncClient
) -> None:
    stored = await operator.post("/api/v1/workflows", json={"source": FLOW})
    assert stored.status_code == 201, stored.text
    async with client_as(app, Role.VIEWER) as viewer:
        listed = await viewer.call_tool("whoosh_list_workflows", {})
        refused = await viewer.call_tool("whoosh_run_workflow", {"workflow": "mcp-flow"})
    assert "mcp-flow" in [w["name"] for w in listed.structured_content["workflows"]]
    assert refused.is_error and "needs the operator role" in refused.content[0].text

    async with client_as(app, Role.OPERATOR) as client:
        run = await client.call_tool(
            "whoosh_run_workflow",
            {"workflow": "mcp-flow", "inputs": {"n": 3 * TAIL_BYTES}, "wait_s": 30},
        )
    assert not run.is_error, run.content
    result = run.structured_content
    assert result["awaiting_approval"] == ["gate"] and result["ended"] is False
    execution = result["execution"]
    assert execution["actor"] == "key testoperator (mcp operator)"
    big = next(s for s in execution["steps"] if s["id"] == "big")
    assert result["truncated_steps"] == ["big"]
    assert big["output"].endswith("end-of-big\n") and len(big["output"]) <= TAIL_BYTES
    whole = await operator.get(f"/api/v1/tasks/{big['task_id']}")
    assert len(whole.json()["output"]) > 3 * TAIL_BYTES

    run_id = execution["id"]
    async with client_as(app, Role.OPERATOR) as client:
        approved = await client.call_tool(
            "whoosh_decide_approval", {"execution_id": run_id, "step": "gate", "approve": True}
        )
    assert not approved.is_error, approved.content
    gate = next(s for s in approved.structured_content["execution"]["steps"] if s["id"] == "gate")
    assert gate["decided_by"] == "key testoperator (mcp operator)"
    messages: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        messages.append(message or "")

    async with client_as(app, Role.VIEWER) as viewer:
        got = await viewer.call_tool(
            "whoosh_get_execution",
            {"execution_id": run_id, "wait_s": 30},
            progress_callback=on_progress,
        )
    assert not got.is_error, got.content
    final = got.structured_content
    assert final["ended"] is True and final["execution"]["status"] == "succeeded"
    slow = next(s for s in final["execution"]["steps"] if s["id"] == "slow")
    assert slow["output"] == "slow-1\nslow-2\nslow-3\nslow-4\n"
    assert final["truncated_steps"] == ["big"]
    assert any("running slow" in m for m in messages), messages  # every second here
    assert any(": slow-" in m for m in messages), messages  # the step's latest line


FLAKY = """
whoosh: workflow/v1
name: mcp-flaky
inputs:
  dir: {type: string, required: true}
steps:
  first: {type: shell, command: "echo ran >> {{ inputs.dir }}/first.runs"}
  flaky:
    type: shell
    needs: [first]
    command: >-
      echo ran >> {{ inputs.dir }}/flaky.runs;
      test -f {{ inputs.dir }}/ok || { touch {{ inputs.dir }}/ok; exit 4; }
  slow: {type: shell, needs: [flaky], command: "sleep 30"}
"""


async def test_retry_reruns_the_failed_step_only_and_cancel_stops_the_running_one(
    app: FastAPI, operator: httpx.AsyncClient, tmp_path: Path
) -> None:
    stored = await operator.post("/api/v1/workflows", json={"source": FLAKY})
    assert stored.status_code == 201, stored.text
    async with client_as(app, Role.OPERATOR) as client:
        run = await client.call_tool(
            "whoosh_run_workflow",
            {"workflow": "mcp-flaky", "inputs": {"dir": str(tmp_path)}, "wait_s": 30},
        )
        assert run.structured_content["execution"]["status"] == "failed", run.content
        run_id = run.structured_content["execution"]["id"]
        retried = await client.call_tool(
            "whoosh_retry_execution", {"execution_id": run_id, "wait_s": 3}
        )
        assert not retried.is_error, retried.content
        steps = {s["id"]: s for s in retried.structured_content["execution"]["steps"]}
        assert steps["flaky"]["status"] == "succeeded" and steps["slow"]["status"] == "running"
        cancelled = await client.call_tool(
            "whoosh_cancel_execution", {"execution_id": run_id, "reason": "enough"}
        )
        again = await client.call_tool("whoosh_cancel_execution", {"execution_id": run_id})
    assert (tmp_path / "first.runs").read_text() == "ran\n"  # kept, not re-run
    assert (tmp_path / "flaky.runs").read_text() == "ran\nran\n"
    assert cancelled.structured_content["execution"]["status"] == "cancelled", cancelled.content
    assert cancelled.structured_content["ended"] is True
    assert again.is_error and "is already cancelled" in again.content[0].text


async def test_refusals_name_the_problem(app: FastAPI) -> None:
    async with client_as(app, Role.OPERATOR) as client:
        unknown = await client.call_tool("whoosh_run_workflow", {"workflow": "no-such-flow"})
        bad_name = await client.call_tool("whoosh_run_workflow", {"workflow": "a b"})
        missing_input = await client.call_tool("whoosh_run_workflow", {"workflow": "mcp-flow"})
        wrong_type = await client.call_tool(
            "whoosh_run_workflow", {"workflow": "mcp-flow", "inputs": {"n": "many"}}
        )
        nothing = await client.call_tool(
            "whoosh_get_execution", {"execution_id": str(uuid.uuid4())}
        )
    assert unknown.is_error and "no-such-flow" in unknown.content[0].text
    assert bad_name.is_error and "workflow" in bad_name.content[0].text
    assert missing_input.is_error and "input 'n' is required" in missing_input.content[0].text
    assert wrong_type.is_error and "'n'" in wrong_type.content[0].text
    assert nothing.is_error and "not_found" in nothing.content[0].text
