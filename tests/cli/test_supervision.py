"""The pieces of `whoosh up` that decide things, on real processes and real data."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from cli.whoosh_processes import wait_until
from whoosh_cli.agent_commands import parse_capabilities
from whoosh_cli.agent_sync import update_from_spec
from whoosh_cli.child_process import ChildSpec, die_with_parent, is_same_process
from whoosh_cli.child_registry import ChildRegistry
from whoosh_cli.errors import UsageError
from whoosh_cli.supervisor import RestartPolicy, Supervisor, SupervisorError
from whoosh_shared.contract.agents import AgentSpec


def test_a_child_that_keeps_dying_stops_supervision(tmp_path: Path) -> None:
    said: list[str] = []
    supervisor = Supervisor(
        ChildRegistry(tmp_path),
        RestartPolicy(max_restarts=2, window_s=60, base_delay_s=0.05, max_delay_s=0.1),
        say=said.append,
    )
    log = tmp_path / "flaky.log"
    supervisor.start(ChildSpec("flaky", ["sh", "-c", "echo broken config; exit 7"], log))

    async def watch() -> None:
        await asyncio.wait_for(supervisor.watch(asyncio.Event()), 20)

    with pytest.raises(SupervisorError) as failure:
        asyncio.run(watch())
    assert "flaky keeps exiting (2 restarts" in failure.value.message
    assert "last exit status 7" in failure.value.message
    assert "broken config" in failure.value.message
    assert sum("restarted flaky" in line for line in said) == 2
    supervisor.stop_all()
    assert not (tmp_path / "children.json").exists()


def test_stop_all_stops_in_reverse_start_order(tmp_path: Path) -> None:
    said: list[str] = []
    supervisor = Supervisor(ChildRegistry(tmp_path), say=said.append)
    for name in ("nats", "coordinator", "executor-cli"):
        supervisor.start(ChildSpec(name, ["sleep", "60"], tmp_path / f"{name}.log"))
    assert (tmp_path / "children.json").exists()
    supervisor.stop_all(grace_s=5)
    assert said == ["whoosh: stopping executor-cli", "whoosh: stopping coordinator",
                    "whoosh: stopping nats"]  # fmt: skip


def test_death_signal_preexec_refuses_an_orphaned_start() -> None:
    """If `up` died between fork and prctl, the child must not run on its own."""
    import subprocess

    proc = subprocess.Popen([sys.executable, "-c", "pass"], preexec_fn=die_with_parent(1))
    assert proc.wait(10) == 1
    alive = subprocess.Popen(["sleep", "30"])
    try:
        wait_until(lambda: is_same_process(alive.pid, ["sleep", "30"]), 5, "sleep to exec")
        assert not is_same_process(alive.pid, ["sleep", "31"])
    finally:
        alive.kill()
        alive.wait(5)


def test_update_from_spec_names_only_what_changed() -> None:
    current = AgentSpec(name="a", command=["cat"], capabilities=["x"], max_concurrent=2)
    same = update_from_spec(current, current)
    assert same.changes() == {}
    wanted = AgentSpec(name="a", command=["cat", "-n"], capabilities=["x"], max_concurrent=2)
    assert update_from_spec(wanted, current).changes() == {"command": ["cat", "-n"]}
    full = update_from_spec(wanted).changes()
    assert full["max_concurrent"] == 2 and full["capabilities"] == {"x": 1.0}


def test_capability_flags() -> None:
    assert parse_capabilities(["python=0.8", "shell"]) == {"python": 0.8, "shell": 1.0}
    with pytest.raises(UsageError):
        parse_capabilities(["python=high"])
