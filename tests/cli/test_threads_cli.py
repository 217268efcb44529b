"""`whoosh thread / budget / resolve` through a real `whoosh up`: a review thread whose
verifier vetoes, escalation to a human and `thread decide`, budget set and list."""

from __future__ import annotations

import json

from cli.whoosh_processes import WhooshEnv

VERDICTS = {"rev-a": "approve", "rev-b": "approve", "rev-v": "request_changes"}


def add_reviewers(env: WhooshEnv) -> None:
    for name, verdict in VERDICTS.items():
        command = f"sh -c 'cat >/dev/null; echo looked at it; echo VERDICT: {verdict}'"
        added = env.run("agent", "add", name, "--command", command, "--specialization", "reviewer")
        assert added.returncode == 0 or "exists" in added.stderr, added.stderr


def test_review_with_a_veto_and_resolve(running_whoosh: WhooshEnv) -> None:
    add_reviewers(running_whoosh)
    found = running_whoosh.run("resolve", "bzzz://rev-*:reviewer@*")
    assert found.stdout.split() == list(VERDICTS), found.stderr
    result = running_whoosh.run(
        "thread", "start", "Merge this diff?", "--kind", "review", "--participants",
        ",".join(VERDICTS), "--veto", "rev-v", "--subject", "- a + b", "--wait", "--json",
        timeout=90,
    )  # fmt: skip
    assert result.returncode == 0, (result.stdout, result.stderr)
    view = json.loads(result.stdout)
    assert (view["outcome"], view["decision"]) == ("vetoed", "request_changes")
    got = running_whoosh.run("thread", "get", view["id"])
    assert "request_changes" in got.stdout and "rev-v" in got.stdout
    events = running_whoosh.run("thread", "events", view["id"])
    assert events.stdout.count("ThreadVoteCast") == 3


def test_escalation_to_a_human_then_decide(running_whoosh: WhooshEnv) -> None:
    add_reviewers(running_whoosh)
    rules = (
        "[{name: split, when: {rounds_without_decision: 1},"
        " do: [{kind: notify}, {kind: wait_for_human}]}]"
    )
    started = running_whoosh.run(
        "thread", "start", "Ship it?", "--kind", "review", "--participants",
        ",".join(VERDICTS), "--rule", "unanimous", "--escalation", rules, "--wait", timeout=90,
    )  # fmt: skip
    assert started.returncode == 1, (started.stdout, started.stderr)  # no decision yet
    assert "waiting for a human" in started.stdout
    thread_id = started.stdout.split("whoosh thread decide ")[1].split()[0]
    alerts = running_whoosh.run("alerts", "--json")
    assert "ThreadEscalated" in alerts.stdout
    posted = running_whoosh.run("thread", "post", thread_id, "I will take this one")
    assert posted.returncode == 0, posted.stderr
    decided = running_whoosh.run("thread", "decide", thread_id, "approve", "--reason", "I own it")
    assert decided.returncode == 0, decided.stderr
    view = json.loads(running_whoosh.run("thread", "get", thread_id, "--json").stdout)
    assert (view["outcome"], view["decision"]) == ("human_decision", "approve")
    again = running_whoosh.run("thread", "decide", thread_id, "reject")
    assert again.returncode == 1 and "closed" in again.stderr


def test_bad_input_exits_2_naming_the_problem(running_whoosh: WhooshEnv) -> None:
    bad = running_whoosh.run("resolve", "whoosh://a:b@p:")
    assert bad.returncode == 2 and "position 16" in bad.stderr
    neither = running_whoosh.run("thread", "start", "q")
    assert neither.returncode == 2 and "--participants" in neither.stderr
    rules = running_whoosh.run(
        "thread",
        "start",
        "q",
        "--participants",
        "rev-a",
        "--escalation",
        "[{name: r, when: {sometimes: 1}, do: [{kind: notify}]}]",
    )
    assert rules.returncode == 2 and "unknown condition 'sometimes'" in rules.stderr
    unknown = running_whoosh.run("thread", "start", "q", "--participants", "ghost")
    assert unknown.returncode == 1 and "unknown agent 'ghost'" in unknown.stderr
    negative = running_whoosh.run("budget", "set", "global", "--tokens", "-1")
    assert negative.returncode == 2 and "tokens" in negative.stderr


def test_budget_set_and_list(running_whoosh: WhooshEnv) -> None:
    done = running_whoosh.run("budget", "set", "agent:rev-a", "--tokens", "5000", "--period", "day")
    assert done.returncode == 0, done.stderr
    listed = json.loads(running_whoosh.run("budget", "list", "--json").stdout)
    mine = next(b for b in listed["budgets"] if b["scope"] == "agent:rev-a")
    assert (mine["tokens"], mine["period"]) == (5000, "day")
    stop = running_whoosh.run(
        "budget", "set", "agent:rev-a", "--tokens", "5000", "--on-exhausted", "stop"
    )
    assert stop.returncode == 0, stop.stderr
    table = running_whoosh.run("budget", "list").stdout
    row = next(line for line in table.splitlines() if line.startswith("agent:rev-a"))
    assert row.split()[-2:] == ["ok", "stop"], table
