"""The MCP server object, in process, over the real stack (NATS, coordinator, executor):
schemas, the role matrix, output tails, the tool-error / protocol-error split, and
progress during a wait."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from gateway.mcp_fixtures import MAX_PROMPT_BYTES, TAIL_BYTES, client_as, gateway_app
from gateway.stack import Stack
from mcp.shared.exceptions import MCPError
from whoosh_shared.contract.api_keys import Role

VIEWER_TOOLS = {
    "whoosh_list_agents",
    "whoosh_get_agent",
    "whoosh_find_agents",
    "whoosh_get_task",
    "whoosh_list_tasks",
    "whoosh_wait_task",
    "whoosh_get_task_events",
    "whoosh_cluster_status",
    "whoosh_explain_task",
    "whoosh_lookup",
    "whoosh_get",
    "whoosh_subscribe",
    "whoosh_budgets",
    "whoosh_usage",
    "whoosh_list_workflows",
    "whoosh_get_execution",
}
OPERATOR_TOOLS = {
    "whoosh_submit_task",
    "whoosh_cancel_task",
    "whoosh_register_agent",
    "whoosh_set_agent_enabled",
    "whoosh_set_agent_weight",
    "whoosh_thread",
    "whoosh_post",
    "whoosh_run_workflow",
    "whoosh_cancel_execution",
    "whoosh_retry_execution",
    "whoosh_decide_approval",
}


@pytest.fixture(scope="module")
async def app(stack: Stack) -> AsyncIterator[FastAPI]:
    async with gateway_app(stack.nats.url) as app:
        yield app


async def submit(app: FastAPI, prompt: str, **args: object) -> dict:
    async with client_as(app, Role.OPERATOR) as client:
        result = await client.call_tool(
            "whoosh_submit_task", {"prompt": prompt, "capabilities": ["shell"], **args}
        )
    assert not result.is_error, result.content
    return result.structured_content


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (Role.VIEWER, VIEWER_TOOLS),
        (Role.OPERATOR, VIEWER_TOOLS | OPERATOR_TOOLS),
        (Role.ADMIN, VIEWER_TOOLS | OPERATOR_TOOLS),
    ],
)
async def test_tools_list_shows_each_role_its_tools(app, role, expected) -> None:
    async with client_as(app, role) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == expected
    for tool in tools.values():
        assert tool.description, tool.name
        assert tool.input_schema["type"] == "object", tool.name
        assert tool.output_schema is not None, f"{tool.name} has no structured output"
        assert tool.annotations is not None, tool.name
    assert tools["whoosh_get_task"].annotations.read_only_hint is True
    assert tools["whoosh_get_task"].input_schema["required"] == ["task_id"]
    if role is not Role.VIEWER:
        submit_tool = tools["whoosh_submit_task"]
        assert submit_tool.annotations.read_only_hint is False
        assert tools["whoosh_cancel_task"].annotations.destructive_hint is True
        assert {"prompt", "idempotency_key", "wait_s", "llm"} <= set(
            submit_tool.input_schema["properties"]
        )


async def test_a_viewer_calling_an_operator_tool_gets_a_readable_refusal(app) -> None:
    async with client_as(app, Role.VIEWER) as client:
        result = await client.call_tool(
            "whoosh_submit_task", {"prompt": "echo no", "capabilities": ["shell"]}
        )
        assert result.is_error
        assert "needs the operator role" in result.content[0].text
        assert (await client.call_tool("whoosh_cluster_status", {})).is_error is False


async def test_every_tool_call_is_logged_with_tool_actor_outcome_and_duration(
    app, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="whoosh_gateway.mcp.audit")
    async with client_as(app, Role.VIEWER) as client:
        await client.call_tool("whoosh_cluster_status", {})
        await client.call_tool("whoosh_get_task", {"task_id": str(uuid.uuid4())})
        await client.call_tool("whoosh_cancel_task", {"task_id": str(uuid.uuid4())})
    lines = [r.getMessage() for r in caplog.records if r.name == "whoosh_gateway.mcp.audit"]
    assert len(lines) == 3, lines
    actor = "actor='key testviewer (mcp viewer)'"
    assert lines[0].startswith(f"mcp tool=whoosh_cluster_status {actor} outcome=ok duration_ms=")
    assert f"tool=whoosh_get_task {actor} outcome=tool_error" in lines[1]
    assert f"tool=whoosh_cancel_task {actor} outcome=denied" in lines[2]


async def test_agents_are_listed_without_secrets(app) -> None:
    async with client_as(app, Role.VIEWER) as client:
        listed = await client.call_tool("whoosh_list_agents", {"capability": "shell"})
        one = await client.call_tool("whoosh_get_agent", {"name": "shell"})
    agents = listed.structured_content["agents"]
    assert [a["name"] for a in agents] == ["shell"]
    assert agents[0]["skills"] == [{"id": "shell", "proficiency": 1.0}]
    for body in (agents[0], one.structured_content):
        assert not {"env", "command", "ssh", "spec"} & set(body), body


async def test_find_agents_ranks_the_eligible_and_says_why_not(app) -> None:
    async with client_as(app, Role.VIEWER) as client:
        found = await client.call_tool("whoosh_find_agents", {"capabilities": ["shell"]})
        none = await client.call_tool("whoosh_find_agents", {"capabilities": ["gpu-render"]})
    body = found.structured_content  # other test files may add agents to this stack
    names = [c["name"] for c in body["eligible"]]
    assert "shell" in names
    assert [c["rank"] for c in body["eligible"]] == list(range(1, len(names) + 1))
    assert body["chosen"] == names[0] and names[0] in body["summary"]
    refused = none.structured_content
    assert refused["eligible"] == [] and refused["chosen"] is None
    reasons = {c["name"]: c["reason"] for c in refused["not_eligible"]}
    assert reasons["shell"] == "it lacks capability 'gpu-render'"
    assert "no agent can run it" in refused["summary"]


async def test_submit_get_and_output_tail_with_truncation_flag(app) -> None:
    long_line = "x" * 1000
    submitted = await submit(app, f"echo start; echo {long_line}; echo END", wait_s=20)
    assert submitted["ended"] is True
    task = submitted["task"]
    assert task["status"] == "completed"
    assert task["truncated"] is True
    assert len(task["output_tail"].encode()) <= TAIL_BYTES
    assert task["output_tail"].rstrip().endswith("END")
    assert task["output_chars"] > TAIL_BYTES
    async with client_as(app, Role.VIEWER) as client:
        got = await client.call_tool("whoosh_get_task", {"task_id": submitted["task_id"]})
        whole = await client.read_resource(f"whoosh://tasks/{submitted['task_id']}/output")
        events = await client.call_tool("whoosh_get_task_events", {"task_id": submitted["task_id"]})
        listed = await client.call_tool("whoosh_list_tasks", {"status": "completed", "limit": 5})
    assert got.structured_content["output_tail"] == task["output_tail"]
    assert "start" in whole.contents[0].text and long_line in whole.contents[0].text
    types = [e["type"] for e in events.structured_content["events"]]
    assert types[0] == "TaskSubmitted" and types[-1] == "TaskCompleted"
    assert events.structured_content["events"][0]["actor"].startswith("key testoperator")
    assert submitted["task_id"] in [t["task_id"] for t in listed.structured_content["tasks"]]
    async with client_as(app, Role.VIEWER) as client:
        explained = await client.call_tool("whoosh_explain_task", {"task_id": submitted["task_id"]})
    assert not explained.is_error, explained.content
    assert explained.structured_content["agent"] == "shell"
    assert "shell" in [a["agent"] for a in explained.structured_content["agents"]]


async def test_a_prompt_over_the_inline_limit_travels_by_reference(app) -> None:
    prompt = "# " + "x" * 70_000 + "\necho big-ok\n"  # over limits.inline_bytes (64 KiB)
    submitted = await submit(app, prompt, wait_s=30)
    assert submitted["ended"] is True, submitted
    assert submitted["task"]["output_tail"].strip() == "big-ok"


async def test_a_task_can_wait_for_another(app) -> None:
    first = await submit(app, "sleep 2; echo first")
    second = await submit(app, "echo second", depends_on=[first["task_id"]], wait_s=30)
    assert second["task"]["status"] == "completed", second
    async with client_as(app, Role.VIEWER) as client:
        done = await client.call_tool("whoosh_get_task", {"task_id": first["task_id"]})
    assert done.structured_content["finished_at"] <= second["task"]["started_at"]


async def test_wait_sends_progress_with_the_latest_line_and_a_cut_wait_does_not_cancel(
    app,
) -> None:
    submitted = await submit(app, "echo tick-1; sleep 3; echo tick-2; sleep 60")
    messages: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        messages.append((progress, message))

    async with client_as(app, Role.VIEWER) as client:
        waited = await client.call_tool(
            "whoosh_wait_task",
            {"task_id": submitted["task_id"], "timeout_s": 5},
            progress_callback=on_progress,
        )
    assert not waited.is_error, waited.content
    assert waited.structured_content["ended"] is False
    assert waited.structured_content["task"]["status"] == "running"
    assert len(messages) >= 3, messages  # every second here (progress_interval_s=1)
    progress = [p for p, _ in messages]
    assert progress == sorted(set(progress)), "progress must increase"
    assert any("tick-1" in (m or "") or "tick-2" in (m or "") for _, m in messages), messages
    async with client_as(app, Role.OPERATOR) as client:
        view = await client.call_tool("whoosh_get_task", {"task_id": submitted["task_id"]})
        assert view.structured_content["status"] == "running", "the wait cancelled nothing"
        cancelled = await client.call_tool(
            "whoosh_cancel_task", {"task_id": submitted["task_id"], "reason": "test done"}
        )
    assert cancelled.structured_content["status"] in ("cancelled", "running")


async def test_bad_input_is_a_tool_error_naming_the_problem(app) -> None:
    unknown = str(uuid.uuid4())
    async with client_as(app, Role.OPERATOR) as client:
        missing = await client.call_tool("whoosh_get_task", {"task_id": unknown})
        not_uuid = await client.call_tool("whoosh_get_task", {"task_id": "nope"})
        no_arg = await client.call_tool("whoosh_get_task", {})
        wrong_type = await client.call_tool(
            "whoosh_submit_task", {"prompt": "x", "capabilities": ["shell"], "priority": "high"}
        )
        nobody = await client.call_tool(
            "whoosh_submit_task", {"prompt": "x", "capabilities": ["gpu-render"]}
        )
        no_agent = await client.call_tool("whoosh_get_agent", {"name": "ghost"})
        oversized = await client.call_tool(
            "whoosh_submit_task",
            {"prompt": "x" * (MAX_PROMPT_BYTES + 1), "capabilities": ["shell"]},
        )
        unknown_tool = await client.call_tool("whoosh_fly", {})
        still = await client.call_tool("whoosh_cluster_status", {})
    assert f"not_found: unknown task {unknown}" in missing.content[0].text
    assert "task_id" in not_uuid.content[0].text
    assert "task_id" in no_arg.content[0].text
    assert "priority" in wrong_type.content[0].text
    assert "no_capable_agent" in nobody.content[0].text
    assert "unknown agent 'ghost'" in no_agent.content[0].text
    assert "too_large" in oversized.content[0].text
    assert "limits.max_prompt_bytes" in oversized.content[0].text
    for result in (missing, not_uuid, no_arg, wrong_type, nobody, no_agent, oversized):
        assert result.is_error
    assert unknown_tool.is_error and "whoosh_fly" in unknown_tool.content[0].text
    assert not still.is_error, "the server keeps serving"


async def test_resources_and_resource_not_found(app) -> None:
    async with client_as(app, Role.VIEWER) as client:
        templates = {
            t.uri_template for t in (await client.list_resource_templates()).resource_templates
        }
        fixed = {str(r.uri) for r in (await client.list_resources()).resources}
        fleet = await client.read_resource("whoosh://fleet/status")
        agent = await client.read_resource("whoosh://agents/shell")
        with pytest.raises(MCPError) as unknown:
            await client.read_resource(f"whoosh://tasks/{uuid.uuid4()}")
        with pytest.raises(MCPError) as ghost:
            await client.read_resource("whoosh://agents/ghost")
        with pytest.raises(MCPError) as no_metrics:  # gateway.monitor_metrics_url unset here
            await client.read_resource("whoosh://metrics")
        prompts = {p.name for p in (await client.list_prompts()).prompts}
        debug = await client.get_prompt("whoosh_debug_task", {"task_id": "abc"})
    assert {"whoosh://fleet/status", "whoosh://agents", "whoosh://metrics"} <= fixed
    assert {
        "whoosh://agents/{name}",
        "whoosh://tasks/{task_id}",
        "whoosh://tasks/{task_id}/output",
        "whoosh://tasks/{task_id}/events",
    } <= templates
    assert '"agents"' in fleet.contents[0].text and '"shell"' in agent.contents[0].text
    assert unknown.value.error.code == -32602 and "unknown task" in unknown.value.error.message
    assert "unknown agent 'ghost'" in ghost.value.error.message
    assert no_metrics.value.error.code == -32602
    assert "monitor_metrics_url" in no_metrics.value.error.message
    assert prompts == {"whoosh_delegate", "whoosh_debug_task"}
    assert "whoosh_get_task_events" in debug.messages[0].content.text


async def test_an_unreachable_coordinator_is_a_protocol_error(stack: Stack) -> None:
    """A gateway whose NATS has no coordinator behind it: reads fail as protocol errors
    (the model cannot fix that), not as tool results."""
    from harness import NatsServer

    lonely = NatsServer(stack.root / "lonely-nats")
    lonely.start()
    try:
        async with gateway_app(lonely.url) as app:
            app.state.gateway.coordinator.timeout_s = 0.5
            async with client_as(app, Role.VIEWER) as client:
                with pytest.raises(MCPError) as failed:
                    await client.call_tool("whoosh_cluster_status", {})
    finally:
        lonely.stop()
    assert "unavailable" in failed.value.error.message


async def test_without_a_caller_nothing_is_listed_or_served(app) -> None:
    async with client_as(app, None) as client:
        assert (await client.list_tools()).tools == []
        with pytest.raises(MCPError):
            await client.call_tool("whoosh_cluster_status", {})
    await asyncio.sleep(0)


async def test_agent_writes_follow_the_rest_rules(app) -> None:
    spec = {"name": "mcp-extra", "type": "cli", "command": ["tee"], "capabilities": ["x"]}
    async with client_as(app, Role.OPERATOR) as operator:
        refused = await operator.call_tool("whoosh_register_agent", {"spec": spec})
    assert refused.is_error, refused.content  # the stack lets operators run cat and sh only
    assert "forbidden" in refused.content[0].text and "allowed_commands" in refused.content[0].text
    async with client_as(app, Role.ADMIN) as admin:
        registered = await admin.call_tool("whoosh_register_agent", {"spec": spec})
        assert not registered.is_error, registered.content
        disabled = await admin.call_tool(
            "whoosh_set_agent_enabled", {"name": "mcp-extra", "enabled": False}
        )
        weighted = await admin.call_tool(
            "whoosh_set_agent_weight", {"name": "mcp-extra", "weight": 30}
        )
        bad_weight = await admin.call_tool(
            "whoosh_set_agent_weight", {"name": "mcp-extra", "weight": 101}
        )
        ghost = await admin.call_tool(
            "whoosh_set_agent_enabled", {"name": "ghost", "enabled": True}
        )
    agent = registered.structured_content["agent"]
    assert agent["name"] == "mcp-extra" and agent["status"] == "idle"
    assert "env" not in agent and "command" not in agent
    assert disabled.structured_content["agent"]["status"] == "disabled"
    assert weighted.structured_content["agent"]["weight"] == 30
    assert bad_weight.is_error and "weight" in bad_weight.content[0].text
    assert ghost.is_error and "ghost" in ghost.content[0].text
