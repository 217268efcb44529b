"""The wrapper's shell text, run by a local `sh` standing in for the remote login shell."""

from __future__ import annotations

import signal
import subprocess

import pytest
from whoosh_executor_cli.remote_wrapper import (
    PidLine,
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
    done = login_shell(
        run_command(argv, deadline_s=10, grace_s=1, env={"V": "$HOME `x`"}), stdin="$(id)\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "a b|'|$(id)|;|$HOME `x`\n$(id)\n"
    first = done.stderr.splitlines()[0]
    pid_line = parse_pid_line(first)
    assert pid_line is not None and pid_line.leads_session


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
