"""End to end through a real `whoosh up` (NATS, coordinator, CLI executor): the first-task
walkthrough, failures, agents and task listings, as a user or a script sees them."""

from __future__ import annotations

import json
import uuid

from cli.whoosh_processes import WhooshEnv, wait_until


def test_submit_wait_prints_the_agents_output_and_exits_0(running_whoosh: WhooshEnv) -> None:
    result = running_whoosh.run("task", "submit", "hi", "--wait", timeout=60)
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "echo-agent got: hi" in result.stdout
    assert "second line" in result.stdout
    assert result.stdout.count("echo-agent got: hi") == 1, "output printed once"
    assert "assigned to echo" in result.stderr
    assert "completed in" in result.stderr
    assert "Traceback" not in result.stderr


def test_failing_task_exits_1_with_the_reason(running_whoosh: WhooshEnv) -> None:
    result = running_whoosh.run(
        "task", "submit", "break it", "--agent", "failing", "--retries", "0", "--wait", timeout=60
    )
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "about to fail" in result.stdout
    assert "failed" in result.stderr
    assert "exit code 3: fatal: disk full" in result.stderr
    failed = json.loads(running_whoosh.run("task", "list", "--status", "failed", "--json").stdout)
    task_id = next(t["id"] for t in failed["tasks"] if t["prompt"] == "break it")
    shown = running_whoosh.run("task", "get", task_id)
    assert "stderr (its end):\nfatal: disk full\n" in shown.stdout
    as_json = json.loads(running_whoosh.run("task", "get", task_id, "--json").stdout)
    assert as_json["stderr"] == "fatal: disk full\n"


def test_retries_show_each_attempt(running_whoosh: WhooshEnv) -> None:
    result = running_whoosh.run(
        "task", "submit", "again", "--capability", "breakage", "--retries", "1", "--wait",
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "attempt 1 failed" in result.stderr
    assert "(attempt 2)" in result.stderr


def test_prompt_from_stdin_and_json_result(running_whoosh: WhooshEnv) -> None:
    result = running_whoosh.run("task", "submit", "-", "--wait", "--json", stdin="from stdin\n")
    assert result.returncode == 0, result.stderr
    view = json.loads(result.stdout)
    assert view["status"] == "completed"
    assert view["prompt"] == "from stdin\n"
    assert "echo-agent got: from stdin" in view["output"]


def test_submit_without_wait_prints_the_id_then_get_and_list(running_whoosh: WhooshEnv) -> None:
    submitted = running_whoosh.run("task", "submit", "listed", "--priority", "7")
    assert submitted.returncode == 0, submitted.stderr
    task_id = submitted.stdout.strip()
    uuid.UUID(task_id)

    def finished() -> dict | None:
        got = running_whoosh.run("task", "get", task_id, "--json")
        view = json.loads(got.stdout)
        return view if view["status"] == "completed" else None

    view = wait_until(finished, 30, "the task to complete")
    assert view["priority"] == 7 and view["agent"] == "echo"

    shown = running_whoosh.run("task", "get", task_id)
    assert shown.returncode == 0
    assert "completed" in shown.stdout and "echo-agent got: listed" in shown.stdout

    listed = running_whoosh.run("task", "list", "--status", "completed")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0].split()[:3] == ["ID", "STATUS", "AGENT"]
    assert task_id in listed.stdout

    as_json = json.loads(running_whoosh.run("task", "list", "--json", "--limit", "1000").stdout)
    assert task_id in {t["id"] for t in as_json["tasks"]}


def test_cancel_of_a_finished_task_is_rejected_with_code_and_reason(
    running_whoosh: WhooshEnv,
) -> None:
    done = running_whoosh.run("task", "submit", "finish first", "--wait", "--json")
    task_id = json.loads(done.stdout)["id"]
    result = running_whoosh.run("task", "cancel", task_id)
    assert result.returncode == 1
    assert "bad_state" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_task_is_not_found(running_whoosh: WhooshEnv) -> None:
    result = running_whoosh.run("task", "get", str(uuid.uuid4()))
    assert result.returncode == 1
    assert "not_found" in result.stderr


