"""`whoosh agent weight` and `whoosh task get --explain` through a real `whoosh up`."""

from __future__ import annotations

import json

from cli.whoosh_processes import WhooshEnv


def test_agent_weight_sets_drains_and_refuses_bad_input(running_whoosh: WhooshEnv) -> None:
    set_ = running_whoosh.run("agent", "weight", "echo", "30")
    assert set_.returncode == 0, set_.stderr
    assert set_.stdout.strip() == "agent echo: weight 30"
    agents = json.loads(running_whoosh.run("agent", "list", "--json").stdout)["agents"]
    assert next(a for a in agents if a["spec"]["name"] == "echo")["spec"]["weight"] == 30

    drained = running_whoosh.run("agent", "weight", "echo", "0")
    assert "draining" in drained.stdout
    too_big = running_whoosh.run("agent", "weight", "echo", "101")
    assert too_big.returncode == 2 and "weight" in too_big.stderr
    not_a_number = running_whoosh.run("agent", "weight", "echo", "lots")
    assert not_a_number.returncode == 2
    unknown = running_whoosh.run("agent", "weight", "ghost", "5")
    assert unknown.returncode == 1 and "not_found" in unknown.stderr
    assert "unknown agent 'ghost'" in unknown.stderr
    assert running_whoosh.run("agent", "weight", "echo", "100").returncode == 0


def test_task_get_explain_shows_each_agents_verdict(running_whoosh: WhooshEnv) -> None:
    done = json.loads(running_whoosh.run("task", "submit", "why", "--wait", "--json").stdout)
    shown = running_whoosh.run("task", "get", done["id"], "--explain")
    assert shown.returncode == 0, shown.stderr
    assert "scheduling: ran on echo; submitted now: " in shown.stdout
    header = next(line for line in shown.stdout.splitlines() if line.startswith("AGENT"))
    assert header.split() == ["AGENT", "ELIGIBLE", "LOAD", "WEIGHT", "ESTIMATE", "MODEL", "WHY"]
    as_json = json.loads(
        running_whoosh.run("task", "get", done["id"], "--explain", "--json").stdout
    )
    assert as_json["task_id"] == done["id"] and as_json["agent"] == "echo"
    assert {a["agent"] for a in as_json["agents"]} >= {"echo", "failing"}
