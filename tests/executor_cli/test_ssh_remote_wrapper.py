"""The wrapper's shell text, run by a local `sh` standing in for the remote login shell."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from whoosh_executor_cli.remote_wrapper import (
    PROC_TEST,
    PidLine,
    env_lines,
    kill_command,
    parse_cannot_start,
    parse_pid_line,
    run_command,
    seconds,
)


def login_shell(command: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """What sshd does with an exec request: the login shell runs the string, in a new session."""
    return subprocess.run(
        ["sh", "-c", command],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        start_new_session=True,
    )


def test_argv_and_env_survive_the_login_shell_and_the_prompt_stays_on_stdin() -> None:
    argv = ["sh", "-c", 'printf "%s|" "$@"; echo "$V"; cat', "sh", "a b", "'", "$(id)", ";"]
    env = {"V": "$HOME `x`"}
    done = login_shell(
        run_command(argv, deadline_s=10, grace_s=1, env=env),
        stdin=env_lines(env).decode() + "$(id)\n",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "a b|'|$(id)|;|$HOME `x`\n$(id)\n"
    first = done.stderr.splitlines()[0]
    pid_line = parse_pid_line(first)
    assert pid_line is not None and pid_line.leads_session


@pytest.mark.parametrize(
    "value",
    ["", "plain", "a b\tc", "\\0101 \\c \\n %s %b", "'\"$`;|&<>*?[]{}~#!", "é€😀", "x\n\n", "\n"],
    ids=["empty", "plain", "blanks", "backslashes", "shell", "utf8", "newlines", "newline"],
)
def test_env_values_arrive_exactly_through_stdin_and_never_in_the_arguments(value: str) -> None:
    env = {"V": value, "W": "second"}
    command = run_command(
        ["sh", "-c", 'printf "%s|%s|" "$V" "$W"; cat'], deadline_s=10, grace_s=1, env=env
    )
    assert "second" not in command and (not value.strip() or value not in command)
    done = login_shell(command, stdin=env_lines(env).decode() + "prompt")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{value}|second|prompt"


def test_missing_env_lines_are_a_start_failure() -> None:
    done = login_shell(run_command(["true"], deadline_s=10, grace_s=1, env={"V": "x"}))
    assert done.returncode == 127
    reasons = [parse_cannot_start(line) for line in done.stderr.splitlines()]
    assert "the environment did not arrive on stdin" in reasons


def test_the_wrapper_reports_what_cannot_start() -> None:
    done = login_shell(run_command(["whoosh-no-such-cli"], deadline_s=10, grace_s=1))
    assert done.returncode == 127
    reasons = [parse_cannot_start(line) for line in done.stderr.splitlines()]
    assert "command not found: whoosh-no-such-cli" in reasons


def test_the_deadline_holds_without_anyone_watching() -> None:
    done = login_shell(run_command(["sleep", "30"], deadline_s=0.5, grace_s=1))
    assert done.returncode == 124


def test_a_death_by_signal_is_passed_on() -> None:
    done = login_shell(run_command(["sh", "-c", "kill -TERM $$"], deadline_s=10, grace_s=1))
    assert done.returncode == -signal.SIGTERM


def test_env_names_that_are_not_shell_names_are_refused() -> None:
    with pytest.raises(ValueError, match="not valid"):
        run_command(["true"], deadline_s=1, grace_s=1, env={"A-B": "x"})
    with pytest.raises(ValueError, match="empty"):
        run_command([], deadline_s=1, grace_s=1)


def test_durations_and_kill_targets() -> None:
    assert seconds(None) == "0"  # no deadline
    assert seconds(0) == "0.001"  # never "0", which would mean none
    assert seconds(2.5) == "2.5"
    assert "session" in kill_command(PidLine(pid=10, sid=10), 2)
    assert kill_command(PidLine(pid=10, sid=3), 2).endswith(" 10 2 pid")
    assert parse_pid_line("WHOOSH-PID 5 5") == PidLine(5, 5)
    assert parse_pid_line("WHOOSH-PID x") is None
    assert parse_pid_line("hello") is None


# Both ways the wrapper finds a session's processes: Linux's /proc, and `ps` where a host
# has no /proc/$$/stat (the /proc test made false, so the same script takes its fallback).
WAYS = {"proc": lambda command: command, "ps": lambda command: command.replace(PROC_TEST, "false")}


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not count)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(") ", 1)[1][0] not in "ZX"
    except (OSError, IndexError):
        return False


def wait_gone(pid: int, within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_the_proc_test_is_what_both_scripts_check() -> None:
    assert run_command(["true"], deadline_s=1, grace_s=1).count(PROC_TEST) == 2
    assert kill_command(PidLine(5, 5), 1).count(PROC_TEST) == 1


@pytest.mark.parametrize("way", WAYS)
def test_helpers_left_in_the_session_get_a_term_and_the_pid_line_names_the_session(
    way: str, tmp_path: Path
) -> None:
    # A helper whose name holds ") " and numbers, as a /proc/PID/stat parser must expect.
    odd = tmp_path / "a) 1 2 3 4"
    odd.symlink_to(shutil.which("sleep") or "/bin/sleep")
    script = f'"{odd}" 30 >/dev/null 2>&1 & echo $!'
    done = login_shell(WAYS[way](run_command(["sh", "-c", script], deadline_s=10, grace_s=1)))
    assert done.returncode == 0, done.stderr
    pid_line = parse_pid_line(done.stderr.splitlines()[0])
    assert pid_line is not None and pid_line.leads_session, done.stderr
    helper = int(done.stdout.split()[0])
    assert wait_gone(helper), f"helper {helper} outlived the run ({way})"


@pytest.mark.parametrize("way", WAYS)
def test_the_kill_command_stops_a_whole_session_or_one_pid(way: str) -> None:
    script = "sleep 30 >/dev/null 2>&1 & echo $!; exec sleep 30"
    run = subprocess.Popen(
        ["sh", "-c", run_command(["sh", "-c", script], deadline_s=60, grace_s=1)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert run.stderr is not None and run.stdout is not None
        pid_line = parse_pid_line(run.stderr.readline())
        assert pid_line is not None and pid_line.leads_session
        helper = int(run.stdout.readline())
        stray = subprocess.Popen(["sleep", "30"], start_new_session=True)  # another session
        try:
            killed = login_shell(WAYS[way](kill_command(pid_line, 1)))
            assert killed.returncode == 0, killed.stderr
            run.wait(10)
            assert wait_gone(helper) and wait_gone(pid_line.pid)
            assert alive(stray.pid), "a process of another session was killed"
            # "pid" mode: that process only.
            login_shell(WAYS[way](kill_command(PidLine(stray.pid, 0), 1)))
            assert wait_gone(stray.pid)
        finally:
            stray.kill()
            stray.wait()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)
        run.wait()
