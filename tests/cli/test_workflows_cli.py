"""`whoosh workflow ...`, `whoosh execution ...` and `whoosh task submit --after` through a
real `whoosh up` (gateway, coordinator, CLI executor with a `sh -s` shell agent)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli.whoosh_processes import WhooshEnv, make_installation

CONFIG = """\
cluster:
  name: "workflow-cli-test"
agents:
  runner:
    type: cli
    command: ["sh", "-s"]
    capabilities: [shell]
    max_concurrent: 4
"""


@pytest.fixture(scope="module")
def whoosh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WhooshEnv]:
    installation = make_installation(tmp_path_factory.mktemp("wf-cli"), CONFIG)
    try:
        installation.up()
        yield installation
    finally:
        for up in installation.started:
            up.cleanup()


def write(root: Path, name: str, text: str) -> str:
    path = root / name
    path.write_text(text)
    return str(path)


FLOW = """\
whoosh: workflow/v1
name: cli-flow
inputs:
  word: {type: string, required: true}
  n: {type: integer, default: 2}
steps:
  a: {type: shell, command: "echo a-{{ inputs.word }}"}
  b: {type: shell, needs: [a], command: "echo b-{{ inputs.n }}"}
  flaky:
    type: shell
    needs: [b]
    retry: {max_attempts: 1}
    command: >-
      echo ran >> {{ inputs.word }}.runs;
      test -f {{ inputs.word }}.ok || { touch {{ inputs.word }}.ok; exit 4; }
"""


def test_import_run_wait_retry(whoosh: WhooshEnv) -> None:
    work = whoosh.root / "work"
    work.mkdir()
    source = write(whoosh.root, "flow.yaml", FLOW.replace("{{ inputs.word }}.", f"{work}/x."))
    stored = whoosh.run("workflow", "import", source)
    assert stored.returncode == 0, stored.stderr
    assert stored.stdout.strip() == "cli-flow version 1"
    listed = whoosh.run("workflow", "list")
    assert "cli-flow" in listed.stdout
    shown = whoosh.run("workflow", "get", "cli-flow")
    assert "whoosh: workflow/v1" in shown.stdout and "echo a-{{ inputs.word }}" in shown.stdout

    first = whoosh.run("workflow", "run", "cli-flow", "--input", "word=hi", "--wait", timeout=90)
    assert first.returncode == 1, (first.stdout, first.stderr)
    assert "[a] succeeded" in first.stderr and "[flaky] failed" in first.stderr
    assert "execution" in first.stdout and "failed: step 'flaky' failed" in first.stdout
    execution_id = first.stderr.split("execution ", 1)[1].split()[0]

    retried = whoosh.run("execution", "retry", execution_id, "--wait", timeout=90)
    assert retried.returncode == 0, (retried.stdout, retried.stderr)
    assert (work / "x.runs").read_text() == "ran\nran\n"  # only the failed step ran again
    got = json.loads(whoosh.run("execution", "get", execution_id, "--json").stdout)
    steps = {s["id"]: s for s in got["steps"]}
    assert got["status"] == "succeeded" and got["round"] == 1
    assert steps["a"]["output"] == "a-hi\n" and steps["a"]["round"] == 0
    assert steps["b"]["output"] == "b-2\n" and steps["flaky"]["round"] == 1
    assert steps["a"]["agent"] == "runner" and steps["a"]["attempts"] == 1

    as_json = whoosh.run("workflow", "run", "cli-flow", "--input", "word=hi", "--wait", "--json",
                         timeout=90)  # fmt: skip
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["status"] == "succeeded"
    runs = json.loads(whoosh.run("execution", "list", "--workflow", "cli-flow", "--json").stdout)
    assert len(runs["executions"]) == 2

    assert "null" not in shown.stdout and "default: 2" in shown.stdout  # defaults left out
    again = whoosh.run("workflow", "import", write(whoosh.root, "shown.yaml", shown.stdout))
    assert again.stdout.strip() == "cli-flow version 1", "the YAML imports back unchanged"


def test_refusals_exit_non_zero_and_store_nothing(whoosh: WhooshEnv) -> None:
    bad = write(whoosh.root, "bad.yaml", "whoosh: workflow/v1\nname: bad-one\nsteps:\n"
                "  a: {type: shell, command: x, needs: [b]}\n"
                "  b: {type: shell, command: x, needs: [a]}\n")  # fmt: skip
    refused = whoosh.run("workflow", "import", bad)
    assert refused.returncode == 2
    assert "bad.yaml: the steps form a cycle: a -> b -> a" in refused.stderr
    assert "bad-one" not in whoosh.run("workflow", "list").stdout
    not_n8n = write(whoosh.root, "x.json", '{"nodes": "no"}')
    n8n = whoosh.run("workflow", "import", not_n8n, "--format", "n8n")
    assert n8n.returncode == 2 and "not an n8n export" in n8n.stderr
    missing = whoosh.run("workflow", "run", "cli-flow")
    assert missing.returncode == 2 and "input 'word' is required" in missing.stderr
    unknown = whoosh.run("workflow", "run", "nope")
    assert unknown.returncode == 1 and "unknown workflow 'nope'" in unknown.stderr


GATED = """\
whoosh: workflow/v1
name: gated
steps:
  ask: {type: approval, message: "ship it?"}
  ship: {type: shell, needs: [ask], command: "echo shipped"}
"""


def test_templates_approval_and_task_dependencies(whoosh: WhooshEnv) -> None:
    templates = whoosh.run("workflow", "templates")
    assert "web-development" in templates.stdout and "code-review" in templates.stdout
    made = whoosh.run("workflow", "create", "my-infra", "--from", "infrastructure")
    assert made.returncode == 0 and made.stdout.strip() == "my-infra version 1"

    assert whoosh.run("workflow", "import", write(whoosh.root, "g.yaml", GATED)).returncode == 0
    started = whoosh.run("workflow", "run", "gated")
    execution_id = started.stdout.strip()
    waiting = json.loads(whoosh.run("execution", "get", execution_id, "--json").stdout)
    assert waiting["steps"][0]["status"] == "waiting"
    approved = whoosh.run("execution", "approve", execution_id, "ask", "--comment", "ok")
    assert approved.returncode == 0, approved.stderr
    watched = whoosh.run("execution", "watch", execution_id, timeout=60)
    assert watched.returncode == 0, watched.stderr
    assert "shipped" in watched.stdout

    first = whoosh.run("task", "submit", "sleep 1; echo first", "--agent", "runner")
    second = whoosh.run("task", "submit", "echo second", "--agent", "runner", "--after",
                        first.stdout.strip(), "--wait", timeout=60)  # fmt: skip
    assert second.returncode == 0, second.stderr
    assert "second" in second.stdout
    shown = json.loads(whoosh.run("task", "get", first.stdout.strip(), "--json").stdout)
    assert shown["status"] == "completed"


def test_replay_rebuilds_the_executions(whoosh: WhooshEnv) -> None:
    listed = json.loads(whoosh.run("execution", "list", "--json").stdout)["executions"]
    live: dict[str, int] = {}
    for view in listed:
        live[view["status"]] = live.get(view["status"], 0) + 1
    replay = whoosh.run("replay", "--json")
    assert replay.returncode == 0, replay.stderr
    counts = json.loads(replay.stdout)
    assert counts["executions_by_status"] == live and sum(live.values()) >= 3
    assert counts["workflows"] >= 3
