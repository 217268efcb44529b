"""RemoteProcess against a real sshd: stdin, env, workdir, streaming, exit codes, timeout,
cancel (checked with ps on the host), and start failures with their causes.

The "remote host" is this machine, so the test can look at the processes a run left
behind with ps, exactly as an operator on the host would.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from executor_cli.sshd_server import SshdServer, keygen, sshd_factory_fixture, sshd_fixture
from harness import eventually, free_port
from whoosh_executor_cli.remote_process import RemoteProcess
from whoosh_executor_cli.run_result import Outcome
from whoosh_executor_cli.ssh_client import SshPool
from whoosh_shared.contract.agents import SshTarget

__all__ = ["sshd_factory_fixture", "sshd_fixture"]  # fixtures, found here by pytest


@pytest.fixture
async def pool() -> AsyncIterator[SshPool]:
    pool = SshPool()
    yield pool
    await pool.close()


def target_of(server: SshdServer, **settings: object) -> SshTarget:
    target = server.agent("remote", ["sh"], ssh=server.settings(**settings)).ssh_target()
    assert target is not None
    return target


def session_members(sid: int) -> list[str]:
    """`ps` on the host: the live processes of session `sid` (pid, stat, command)."""
    out = subprocess.run(
        ["ps", "-eo", "pid=,sid=,stat=,args="], capture_output=True, text=True, check=True
    ).stdout
    members = []
    for line in out.splitlines():
        pid, session, stat, *args = line.split(None, 3)
        if int(session) == sid and not stat.startswith("Z"):
            members.append(f"{pid} {stat} {' '.join(args)}")
    return members


class Lines:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(self, stream: str, line: str) -> None:
        self.seen.append((stream, line))


def run(server: SshdServer, pool: SshPool, argv: list[str], **kw: object) -> RemoteProcess:
    return RemoteProcess(argv, target=target_of(server), pool=pool, **kw)  # type: ignore[arg-type]


async def test_the_prompt_goes_on_stdin_untouched_by_any_shell(
    sshd: SshdServer,
    pool: SshPool,
) -> None:
    prompt = 'it\'s $(touch /tmp/whoosh-pwned) `id` "quoted" $HOME ; exit 9\nünïcode\n'
    result = await run(sshd, pool, ["cat"], stdin_text=prompt).run()
    assert result.outcome is Outcome.EXITED and result.exit_code == 0
    assert result.output == prompt
    assert not Path("/tmp/whoosh-pwned").exists()


async def test_a_prompt_larger_than_the_ssh_window_arrives_whole(
    sshd: SshdServer,
    pool: SshPool,
) -> None:
    prompt = "x" * 3_000_000 + "\nend"  # beyond asyncssh's 2 MB window
    result = await run(sshd, pool, ["wc", "-c"], stdin_text=prompt).run()
    assert result.output.strip() == str(len(prompt))


async def test_arguments_env_and_workdir_reach_the_command_exactly(
    sshd: SshdServer,
    pool: SshPool,
    tmp_path: Path,
) -> None:
    script = 'printf "%s|" "$@"; echo; echo "A=$A B=$B"; pwd'
    result = await run(
        sshd,
        pool,
        ["sh", "-c", script, "sh", "two words", "it's", "$HOME", "*"],
        env={"A": "x y", "B": "$(id) 'q'"},
        workdir=str(tmp_path),
    ).run()
    assert result.exit_code == 0, result
    assert result.output.splitlines() == [
        "two words|it's|$HOME|*|",
        "A=x y B=$(id) 'q'",
        str(tmp_path),
    ]


SECRET = "tok-5e3c7a91 with spaces, 'quotes', $(id), \\back\\slash, ünï\n\n"


def cmdlines_holding(needle: bytes) -> list[str]:
    """Every process on the host whose command line holds `needle` (as `ps` shows it)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes()
        except OSError:
            continue  # gone meanwhile
        if needle in args:
            shown = args.replace(b"\0", b" ")
            found.append(f"{cmdline.parent.name}: {shown!r}")
    return found


async def test_env_values_never_reach_a_command_line_on_the_host(
    sshd: SshdServer, pool: SshPool
) -> None:
    """The value reaches the command exactly (trailing newlines, quotes, UTF-8 and all),
    while no process on the host (wrapper, timeout, command) has it in its arguments,
    and the prompt still follows on stdin."""
    marker = Path(sshd.root) / "env-run-started"
    script = f'printf %s "$TOKEN" > {marker}.tmp; mv {marker}.tmp {marker}; sleep 2; cat'
    process = run(
        sshd, pool, ["sh", "-c", script], env={"TOKEN": SECRET, "B": "1"}, stdin_text="prompt\n"
    )
    running = asyncio.create_task(process.run())
    await eventually(marker.exists, timeout=20, what="the remote command to start")
    seen_in_args = cmdlines_holding(b"tok-5e3c7a91")
    result = await running
    assert seen_in_args == []
    assert marker.read_text() == SECRET
    assert result.exit_code == 0 and result.output == "prompt\n", result


async def test_a_workdir_under_home_is_expanded_on_the_host(
    sshd: SshdServer,
    pool: SshPool,
) -> None:
    result = await run(sshd, pool, ["pwd"], workdir="~").run()
    assert result.output.strip() == str(Path.home())


