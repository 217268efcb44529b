"""The CLI executor end to end: a real coordinator, real executor processes, real commands.

The agent under test is a shell reading its script from stdin (`sh -s`), so each
task's prompt is the script it runs and one registered agent covers every case.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from uuid import UUID

import pytest
from harness import (
    ServiceProcess,
    alive,
    eventually,
    get_task,
    stream_envelopes,
    wait_for_coordinator,
    wait_for_status,
)
from nats.js.errors import NotFoundError
from whoosh_executor_cli.service import DURABLE_NAME
from whoosh_shared.contract import subjects
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.commands import CancelTask, RegisterAgent, RetryPolicy, SubmitTask
from whoosh_shared.contract.enums import TaskStatus
from whoosh_shared.contract.work import ProgressLine
from whoosh_shared.runtime.bus import Bus

SHELL_AGENT = AgentSpec(name="shell", command=["sh", "-s"], max_concurrent=4)
# Services start in the repository root: keep its example whoosh.yaml out of these tests.
NO_CONFIG_FILE = {"WHOOSH_CONFIG": os.devnull}
FAST_ACK_WAIT = {"WHOOSH__EXECUTOR__ACK_WAIT_S": "2"}

StartExecutor = Callable[..., ServiceProcess]


async def read_pid(path: Path, timeout: float = 15) -> int:
    await eventually(
        lambda: path.exists() and path.read_text().strip(), timeout=timeout, what=f"{path}"
    )
    return int(path.read_text().strip())


@pytest.fixture
async def coordinator(bus: Bus, spawn, nats_url: str, sqlite_url: str) -> ServiceProcess:
    """A coordinator (with its relay) on a fresh SQLite store, with the shell agent registered."""
    proc = spawn(
        "whoosh_coordinator", "serve", "--nats", nats_url, "--store", sqlite_url, env=NO_CONFIG_FILE
    )

    await wait_for_coordinator(bus)
    reply = await bus.send(RegisterAgent(spec=SHELL_AGENT))
    assert reply.accepted, reply.reason
    return proc


@pytest.fixture
async def start_executor(
    bus: Bus, nats_url: str, spawn, coordinator: ServiceProcess
) -> AsyncIterator[StartExecutor]:
    """Start executor processes and wait until each is ready; afterwards stop them and remove
    their durable consumer (a work-queue stream allows one consumer per subject)."""
    started: list[ServiceProcess] = []

    async def start(executor_id: str, **env: str) -> ServiceProcess:
        proc = spawn(
            "whoosh_executor_cli",
            "--nats",
            nats_url,
            "--executor-id",
            executor_id,
            env={**NO_CONFIG_FILE, **env},
        )
        started.append(proc)
        await eventually(
            lambda: "executor ready" in proc.output(), timeout=20, what=f"executor {executor_id}"
        )
        return proc

    yield start
    for proc in started:
        proc.stop()
    with contextlib.suppress(NotFoundError):
        await bus.js.delete_consumer(subjects.WORK_STREAM, DURABLE_NAME)


async def submit(bus: Bus, script: str, **options: object) -> UUID:
    reply = await bus.send(SubmitTask(prompt=script, agent=SHELL_AGENT.name, **options))
    assert reply.accepted, reply.reason
    return UUID(reply.ids["task_id"])


async def started_by(bus: Bus, task_id: UUID) -> list[tuple[int, str]]:
    """(attempt, executor_id) of every TaskStarted of a task, in stream order."""
    return [
        (e.data["attempt"], e.data["executor_id"])
        for e in await stream_envelopes(bus.js)
        if e.type == "TaskStarted" and e.aggregate_id == task_id
    ]


async def test_a_task_completes_with_its_output_and_streams_lines_live(
    bus: Bus, start_executor: StartExecutor
) -> None:
    await start_executor("a")
    lines: list[tuple[float, ProgressLine]] = []

    async def on_line(msg) -> None:
        lines.append((time.monotonic(), ProgressLine.model_validate_json(msg.data)))

    sub = await bus.nc.subscribe(f"{subjects.PROGRESS_PREFIX}.>", cb=on_line)
    try:
        task_id = await submit(
            bus, "echo first\nsleep 0.2\necho to-stderr >&2\nsleep 1.3\necho second\n"
        )
        await eventually(
            lambda: any(p.line == "first" for _, p in lines), timeout=20, what="the first line"
        )
        view = await get_task(bus, task_id)
        assert view.status is TaskStatus.RUNNING  # the line came while the command still ran
        assert view.executor_id == "a"

        done = await wait_for_status(bus, task_id, TaskStatus.COMPLETED)
    finally:
        await sub.unsubscribe()
    assert done.output == "first\nsecond\n"
    assert done.exit_code == 0
    assert done.usage.duration_s >= 1.5
    mine = [p for _, p in lines if p.task_id == task_id]
    assert [(p.stream, p.line) for p in mine] == [
        ("stdout", "first"),
        ("stderr", "to-stderr"),
        ("stdout", "second"),
    ]
    assert [p.seq for p in mine] == [1, 2, 3]
    assert {p.attempt for p in mine} == {1}


async def test_a_failing_command_fails_the_task_with_exit_code_and_stderr(
    bus: Bus, start_executor: StartExecutor
) -> None:
    await start_executor("a")
    task_id = await submit(
        bus, "echo partial\necho 'fatal: it broke' >&2\nexit 3\n", retry=RetryPolicy(max_attempts=1)
    )
    view = await wait_for_status(bus, task_id, TaskStatus.FAILED)
    assert view.exit_code == 3
    assert view.reason is not None and view.reason.startswith("exit code 3: fatal: it broke")
    assert view.output == "partial\n"
    assert view.stderr == "fatal: it broke\n"  # the tail of stderr, beside the reason


def wait_for_file(path: Path) -> str:
    """A command that blocks until the test creates `path`: a slow machine starting the
    second executor cannot let the first one finish the task before it is killed."""
    return f"while [ ! -e {path} ]; do sleep 0.05; done\n"


async def test_a_killed_executors_task_is_redelivered_and_completes_on_another(
    bus: Bus, start_executor: StartExecutor, tmp_path: Path
) -> None:
    a = await start_executor("a", **FAST_ACK_WAIT)
    go = tmp_path / "go"
    task_id = await submit(bus, wait_for_file(go) + "echo done\n")
    view = await wait_for_status(bus, task_id, TaskStatus.RUNNING)
    assert view.executor_id == "a"
    await start_executor("b", **FAST_ACK_WAIT)

    a.kill()  # kill -9: no report, no ack, no goodbye
    go.touch()
    done = await wait_for_status(bus, task_id, TaskStatus.COMPLETED, timeout=30)
    assert done.executor_id == "b"
    assert done.output == "done\n"
    assert done.attempt == 1  # the same attempt, run again: not a retry
    assert await started_by(bus, task_id) == [(1, "a"), (1, "b")]


async def test_a_killed_executors_command_and_its_helpers_are_stopped(
    bus: Bus, start_executor: StartExecutor, tmp_path: Path
) -> None:
    """kill -9 of the executor: its command runs in a session of its own, so nothing else
    would stop it, and the redelivered attempt would run beside it. Its reaper does."""
    a = await start_executor("a", **FAST_ACK_WAIT)
    shell_pid, sleeper_pid = tmp_path / "shell.pid", tmp_path / "sleeper.pid"
    never = tmp_path / "never"
    script = f"echo $$ > {shell_pid}\nsleep 60 &\necho $! > {sleeper_pid}\n" + wait_for_file(never)
    task_id = await submit(bus, script)
    pids = [await read_pid(shell_pid), await read_pid(sleeper_pid)]
    await wait_for_status(bus, task_id, TaskStatus.RUNNING)
    assert all(alive(pid) for pid in pids)

    a.kill()
    for pid in pids:
        await eventually(lambda pid=pid: not alive(pid), timeout=10, what=f"pid {pid} gone")


async def test_a_stopped_executor_hands_its_task_back_at_once(
    bus: Bus, start_executor: StartExecutor, tmp_path: Path
) -> None:
    """SIGTERM: the running command is killed and its work redelivered, long before ack_wait."""
    a = await start_executor("a")  # ack_wait 30 s: only the NAK can bring the work back soon
    pids = tmp_path / "pids"
    go = tmp_path / "go"
    task_id = await submit(bus, f"echo $$ >> {pids}\n" + wait_for_file(go) + "echo done\n")
    first_pid = await read_pid(pids)
    await start_executor("b")

    stopping = time.monotonic()
    a.stop()
    assert a.proc is not None and a.proc.returncode == 0
    assert time.monotonic() - stopping < 9
    assert not alive(first_pid)
    go.touch()

    done = await wait_for_status(bus, task_id, TaskStatus.COMPLETED, timeout=20)
    assert done.executor_id == "b"
    assert done.output == "done\n"
    assert time.monotonic() - stopping < 20
    assert "task abandoned at shutdown" in a.output()


async def test_cancelling_a_running_task_kills_its_process_group(
    bus: Bus, start_executor: StartExecutor, tmp_path: Path
) -> None:
    executor = await start_executor("a")
    shell_pid, sleeper_pid = tmp_path / "shell.pid", tmp_path / "sleeper.pid"
    task_id = await submit(
        bus, f"echo $$ > {shell_pid}\nsleep 60 &\necho $! > {sleeper_pid}\nwait\n"
    )
    pids = [await read_pid(shell_pid), await read_pid(sleeper_pid)]
    await wait_for_status(bus, task_id, TaskStatus.RUNNING)
    assert all(alive(pid) for pid in pids)

    reply = await bus.send(CancelTask(task_id=task_id, reason="changed my mind"))
    assert reply.accepted, reply.reason
    for pid in pids:
        await eventually(lambda pid=pid: not alive(pid), timeout=10, what=f"pid {pid} gone")
    view = await wait_for_status(bus, task_id, TaskStatus.CANCELLED)
    assert view.status is TaskStatus.CANCELLED

    # the executor's report was rejected (task already cancelled) and the work acked
    async def work_acked() -> bool:
        info = await bus.js.consumer_info(subjects.WORK_STREAM, DURABLE_NAME)
        return info.num_ack_pending == 0 and info.num_pending == 0

    await eventually(work_acked, timeout=10, what="the work message acked")
    assert "stopping run" in executor.output()


async def test_a_task_past_its_timeout_is_killed_and_timed_out(
    bus: Bus, start_executor: StartExecutor, tmp_path: Path
) -> None:
    await start_executor("a")
    pid_file = tmp_path / "pid"
    task_id = await submit(bus, f"echo $$ > {pid_file}\nexec sleep 60\n", timeout_s=1.5)
    pid = await read_pid(pid_file)
    view = await wait_for_status(bus, task_id, TaskStatus.TIMED_OUT, timeout=20)
    assert view.reason == "timed out after 1.5s"
    assert not alive(pid)


async def test_a_command_that_cannot_start_fails_with_the_reason(
    bus: Bus, start_executor: StartExecutor
) -> None:
    missing = AgentSpec(name="missing", command=["whoosh-no-such-agent", "--go"])
    assert (await bus.send(RegisterAgent(spec=missing))).accepted
    await start_executor("a")
    reply = await bus.send(SubmitTask(prompt="hello", agent="missing"))
    assert reply.accepted, reply.reason
    view = await wait_for_status(bus, UUID(reply.ids["task_id"]), TaskStatus.FAILED)
    assert view.reason is not None
    assert "whoosh-no-such-agent" in view.reason
    assert "No such file or directory" in view.reason
    assert view.attempt == 1  # not retryable: the next attempt would fail the same way


async def test_milestones_are_stored_while_a_long_task_runs(
    bus: Bus, start_executor: StartExecutor
) -> None:
    await start_executor("a", WHOOSH__EXECUTOR__MILESTONE_INTERVAL_S="0.5")
    task_id = await submit(bus, "echo one\necho two\nsleep 1.6\n")
    await wait_for_status(bus, task_id, TaskStatus.COMPLETED)
    milestones = [
        e.data["message"]
        for e in await stream_envelopes(bus.js)
        if e.type == "TaskProgressed" and e.aggregate_id == task_id
    ]
    assert milestones, "no milestone was stored"
    assert all(m.startswith("running ") and "lines of output" in m for m in milestones)
    assert milestones[-1].endswith("2 lines of output")


async def test_a_task_longer_than_ack_wait_keeps_its_message(
    bus: Bus, start_executor: StartExecutor
) -> None:
    """In-progress acks hold the work: an idle second executor never gets a copy."""
    short_ack_wait = {"WHOOSH__EXECUTOR__ACK_WAIT_S": "1"}
    await start_executor("a", **short_ack_wait)
    await start_executor("b", **short_ack_wait)
    task_id = await submit(bus, "sleep 3.5\necho done\n")
    done = await wait_for_status(bus, task_id, TaskStatus.COMPLETED, timeout=30)
    assert done.output == "done\n"
    started = await started_by(bus, task_id)
    assert len(started) == 1, started
    info = await bus.js.consumer_info(subjects.WORK_STREAM, DURABLE_NAME)
    assert info.num_redelivered == 0
