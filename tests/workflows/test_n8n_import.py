"""n8n import: supported nodes translate into the native model (and run); everything else
is refused with every problem listed, and nothing is stored."""

from __future__ import annotations

import pytest
from coordinator.core import Core
from whoosh_coordinator.workflows.definition import DefinitionError, load_data, to_yaml
from whoosh_coordinator.workflows.n8n import translate
from whoosh_shared.contract import workflows as w

from workflows import n8n_files
from workflows.flows import execution, finish, shell_agent, start, statuses, step_task


def test_chat_chain_with_an_ollama_model() -> None:
    data = translate(n8n_files.CHAT_LLM, "chat.json", None)
    spec = load_data(data, "chat.json")
    assert spec.name == "my-flow"
    assert set(spec.inputs) == {"chatInput", "sessionId"}
    llm = spec.steps["basic-llm-chain"].model_dump(exclude_defaults=True)
    assert llm == {
        "type": "llm",
        "model": "llama3.2:latest",
        "prompt": "{{ inputs.chatInput }}",
        "system": "Answer briefly.",
        "options": {"temperature": 0.2, "num_ctx": 4096},
    }
    answer = spec.steps["answer"]
    assert answer.fields == {  # type: ignore[union-attr]
        "answer": "{{ steps.basic-llm-chain.output | trim }}",
        "asked": "{{ inputs.chatInput }}",
    }
    assert answer.needs == {"basic-llm-chain": "success"}
    assert "note" not in spec.steps and "ollama-chat-model" not in spec.steps
    assert "basic-llm-chain" in to_yaml(spec)


def test_shell_flow_translates_every_supported_node() -> None:
    spec = load_data(translate(n8n_files.SHELL_FLOW, "flow.json", "shell-flow"), "flow.json")
    steps = {sid: s.model_dump(exclude_defaults=True) for sid, s in spec.steps.items()}
    assert set(steps) == {"run", "check", "good", "bad", "pause", "join", "route", "skipped",
                          "remote", "remote-failed"}  # fmt: skip
    assert steps["run"] == {"type": "shell", "command": "echo ok",
                            "retry": {"max_attempts": 5, "backoff": 0.2}}  # fmt: skip
    assert steps["check"]["conditions"] == [
        {"left": "{{ steps.run.output }}", "operator": "contains", "right": "ok"}
    ]
    assert steps["good"]["needs"] == {"check": "true"}
    assert steps["good"]["fields"] == {"code": "{{ steps.run.exit_code }}"}
    assert steps["bad"] == {"type": "fail", "needs": {"check": "false"},
                            "message": "no ok in {{ steps.run.output }}"}  # fmt: skip
    assert steps["pause"] == {"type": "wait", "needs": {"run": "success"}, "duration": 2.0}
    assert steps["join"]["needs"] == {"good": "success", "pause": "success"}
    assert steps["route"]["rules"][0]["conditions"][0]["left"] == "{{ steps.join.json.code }}"
    assert steps["route"]["fallback"] == "fallback"
    assert steps["skipped"] == {"type": "noop", "needs": {"route": "out0"}}
    assert steps["remote"]["command"] == "cd /tmp && uptime"
    assert steps["remote"]["on_error"] == "route"
    assert steps["remote-failed"]["needs"] == {"remote": "error"}


def test_everything_unsupported_is_listed_by_node() -> None:
    with pytest.raises(DefinitionError) as err:
        translate(n8n_files.REFUSED, "bad.json", None)
    assert err.value.problems == [
        "bad.json: node 'Again' (n8n-nodes-base.noOp v1): is part of a loop "
        "(Again -> Sql merge -> Again); loops are not supported",
        "bad.json: node 'Agent' (@n8n/n8n-nodes-langchain.agent v1.7): expression "
        "'{{ $json.body.q.split(',')[0] }}' is not supported (only $json.x, "
        "$('Node').item.json.x, $node[\"Node\"].json.x)",
        "bad.json: node 'Code' (n8n-nodes-base.code v2): this node type is not supported",
        "bad.json: node 'Fetch' (n8n-nodes-base.httpRequest v4.2): this node type is not supported",
        "bad.json: node 'Memory' (@n8n/n8n-nodes-langchain.memoryBufferWindow v1.3): "
        "'ai_memory' sub-nodes are not supported (no tools, memory, output parsers, "
        "retrievers or embeddings)",
        "bad.json: node 'Old if' (n8n-nodes-base.if v1): If/Filter v1 conditions are not "
        "supported (use v2 or later)",
        "bad.json: node 'Sql merge' (n8n-nodes-base.merge v3): Merge mode 'combineBySql' (-) "
        "is not supported",
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("not json", "x.json: not an n8n export: not JSON"),
        ('{"name": "x"}', "x.json: not an n8n export: no 'nodes' list"),
        ('{"nodes": [], "connections": []}', "x.json: not an n8n export: 'connections' is not"),
    ],
)
def test_not_n8n(text: str, problem: str) -> None:
    with pytest.raises(DefinitionError) as err:
        translate(text, "x.json", None)
    assert err.value.problems[0].startswith(problem)


def test_import_stores_nothing_when_refused_and_runs_when_accepted(sqlite_core: Core) -> None:
    core = sqlite_core
    refused = core.send(w.CreateWorkflow(source=n8n_files.REFUSED, filename="bad.json"))
    assert refused.code == "invalid"
    assert (refused.reason or "").startswith("bad.json refused (7 problems):\n- bad.json: node")
    assert core.projection.workflows.workflows == {}
    shell_agent(core)
    reply = core.send(w.CreateWorkflow(source=n8n_files.SHELL_FLOW, name="shell-flow"))
    assert reply.accepted, reply.reason
    run = start(core, "shell-flow")
    finish(core, step_task(core, run, "run"), "ok\n")
    got = statuses(core, run)
    assert got["check"] == "succeeded" and got["good"] == "succeeded"
    assert got["bad"] == "skipped" and got["pause"] == "waiting"
    assert core.projection.workflows.workflows["shell-flow"].origin == "n8n"
    assert execution(core, run).status == "running"
