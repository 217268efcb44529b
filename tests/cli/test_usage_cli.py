"""`whoosh budget usage` through a real `whoosh up`: the task a key ran is counted under
that key and agent, as a table and as JSON."""

from __future__ import annotations

import json

from cli.whoosh_processes import WhooshEnv


def test_budget_usage_counts_a_finished_task_under_its_key(running_whoosh: WhooshEnv) -> None:
    done = running_whoosh.run("task", "submit", "echo counted", "--wait")
    assert done.returncode == 0, done.stderr
    report = json.loads(running_whoosh.run("budget", "usage", "--json").stdout)
    assert report["total"]["tasks"] >= 1
    keys = {row["name"]: row for row in report["by_key"]}
    assert any(name.startswith("key ") and row["tasks"] >= 1 for name, row in keys.items()), keys
    assert report["by_agent"] and report["by_agent"][0]["tasks"] >= 1
    table = running_whoosh.run("budget", "usage")
    assert table.returncode == 0, table.stderr
    assert "KEY" in table.stdout and "AGENT" in table.stdout and "MODEL" in table.stdout
    assert table.stdout.startswith("since ")