def test_agent_list_json_shows_the_configured_agents(running_whoosh: WhooshEnv) -> None:
    result = running_whoosh.run("agent", "list", "--json")
    assert result.returncode == 0, result.stderr
    agents = {a["spec"]["name"]: a for a in json.loads(result.stdout)["agents"]}
    assert {"echo", "failing"} <= set(agents)
    assert agents["echo"]["enabled"] is True
    assert agents["echo"]["spec"]["max_concurrent"] == 4


def test_agent_add_disable_enable(running_whoosh: WhooshEnv) -> None:
    added = running_whoosh.run(
        "agent", "add", "extra", "--command", "cat", "--capability", "python=0.7",
        "--capability", "extra", "--max-concurrent", "2", "--model", "m1",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    again = running_whoosh.run("agent", "add", "extra", "--command", "cat")
    assert again.returncode == 1 and "duplicate" in again.stderr

    table = running_whoosh.run("agent", "list").stdout
    row = next(line for line in table.splitlines() if line.startswith("extra "))
    assert row.split() == ["extra", "cli", "m1", "python=0.7,extra", "yes", "yes", "0/2", "-", "-"]

    assert running_whoosh.run("agent", "disable", "extra").returncode == 0
    pinned = running_whoosh.run("task", "submit", "x", "--agent", "extra", "--json")
    assert running_whoosh.run("agent", "enable", "extra").returncode == 0
    agents = json.loads(running_whoosh.run("agent", "list", "--json").stdout)["agents"]
    assert next(a for a in agents if a["spec"]["name"] == "extra")["enabled"] is True
    assert pinned.returncode in (0, 1)  # accepted (waits for the agent) or rejected: no crash
    assert "Traceback" not in pinned.stderr

    missing = running_whoosh.run("agent", "enable", "nobody")
    assert missing.returncode == 1 and "not_found" in missing.stderr


def test_agent_add_from_a_spec_file(running_whoosh: WhooshEnv) -> None:
    spec = running_whoosh.root / "agent.yaml"
    spec.write_text("name: from-file\ntype: cli\ncommand: cat\ncapabilities: [filed]\n")
    result = running_whoosh.run("agent", "add", "--file", str(spec))
    assert result.returncode == 0, result.stderr
    agents = json.loads(running_whoosh.run("agent", "list", "--json").stdout)["agents"]
    assert "from-file" in {a["spec"]["name"] for a in agents}


def test_status_and_replay(running_whoosh: WhooshEnv) -> None:
    status = running_whoosh.run("status", "--json")
    assert status.returncode == 0, status.stderr
    stats = json.loads(status.stdout)
    assert stats["cluster"] == "cli-test" and stats["agents"] >= 2
    replay = running_whoosh.run("replay", "--json")
    assert replay.returncode == 0, replay.stderr
    counts = json.loads(replay.stdout)
    assert counts["events"] > 0 and counts["agents"] == stats["agents"]


def test_restarting_up_updates_agents_from_the_config(whoosh_env: WhooshEnv) -> None:
    first = whoosh_env.up()
    assert "echo: registered (enabled)" in first.stdout()
    assert first.interrupt() == 0
    config = whoosh_env.root / "whoosh.yaml"
    config.write_text(
        config.read_text().replace("max_concurrent: 4", "max_concurrent: 3")
        + "    enabled: false\n"
    )
    second = whoosh_env.up()
    out = second.stdout()
    assert "echo: updated (enabled)" in out
    assert "failing: updated (disabled)" in out
    agents = json.loads(whoosh_env.run("agent", "list", "--json").stdout)["agents"]
    by_name = {a["spec"]["name"]: a for a in agents}
    assert by_name["echo"]["spec"]["max_concurrent"] == 3
    assert by_name["failing"]["enabled"] is False
