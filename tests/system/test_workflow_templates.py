"""The web-development template end to end with real processes: the planning step on the
Ollama double (LLM executor), frontend/backend/integration on a CLI agent, a human
approval, then the test step; outputs flow from step to step."""

from __future__ import annotations

import contextlib
import json
from uuid import UUID

from harness import ServiceProcess, eventually
from nats.js.errors import NotFoundError
from system.llm_stack import MODEL, NO_CONFIG_FILE, MakeDouble, register
from whoosh_executor_cli.service import DURABLE_NAME
from whoosh_shared.contract import subjects
from whoosh_shared.contract import workflows as w
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.commands import RegisterAgent
from whoosh_shared.runtime.bus import Bus

PLAN = {"frontend": "a login page", "backend": "a /login API", "api_contract": "POST /login"}
CODER = AgentSpec(
    name="coder",
    command=["sh", "-c", 'echo "did: $(head -n 1)"'],
    capabilities=["frontend", "backend", "shell"],
    max_concurrent=4,
)


async def execution(bus: Bus, execution_id: UUID) -> w.ExecutionView:
    reply = await bus.ask(w.GetExecution(execution_id=execution_id))
    return w.ExecutionView.model_validate(reply.result)


async def test_web_development_with_llm_cli_agents_and_an_approval(
    bus: Bus, llm_system: ServiceProcess, make_double: MakeDouble, spawn, nats_url: str
) -> None:
    double = make_double(json_reply=json.dumps(PLAN))
    await register(bus, "planner", double)
    assert (await bus.send(RegisterAgent(spec=CODER))).accepted
    cli: ServiceProcess = spawn(
        "whoosh_executor_cli", "--nats", nats_url, "--executor-id", "tpl-cli", env=NO_CONFIG_FILE
    )
    try:
        await eventually(lambda: "executor ready" in cli.output(), timeout=30, what="executor")
        made = await bus.send(w.CreateWorkflow(template="web-development", name="shop"))
        assert made.accepted, made.reason
        started = await bus.send(w.RunWorkflow(
            workflow="shop", inputs={"goal": "a shop", "model": MODEL, "test_command": "true"}
        ))  # fmt: skip
        assert started.accepted, started.reason
        run = UUID(started.ids["execution_id"])

        async def waiting_for_review() -> bool:
            view = await execution(bus, run)
            assert view.status == "running", view
            return {s.id: s.status for s in view.steps}["review"] == "waiting"

        await eventually(waiting_for_review, timeout=60, what="the review approval")
        view = await execution(bus, run)
        steps = {s.id: s for s in view.steps}
        assert json.loads(steps["planning"].output) == PLAN
        assert steps["planning"].agent == "planner" and steps["planning"].tokens_out > 0
        assert steps["frontend"].output == "did: Work in the directory ..\n"
        assert steps["review"].message == "Integration done for 'a shop'. Approve testing?"
        _, body = double.requests[-1]
        assert body["model"] == MODEL and body["format"] == "json"
        assert "Plan the work for: a shop" in body["messages"][-1]["content"]

        decided = await bus.send(w.DecideApproval(execution_id=run, step="review", approve=True))
        assert decided.accepted, decided.reason

        async def finished() -> bool:
            return (await execution(bus, run)).status != "running"

        await eventually(finished, timeout=60, what="the end of the execution")
        view = await execution(bus, run)
        steps = {s.id: s for s in view.steps}
        assert view.status == "succeeded", view.reason
        assert steps["testing"].status == "succeeded" and steps["triage"].status == "skipped"
        assert steps["testing"].output.startswith("did: cd . && true")
    finally:
        cli.stop()
        with contextlib.suppress(NotFoundError):
            await bus.js.delete_consumer(subjects.WORK_STREAM, DURABLE_NAME)
