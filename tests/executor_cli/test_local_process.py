"""The process runner on real processes: stdin, streaming, timeout, cancel, group kills."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest
import uvloop
from harness import alive, eventually
from whoosh_executor_cli.local_process import LocalProcess, Outcome, RunResult
from whoosh_executor_cli.output import stderr_dropped_notice, truncation_notice

PY = sys.executable


async def read_pid(path: Path) -> int:
    await eventually(lambda: path.exists() and path.read_text().strip(), what=f"pid in {path}")
    return int(path.read_text().strip())


class Lines:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(self, stream: str, line: str) -> None:
        self.seen.append((stream, line))


async def test_prompt_reaches_the_command_on_stdin_and_stdin_is_closed() -> None:
    prompt = "line one\nline two with ünïcode\n" + "x" * 200_000  # beyond a pipe buffer
    result = await LocalProcess(["cat"], stdin_text=prompt).run()
    assert result.outcome is Outcome.EXITED
    assert result.exit_code == 0
    # cat only exits on end of input, so this also shows stdin was closed
    assert result.output.endswith("x" * 1000)
    assert "ünïcode" in result.output or result.output_truncated


async def test_small_prompt_round_trips_exactly() -> None:
    result = await LocalProcess(["cat"], stdin_text="hello\nworld").run()
    assert result.output == "hello\nworld"


async def test_lines_stream_in_order_with_their_stream() -> None:
    lines = Lines()
    script = (
        "import sys, time\n"
        "for i in range(5):\n"
        "    print(f'out {i}', flush=True)\n"
        "    time.sleep(0.01)\n"
        "print('warning: careful', file=sys.stderr, flush=True)\n"
        "print('last', end='', flush=True)\n"
    )
    result = await LocalProcess([PY, "-c", script], on_line=lines).run()
    stdout = [line for stream, line in lines.seen if stream == "stdout"]
    assert stdout == ["out 0", "out 1", "out 2", "out 3", "out 4", "last"]
    assert ("stderr", "warning: careful") in lines.seen
    assert result.lines == 7
    assert result.output == "out 0\nout 1\nout 2\nout 3\nout 4\nlast"
    assert result.last_stderr_line == "warning: careful"


async def test_lines_arrive_while_the_command_still_runs() -> None:
    lines = Lines()
    gate = asyncio.Event()

    def sink(stream: str, line: str) -> None:
        lines(stream, line)
        gate.set()

    process = LocalProcess(["sh", "-c", "echo early; sleep 2; echo late"], on_line=sink)
    running = asyncio.create_task(process.run())
    started = time.monotonic()
    await asyncio.wait_for(gate.wait(), timeout=1.5)
    assert lines.seen == [("stdout", "early")]
    assert time.monotonic() - started < 1.5
    await running


async def test_failing_command_reports_exit_code_and_last_stderr_line() -> None:
    result = await LocalProcess(
        ["sh", "-c", "echo partial; echo first >&2; echo boom >&2; exit 3"]
    ).run()
    assert result.outcome is Outcome.EXITED
    assert result.exit_code == 3
    assert result.output == "partial\n"
    assert result.last_stderr_line == "boom"


async def test_env_is_merged_over_the_executor_environment_and_workdir_used(
    tmp_path: Path,
) -> None:
    result = await LocalProcess(
        ["sh", "-c", 'echo "$AGENT_TEST_VAR $PATH_SET"; pwd'],
        env={"AGENT_TEST_VAR": "from-agent", "PATH_SET": "yes" if os.environ.get("PATH") else ""},
        workdir=str(tmp_path),
    ).run()
    first, second = result.output.splitlines()
    assert first == "from-agent yes"  # PATH still there: merged, not replaced
    assert Path(second).resolve() == tmp_path.resolve()


async def test_agent_code_never_inherits_whoosh_secrets_and_references_resolve(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WHOOSH_ADMIN_KEY", "whk_admin_secret")
    monkeypatch.setenv("WHOOSH__NATS__PASSWORD", "nats-secret")
    monkeypatch.setenv("WHOOSH_STORE_URL", "postgresql://u:pw@db/whoosh")
    monkeypatch.setenv("VENDOR_TOKEN", "t0k")
    for env in ({}, {"AUTH": "Bearer ${VENDOR_TOKEN}"}):  # inherited with and without env
        result = await LocalProcess(["sh", "-c", "env"], env=env).run()
        assert "whk_admin_secret" not in result.output and "nats-secret" not in result.output
        assert "WHOOSH" not in result.output and "pw@db" not in result.output
    assert "AUTH=Bearer t0k" in result.output.splitlines()
    missing = await LocalProcess(["sh", "-c", "env"], env={"A": "${NOT_SET_HERE}"}).run()
    assert missing.outcome is Outcome.START_FAILED
    assert missing.error == "env A: ${NOT_SET_HERE} is not set in the executor's environment"
    forbidden = await LocalProcess(["true"], env={"A": "${WHOOSH_ADMIN_KEY}"}).run()
    assert forbidden.outcome is Outcome.START_FAILED and "WHOOSH's own" in forbidden.error


async def test_timeout_kills_the_whole_group_including_a_grandchild(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    command = ["sh", "-c", f"sleep 60 & echo $! > {pid_file}; wait"]
    started = time.monotonic()
    result = await LocalProcess(command, timeout_s=0.5, kill_grace_s=1.0).run()
    elapsed = time.monotonic() - started
    assert result.outcome is Outcome.TIMED_OUT
    assert elapsed < 5
    grandchild = await read_pid(pid_file)
    assert result.pid is not None
    await eventually(lambda: not alive(grandchild), timeout=3, what="grandchild gone")
    assert not alive(result.pid)


async def test_a_grandchild_ignoring_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    pid_file = tmp_path / "stubborn.pid"
    stubborn = (
        "import os, signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "time.sleep(60)\n"
    )
    process = LocalProcess([PY, "-c", stubborn], timeout_s=30, kill_grace_s=0.5)
    running = asyncio.create_task(process.run())
    pid = await read_pid(pid_file)
    started = time.monotonic()
    process.cancel("test says stop")
    result = await running
    assert result.outcome is Outcome.CANCELLED
    assert result.cancel_reason == "test says stop"
    assert 0.4 < time.monotonic() - started < 4  # waited out the grace, then SIGKILL
    assert not alive(pid)


async def test_cancel_kills_the_group(tmp_path: Path) -> None:
    child_pid = tmp_path / "child.pid"
    grandchild_pid = tmp_path / "grandchild.pid"
    command = ["sh", "-c", f"echo $$ > {child_pid}; sleep 60 & echo $! > {grandchild_pid}; wait"]
    lines = Lines()
    process = LocalProcess(command, kill_grace_s=1.0, on_line=lines)
    running = asyncio.create_task(process.run())
    pids = [await read_pid(child_pid), await read_pid(grandchild_pid)]
    assert all(alive(pid) for pid in pids)
    process.cancel("task cancelled")
    result = await asyncio.wait_for(running, timeout=5)
    assert result.outcome is Outcome.CANCELLED
    for pid in pids:
        await eventually(lambda pid=pid: not alive(pid), timeout=3, what=f"pid {pid} gone")


async def test_cancel_before_the_run_never_starts_the_command(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    process = LocalProcess(["touch", str(marker)])
    process.cancel("cancelled early")
    result = await process.run()
    assert result.outcome is Outcome.CANCELLED
    assert result.pid is None
    assert not marker.exists()


async def test_helpers_left_behind_after_a_normal_exit_are_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "helper.pid"
    # the helper keeps the stdout pipe open; the run must still end, and the helper with it
    result = await asyncio.wait_for(
        LocalProcess(
            ["sh", "-c", f"sleep 60 & echo $! > {pid_file}; echo done"], kill_grace_s=0.5
        ).run(),
        timeout=6,
    )
    assert result.outcome is Outcome.EXITED
    assert result.exit_code == 0
    assert result.output == "done\n"
    helper = await read_pid(pid_file)
    await eventually(lambda: not alive(helper), timeout=3, what="helper gone")


FD_CHECK = "import os; print(os.getsid(0) == os.getppid(), sorted(os.listdir('/proc/self/fd')))"


async def test_a_command_starts_as_from_a_shell() -> None:
    """SIGPIPE is back at its default (Python ignores it, and a shell cannot undo an ignored
    signal it inherits: `yes | head` would end with "Broken pipe" errors), the command
    leads its own session (its group is what a kill reaches), and it inherits no
    descriptor beyond stdin, stdout and stderr (checked while pytest holds inheritable
    ones: an `os.posix_spawn` without closing them leaked two here)."""
    script = f'yes | head -n 1; {PY} -c "{FD_CHECK}"'
    result = await LocalProcess(["sh", "-c", script]).run()
    assert result.outcome is Outcome.EXITED, result
    assert (result.exit_code, result.stderr) == (0, "")
    # python's session is sh's, i.e. sh leads it; python's fds: 0-2 and listdir's own
    assert result.output.splitlines() == ["y", "True ['0', '1', '2', '3']"]


async def test_command_not_found_gives_a_clear_reason() -> None:
    result = await LocalProcess(["whoosh-no-such-command", "--flag"]).run()
    assert result.outcome is Outcome.START_FAILED
    assert result.error is not None
    assert "whoosh-no-such-command" in result.error
    assert "No such file or directory" in result.error


async def test_command_without_permission_gives_a_clear_reason(tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    result = await LocalProcess([str(script)]).run()
    assert result.outcome is Outcome.START_FAILED
    assert result.error is not None
    assert str(script) in result.error
    assert "Permission denied" in result.error


async def test_missing_workdir_is_named_in_the_reason(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = await LocalProcess(["true"], workdir=str(missing)).run()
    assert result.outcome is Outcome.START_FAILED
    assert result.error is not None
    assert str(missing) in result.error


async def test_long_output_keeps_the_tail_and_says_it_was_truncated() -> None:
    limit = 1000
    script = "for i in range(2000): print(f'line {i:05d}')"  # 11 chars a line: 22000 chars
    lines = Lines()
    result = await LocalProcess([PY, "-c", script], output_limit=limit, on_line=lines).run()
    assert result.output_truncated
    assert len(result.output) <= limit
    assert result.output.startswith("[output truncated: the first ")
    assert result.output.endswith("line 01999\n")
    dropped = 22000 - (len(result.output) - len(result.output.splitlines(True)[0]))
    assert result.output.splitlines(True)[0] == truncation_notice(dropped)
    assert len(lines.seen) == 2000  # the live stream is not truncated


async def test_a_second_run_is_refused() -> None:
    process = LocalProcess(["true"])
    await process.run()
    with pytest.raises(RuntimeError):
        await process.run()


async def test_stderr_beyond_its_bound_reports_only_its_tail_with_the_dropped_bytes() -> None:
    script = (
        "import sys\n"
        "for i in range(2000):\n"
        "    print(f'warn {i:05d}', file=sys.stderr)\n"  # 11 bytes a line, 22000 in all
        "print('fatal: the end', file=sys.stderr)\n"
        "print('done')\n"
    )
    result = await LocalProcess([PY, "-c", script], stderr_limit=1024).run()
    assert result.exit_code == 0 and result.output == "done\n"
    assert len(result.stderr.encode()) <= 1024
    marker, kept = result.stderr.split("\n", 1)
    assert kept.endswith("warn 01999\nfatal: the end\n")
    total = 2000 * 11 + len("fatal: the end\n")
    assert marker + "\n" == stderr_dropped_notice(total - len(kept.encode()))
    assert "done" not in result.stderr  # stdout stays out of it


def waits_for_input(started: Path, got: Path) -> list[str]:
    """A command that says it started, then acts only on what it reads from stdin."""
    return [
        "sh",
        "-c",
        f'echo early; touch {started}; read -r line; echo "$line" > {got}; echo done',
    ]


async def test_a_held_run_gets_its_input_and_passes_on_its_lines_only_once_released(
    tmp_path: Path,
) -> None:
    started, got = tmp_path / "started", tmp_path / "got"
    lines = Lines()
    process = LocalProcess(
        waits_for_input(started, got), stdin_text="go\n", on_line=lines, held=True
    )
    running = asyncio.create_task(process.run())
    await eventually(started.exists, what="the held command started")
    await asyncio.sleep(0.2)
    assert not got.exists()  # no input yet
    assert lines.seen == []  # "early" is held back
    process.release()
    result = await asyncio.wait_for(running, timeout=5)
    assert result.outcome is Outcome.EXITED and result.exit_code == 0
    assert got.read_text() == "go\n"
    assert lines.seen == [("stdout", "early"), ("stdout", "done")]


async def test_a_held_run_cancelled_before_its_release_never_gets_its_input(
    tmp_path: Path,
) -> None:
    started, got = tmp_path / "started", tmp_path / "got"
    lines = Lines()
    process = LocalProcess(
        waits_for_input(started, got), stdin_text="go\n", on_line=lines, held=True, kill_grace_s=1
    )
    running = asyncio.create_task(process.run())
    await eventually(started.exists, what="the held command started")
    process.cancel("claim refused")
    result = await asyncio.wait_for(running, timeout=5)
    assert result.outcome is Outcome.CANCELLED
    assert not got.exists()
    assert lines.seen == []  # nothing of a run that was not ours went out
    assert not alive(result.pid)


def test_runs_work_the_same_on_uvloop() -> None:
    """The executor runs on uvloop: input, output, exit codes, and a command that exits
    without reading a prompt larger than a pipe's buffer."""

    async def runs() -> tuple[RunResult, RunResult, str]:
        echoed = await LocalProcess(["cat"], stdin_text="hello\n" * 50_000).run()
        ignored = await LocalProcess(["sh", "-c", "exit 3"], stdin_text="x" * 1_000_000).run()
        return echoed, ignored, type(asyncio.get_running_loop()).__module__

    echoed, ignored, loop_module = uvloop.run(runs())
    assert loop_module.startswith("uvloop")
    assert (echoed.outcome, echoed.exit_code) == (Outcome.EXITED, 0)
    assert echoed.output.endswith("hello\n" * 1_000)  # 300 KB through the pipes, tail kept
    assert (ignored.outcome, ignored.exit_code) == (Outcome.EXITED, 3)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_each_pipe_descriptor_is_closed_exactly_once(
    loop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A descriptor closed twice may by then be another child's pipe (its output would
    never be read). With the loop's pipe transports over Popen's file objects, both the
    transport and the file object closed each one (strace: a quarter of the executor's
    `close` calls failed with EBADF); now every pipe is closed here, once, whether the
    command reads its input, ignores it, is killed or times out."""
    live: set[int] = set()  # pipe ends open now
    opened: list[int] = []
    failed: list[int] = []  # closes of a descriptor that was not open
    real_pipe, real_close = os.pipe, os.close

    def pipe() -> tuple[int, int]:
        r, w = real_pipe()
        live.update((r, w))
        opened.extend((r, w))
        return r, w

    def close(fd: int) -> None:
        live.discard(fd)
        try:
            real_close(fd)
        except OSError:
            failed.append(fd)
            raise

    monkeypatch.setattr(os, "pipe", pipe)
    monkeypatch.setattr(os, "close", close)

    async def runs() -> list[RunResult]:
        commands = [
            LocalProcess(["cat"], stdin_text="x" * 300_000),
            LocalProcess(["sh", "-c", "echo out; echo err >&2; exit 2"], stdin_text="p"),
            LocalProcess(["sh", "-c", "exit 0"], stdin_text="y" * 300_000),
            LocalProcess([PY, "-c", "import time; time.sleep(5)"], timeout_s=0.3, kill_grace_s=1),
        ]
        return await asyncio.gather(*(c.run() for c in commands))

    results = uvloop.run(runs()) if loop == "uvloop" else asyncio.run(runs())
    assert [r.outcome for r in results] == [Outcome.EXITED] * 3 + [Outcome.TIMED_OUT]
    assert len(opened) == 4 * 8  # per command: its three pipes and Popen's error pipe
    assert live == set()  # every end closed, and here: not left to a file object or libuv
    assert failed == []  # none closed twice
