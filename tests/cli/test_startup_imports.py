"""`whoosh --help` stays fast because it imports no command module, no pydantic contract
and no network client (benchmarks/bench_cli_startup.py measures the time itself)."""

from __future__ import annotations

import os
import subprocess
import sys

from whoosh_cli import arguments, collab_arguments
from whoosh_cli.__main__ import COMMANDS, load_command
from whoosh_shared.contract import commands
from whoosh_shared.contract import threads as t

HEAVY = ("pydantic", "httpx", "faststream", "nats", "websockets", "whoosh_cli.task_commands")


def test_help_imports_nothing_heavy() -> None:
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['whoosh', '--help']\n"
        "try:\n    runpy.run_module('whoosh_cli', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout


def test_every_command_name_resolves_to_a_coroutine_function() -> None:
    import inspect

    for key in COMMANDS:
        assert inspect.iscoroutinefunction(load_command(key)), key


def test_the_priority_range_repeated_for_help_matches_the_contract() -> None:
    assert (arguments.MIN_PRIORITY, arguments.MAX_PRIORITY) == (
        commands.MIN_PRIORITY,
        commands.MAX_PRIORITY,
    )


def test_the_thread_choices_repeated_for_help_match_the_contract() -> None:
    for repeated, enum in (
        (collab_arguments.THREAD_KINDS, t.ThreadKind),
        (collab_arguments.ANSWER_TYPES, t.AnswerType),
        (collab_arguments.RULES, t.Rule),
        (collab_arguments.THREAD_STATES, t.ThreadState),
    ):
        assert repeated == tuple(member.value for member in enum), enum


def test_status_over_the_gateway_imports_no_http_client_and_no_query_models(tmp_path) -> None:
    """`whoosh status` is one stdlib GET: no httpx, NATS client or contract query models
    (they cost it about 150 ms of CPU), and an unreachable gateway still reads as such."""
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['whoosh', '--gateway', 'http://127.0.0.1:9', 'status']\n"
        "try:\n    runpy.run_module('whoosh_cli', run_name='__main__')\n"
        "except SystemExit as exc:\n    print('exit', exc.code)\n"
        "heavy = ('httpx', 'faststream', 'nats', 'websockets', 'whoosh_shared.contract.queries')\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHOOSH")}
    env["WHOOSH_DATA_DIR"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True,
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert done.stdout.strip().splitlines()[-2:] == ["exit 3", "[]"], done.stdout
    assert "cannot reach the gateway at http://127.0.0.1:9" in done.stderr
