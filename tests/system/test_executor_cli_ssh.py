"""Remote CLI agents end to end: a real coordinator and executor process over NATS, running
tasks on a real sshd (on this machine, so ps can check what a run left on the "host").

The agent is a shell reading its script from stdin (`sh -s`), so each task's prompt is
the script it runs on the host.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from uuid import UUID

from executor_cli.sshd_server import SshdFactory, SshdServer, sshd_factory_fixture
from harness import ServiceProcess, alive, eventually, wait_for_status
from whoosh_shared.contract import subjects
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.commands import CancelTask, RegisterAgent, RetryPolicy, SubmitTask
from whoosh_shared.contract.enums import TaskStatus
from whoosh_shared.contract.work import ProgressLine
from whoosh_shared.runtime.bus import Bus

__all__ = ["sshd_factory_fixture"]  # the fixture, found here by pytest

NO_CONFIG_FILE = {"WHOOSH_CONFIG": os.devnull}
MAX_SESSIONS = 3

Register = Callable[..., AgentSpec]


async def register(bus: Bus, server: SshdServer, name: str, **fields: object) -> AgentSpec:
    spec = server.agent(name, ["sh", "-s"], **fields)
    reply = await bus.send(RegisterAgent(spec=spec))
    assert reply.accepted, reply.reason
    return spec


async def submit(bus: Bus, agent: str, script: str, **options: object) -> UUID:
    reply = await bus.send(SubmitTask(prompt=script, agent=agent, **options))
    assert reply.accepted, reply.reason
    return UUID(reply.ids["task_id"])


async def read_pid(path: Path) -> int:
    await eventually(lambda: path.exists() and path.read_text().strip(), timeout=20, what=f"{path}")
    return int(path.read_text().strip())


async def test_a_remote_task_completes_and_streams_its_lines(
    bus: Bus, ssh_system: ServiceProcess, sshd_factory: SshdFactory
) -> None:
    server = sshd_factory()
    await register(bus, server, "remote-shell")
    lines: list[ProgressLine] = []

    async def on_line(msg) -> None:
        lines.append(ProgressLine.model_validate_json(msg.data))

    sub = await bus.nc.subscribe(f"{subjects.PROGRESS_PREFIX}.>", cb=on_line)
    try:
        # stdout and stderr are two streams: the pauses make their order a fact to check
        script = "echo on-host\nsleep 0.3\necho warn >&2\nsleep 0.3\necho 'it''s'\n"
        task_id = await submit(bus, "remote-shell", script)
        done = await wait_for_status(bus, task_id, TaskStatus.COMPLETED, TaskStatus.FAILED)
    finally:
        await sub.unsubscribe()
    assert done.status is TaskStatus.COMPLETED, done.reason
    assert done.output == "on-host\nits\n"
    assert done.executor_id == "ssh-test"
    mine = [(p.stream, p.line) for p in lines if p.task_id == task_id]
    assert mine == [("stdout", "on-host"), ("stderr", "warn"), ("stdout", "its")]


async def test_sixteen_tasks_at_once_on_a_host_with_few_sessions_all_complete(
    bus: Bus, ssh_system: ServiceProcess, sshd_factory: SshdFactory
) -> None:
    server = sshd_factory(max_sessions=MAX_SESSIONS)
    settings = server.settings(channels_per_connection=MAX_SESSIONS, max_connections=3)
    await register(bus, server, "narrow-host", ssh=settings, max_concurrent=16)
    task_ids = [await submit(bus, "narrow-host", f"sleep 0.5\necho task-{n}\n") for n in range(16)]
    for n, task_id in enumerate(task_ids):
        view = await wait_for_status(
            bus, task_id, TaskStatus.COMPLETED, TaskStatus.FAILED, timeout=90
        )
        assert (view.status, view.output) == (TaskStatus.COMPLETED, f"task-{n}\n"), view.reason


async def test_cancelling_a_remote_task_kills_its_processes_on_the_host(
    bus: Bus, ssh_system: ServiceProcess, sshd_factory: SshdFactory, tmp_path: Path
) -> None:
    server = sshd_factory()
    await register(bus, server, "remote-cancel")
    shell_pid, sleeper_pid = tmp_path / "shell.pid", tmp_path / "sleeper.pid"
    task_id = await submit(
        bus,
        "remote-cancel",
        f"echo $$ > {shell_pid}\nsleep 60 &\necho $! > {sleeper_pid}\nwait\n",
    )
    pids = [await read_pid(shell_pid), await read_pid(sleeper_pid)]
    await wait_for_status(bus, task_id, TaskStatus.RUNNING)
    assert all(alive(pid) for pid in pids)

    reply = await bus.send(CancelTask(task_id=task_id, reason="not needed"))
    assert reply.accepted, reply.reason
    for pid in pids:
        await eventually(lambda pid=pid: not alive(pid), timeout=15, what=f"pid {pid} gone")
    view = await wait_for_status(bus, task_id, TaskStatus.CANCELLED)
    assert view.status is TaskStatus.CANCELLED
    assert "stopping run" in ssh_system.output()


async def test_sshd_dying_mid_task_fails_it_with_the_reason_and_the_host_serves_again(
    bus: Bus, ssh_system: ServiceProcess, sshd_factory: SshdFactory, tmp_path: Path
) -> None:
    server = sshd_factory()
    await register(bus, server, "remote-crash")
    pid_file = tmp_path / "pid"
    task_id = await submit(
        bus,
        "remote-crash",
        f"echo $$ > {pid_file}\nsleep 60\n",
        retry=RetryPolicy(max_attempts=1),
        timeout_s=6,
    )
    await read_pid(pid_file)
    server.crash()
    view = await wait_for_status(bus, task_id, TaskStatus.FAILED, TaskStatus.TIMED_OUT)
    assert view.status is TaskStatus.FAILED
    assert view.reason is not None and "lost while the command ran" in view.reason

    server.start()
    again = await submit(bus, "remote-crash", "echo back\n")
    done = await wait_for_status(bus, again, TaskStatus.COMPLETED, TaskStatus.FAILED, timeout=60)
    assert (done.status, done.output) == (TaskStatus.COMPLETED, "back\n"), done.reason