async def test_lines_stream_live_in_order_without_the_wrappers_own(
    sshd: SshdServer,
    pool: SshPool,
) -> None:
    lines = Lines()
    first = asyncio.Event()

    def sink(stream: str, line: str) -> None:
        lines(stream, line)
        first.set()

    process = run(
        sshd,
        pool,
        ["sh", "-c", "echo early; echo warn >&2; sleep 2; printf late"],
        on_line=sink,
    )
    running = asyncio.create_task(process.run())
    await asyncio.wait_for(first.wait(), timeout=20)
    assert not running.done()  # the line came while the command still ran
    result = await running
    assert lines.seen == [("stdout", "early"), ("stderr", "warn"), ("stdout", "late")]
    assert result.output == "early\nlate"
    assert result.lines == 3
    assert result.last_stderr_line == "warn"
    assert result.pid is not None


async def test_exit_codes_and_deaths_by_signal_read_as_locally(
    sshd: SshdServer,
    pool: SshPool,
) -> None:
    failed = await run(sshd, pool, ["sh", "-c", "echo boom >&2; exit 3"]).run()
    assert (failed.outcome, failed.exit_code, failed.last_stderr_line) == (
        Outcome.EXITED,
        3,
        "boom",
    )
    killed = await run(sshd, pool, ["sh", "-c", "kill -KILL $$"]).run()
    assert (killed.outcome, killed.exit_code) == (Outcome.EXITED, -9)


async def test_stderr_beyond_its_bound_reports_its_tail_without_the_wrappers_lines(
    sshd: SshdServer,
    pool: SshPool,
) -> None:
    script = 'i=0; while [ $i -lt 500 ]; do echo "warn $i" >&2; i=$((i+1)); done; echo last >&2'
    result = await run(sshd, pool, ["sh", "-c", script], stderr_limit=256).run()
    assert result.exit_code == 0
    assert len(result.stderr.encode()) <= 256
    marker, kept = result.stderr.split("\n", 1)
    assert marker.startswith("[... ") and marker.endswith(" bytes of stderr dropped ...]")
    assert kept.endswith("warn 499\nlast\n")
    short = await run(sshd, pool, ["sh", "-c", "echo oops >&2"]).run()
    assert short.stderr == "oops\n"  # the wrapper's pid line is not the command's stderr


async def test_a_timeout_kills_the_whole_run_on_the_host(
    sshd: SshdServer,
    pool: SshPool,
) -> None:
    process = run(sshd, pool, ["sh", "-c", "sleep 60 & sleep 60"], timeout_s=1.0)
    started = time.monotonic()
    result = await process.run()
    assert result.outcome is Outcome.TIMED_OUT
    assert time.monotonic() - started < 8
    assert result.pid is not None
    await eventually(lambda: not session_members(result.pid), timeout=5, what="no process left")


async def test_cancel_terms_then_kills_after_the_grace_and_leaves_nothing(
    sshd: SshdServer,
    pool: SshPool,
    tmp_path: Path,
) -> None:
    ready = tmp_path / "ready"
    script = f"trap '' TERM; sleep 60 & touch {ready}; wait"  # ignores TERM: needs the KILL
    process = run(sshd, pool, ["sh", "-c", script], kill_grace_s=1.0)
    running = asyncio.create_task(process.run())
    await eventually(ready.exists, timeout=10, what="the command to start")
    assert process.pid is not None
    assert len(session_members(process.pid)) >= 2  # the wrapper's session holds the run
    cancelled_at = time.monotonic()
    process.cancel("changed my mind")
    result = await asyncio.wait_for(running, 15)
    assert result.outcome is Outcome.CANCELLED
    assert result.cancel_reason == "changed my mind"
    assert 0.9 <= time.monotonic() - cancelled_at < 10  # it waited out the grace
    assert session_members(process.pid) == []


async def test_cancel_before_start_never_runs_anything(
    sshd: SshdServer,
    pool: SshPool,
) -> None:
    process = run(sshd, pool, ["sh", "-c", "echo ran"])
    process.cancel("too late")
    result = await process.run()
    assert result.outcome is Outcome.CANCELLED and result.output == "" and result.pid is None


async def test_a_missing_command_or_directory_is_a_start_failure_naming_the_host(
    sshd: SshdServer,
    pool: SshPool,
) -> None:
    missing = await run(sshd, pool, ["whoosh-no-such-cli", "-p"]).run()
    assert missing.outcome is Outcome.START_FAILED
    assert missing.error is not None
    assert "whoosh-no-such-cli" in missing.error and "not found" in missing.error
    assert f"127.0.0.1:{sshd.port}" in missing.error
    nodir = await run(sshd, pool, ["true"], workdir="/no/such/dir").run()
    assert nodir.outcome is Outcome.START_FAILED
    assert nodir.error is not None and "/no/such/dir" in nodir.error


async def test_an_unreachable_host_is_a_transport_failure(pool: SshPool, sshd: SshdServer) -> None:
    target = target_of(sshd).model_copy(update={"port": free_port()})  # nobody listens there
    result = await RemoteProcess(["true"], target=target, pool=pool).run()
    assert result.outcome is Outcome.TRANSPORT_FAILED
    assert result.error is not None and "cannot reach" in result.error


async def test_a_refused_key_is_a_start_failure(
    sshd: SshdServer,
    pool: SshPool,
    tmp_path: Path,
) -> None:
    stranger = keygen(tmp_path / "stranger")
    target = target_of(sshd, identity_file=str(stranger))
    result = await RemoteProcess(["true"], target=target, pool=pool).run()
    assert result.outcome is Outcome.START_FAILED
    assert result.error is not None and "authentication failed" in result.error
