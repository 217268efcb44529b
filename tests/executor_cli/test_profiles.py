"""Agent profiles: argv building, parsing recorded CLI output, and the verdict.

The recordings under `recordings/` are shaped as each CLI's documentation
defines its stream (see the module docstrings of the profiles for the sources).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from whoosh_executor_cli.profiles import (
    PROFILES,
    ErrorEvent,
    Finished,
    Started,
    TextDelta,
    ToolCall,
    ToolResult,
    UsageReport,
    Verdict,
    decide,
    profile_for,
)
from whoosh_executor_cli.profiles.base import AgentRun, Profile
from whoosh_shared.contract.commands import CompleteTask, FailTask, Usage
from whoosh_shared.contract.enums import CliKind

HERE = Path(__file__).parent
RECORDINGS = HERE / "recordings"
FAKE_CLIS = HERE / "fake_clis"


def replay(kind: CliKind, recording: str, exit_code: int | None) -> tuple[list, Verdict]:
    """Feed a recording to a fresh run line by line, as the executor's splitter would."""
    run = profile_for(kind).start()
    events = []
    text = (RECORDINGS / recording).read_text(encoding="utf-8")
    for line in text.split("\n"):
        events.extend(run.feed(line))
    return events, run.finish(exit_code)


def kinds(events: list) -> list[str]:
    return [type(event).__name__ for event in events]


# --- the registry ---


def test_every_cli_kind_has_a_profile() -> None:
    assert set(PROFILES) == set(CliKind)
    for kind in CliKind:
        assert profile_for(kind).kind is kind
        assert profile_for(kind.value) is PROFILES[kind]


# --- argv ---


@pytest.mark.parametrize(
    ("kind", "base", "expected"),
    [
        (
            CliKind.CLAUDE,
            ["claude"],
            ["claude", "-p", "--output-format", "stream-json", "--verbose"],
        ),
        (
            CliKind.CLAUDE,
            ["claude", "--print", "--model", "opus", "--output-format=json", "--verbose"],
            ["claude", "--print", "--model", "opus", "--verbose", "--output-format", "stream-json"],
        ),
        (
            CliKind.CLAUDE,
            ["claude", "-p", "--output-format", "text", "--max-turns", "5"],
            ["claude", "-p", "--max-turns", "5", "--output-format", "stream-json", "--verbose"],
        ),
        (CliKind.CODEX, ["codex"], ["codex", "exec", "--json", "-"]),
        (
            CliKind.CODEX,
            ["codex", "exec", "--full-auto", "-m", "gpt-5-codex"],
            ["codex", "exec", "--json", "--full-auto", "-m", "gpt-5-codex", "-"],
        ),
        (
            CliKind.CODEX,
            ["codex", "--model", "o3", "exec", "--json", "-"],
            ["codex", "--model", "o3", "exec", "--json", "-"],
        ),
        (CliKind.GEMINI, ["gemini"], ["gemini", "--output-format", "stream-json"]),
        (
            CliKind.GEMINI,
            ["gemini", "-m", "gemini-2.5-pro", "-o", "json", "--yolo"],
            ["gemini", "-m", "gemini-2.5-pro", "--yolo", "--output-format", "stream-json"],
        ),
        (CliKind.GENERIC, ["python3", "-u", "agent.py"], ["python3", "-u", "agent.py"]),
    ],
)
def test_argv_adds_the_non_interactive_flags(
    kind: CliKind, base: list[str], expected: list[str]
) -> None:
    profile = profile_for(kind)
    argv = profile.build_argv(base)
    assert argv == expected
    assert profile.build_argv(argv) == argv  # idempotent
    assert base == list(base)  # the agent's own command is not changed in place


def test_the_prompt_is_never_put_in_argv() -> None:
    base = ["tool", "--flag"]
    for profile in PROFILES.values():
        argv = profile.build_argv(base)
        assert argv[:2] == base
        assert (
            not set(argv)
            - set(base)
            - {
                "-p",
                "--output-format",
                "stream-json",
                "--verbose",
                "exec",
                "--json",
                "-",
            }
        )


# --- recordings: events, verdict, usage, side effects ---


@dataclass(frozen=True)
class Case:
    kind: CliKind
    recording: str
    exit_code: int | None
    success: bool
    reason: str  # a part of the verdict's reason
    tokens_in: int
    tokens_out: int
    cached: int | None
    cost_usd: float | None
    duration_s: float | None
    side_effects: bool
    tool_calls: int
    text: str  # a part of the verdict's text
    by_exit_code: bool = False


CASES = [
    Case(
        CliKind.CLAUDE, "claude_success.jsonl", 0, True, "success after 5 turns",
        12 + 2148 + 52110, 412, 52110, 0.0421837, 18.234, True, 2,
        "Fixed: `add` in calc.py subtracted",
    ),
    Case(
        CliKind.CLAUDE, "claude_error_max_turns.jsonl", 1, False,
        "error_max_turns: stopped at the turn limit after 2 turns",
        8 + 1024 + 28672, 176, 28672, 0.0184512, 9.12, True, 1,
        "Let me run the test suite",
    ),
    Case(
        CliKind.CLAUDE, "claude_unknown_events.jsonl", 0, True, "success after 5 turns",
        12 + 2148 + 52110, 412, 52110, 0.0421837, 18.234, False, 0,
        "Fixed: `add` in calc.py subtracted",
    ),
    Case(
        CliKind.CLAUDE, "claude_truncated.jsonl", 1, False,
        "the output ended without a terminal event; exit code 1",
        0, 0, None, None, None, True, 1, "Let me run the test suite", by_exit_code=True,
    ),
    Case(
        CliKind.CLAUDE, "claude_truncated.jsonl", 0, True,
        "the output ended without a terminal event; exit code 0",
        0, 0, None, None, None, True, 1, "Let me run the test suite", by_exit_code=True,
    ),
    Case(
        CliKind.CODEX, "codex_success.jsonl", 0, True, "turn completed",
        24763, 122, 24448, None, None, True, 3,
        "Fixed `add` in calc.py (it subtracted); both tests pass now.",
    ),
    Case(
        CliKind.CODEX, "codex_turn_failed.jsonl", 1, False,
        "turn failed: unexpected status 401 Unauthorized",
        0, 0, None, None, None, False, 0, "",
    ),
    Case(
        CliKind.GEMINI, "gemini_success.jsonl", 0, True, "success",
        18102, 318, 12288, None, 7.012, True, 2,
        "Fixed: `add` subtracted instead of adding.",
    ),
    Case(
        CliKind.GEMINI, "gemini_error.jsonl", 1, False,
        "MaxSessionTurnsError: Maximum session turns exceeded",
        9310, 170, 0, None, 4.21, True, 1, "",
    ),
    Case(
        CliKind.GEMINI, "gemini_turn_limit.jsonl", 53, False,
        "without a terminal event; exit code 53 (turn limit exceeded)",
        0, 0, None, None, None, False, 1, "Reading the parser module first.", by_exit_code=True,
    ),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.recording}-exit{c.exit_code}")
def test_recorded_run_verdict(case: Case) -> None:
    _, verdict = replay(case.kind, case.recording, case.exit_code)
    assert verdict.success is case.success
    assert case.reason in verdict.reason
    assert verdict.by_exit_code is case.by_exit_code
    assert verdict.exit_code == case.exit_code
    assert verdict.usage.tokens_in == case.tokens_in
    assert verdict.usage.tokens_out == case.tokens_out
    assert verdict.usage.cached_tokens == case.cached
    assert verdict.usage.cost_usd == case.cost_usd
    assert verdict.usage.duration_s == pytest.approx(case.duration_s)
    assert verdict.side_effects is case.side_effects
    assert verdict.tool_calls == case.tool_calls
    assert case.text in verdict.text


def test_claude_success_events() -> None:
    events, _ = replay(CliKind.CLAUDE, "claude_success.jsonl", 0)
    assert kinds(events) == [
        "Started",
        "TextDelta",
        "ToolCall",
        "ToolResult",
        "ToolCall",
        "ToolResult",
        "TextDelta",
        "UsageReport",
        "Finished",
    ]
    started, read, edit = events[0], events[2], events[4]
    assert started == Started("9b1f0c52-7a3e-4d8b-b6f1-2c4e8a0d3f71", "claude-sonnet-4-5-20250929")
    assert read == ToolCall(
        "Read",
        "toolu_01QmX4c8Hn2bVr7LpK9sTw3E",
        {"file_path": "/work/repo/tests/test_calc.py"},
        read_only=True,
    )
    assert edit.name == "Edit" and not edit.read_only
    assert events[3].call_id == read.call_id and events[3].ok
    assert "has been updated" in events[5].output
    finished = events[-1]
    assert isinstance(finished, Finished) and finished.success and not finished.by_exit_code


def test_claude_failed_tool_result_is_reported_as_not_ok() -> None:
    events, _ = replay(CliKind.CLAUDE, "claude_error_max_turns.jsonl", 1)
    result = next(e for e in events if isinstance(e, ToolResult))
    assert result == ToolResult(
        "toolu_01Cw8OrX4yLd0Mn3Us6ZqI9K", False, "F.\n1 failed, 1 passed in 0.04s"
    )


def test_codex_success_events() -> None:
    events, _ = replay(CliKind.CODEX, "codex_success.jsonl", 0)
    assert kinds(events) == [
        "Started",
        "ToolCall",  # item_1 started
        "ToolResult",  # item_1 completed: exit code 1
        "ToolCall",  # item_3 file_change, completed only
        "ToolResult",
        "ToolCall",  # item_4 started
        "ToolResult",
        "TextDelta",
        "UsageReport",
        "Finished",
    ]
    assert events[0] == Started("0199a213-81c0-7800-8aa1-bbab2a035a53")
    assert events[1] == ToolCall(
        "command_execution", "item_1", {"command": "bash -lc 'python -m pytest -q'"}
    )
    assert not events[2].ok and "1 failed" in events[2].output
    assert events[3].name == "file_change"
    assert events[4] == ToolResult("item_3", True, "update /work/repo/calc.py")
    assert events[6].ok
    assert events[7] == TextDelta("Fixed `add` in calc.py (it subtracted); both tests pass now.\n")


def test_codex_top_level_error_is_fatal_but_the_turn_event_decides() -> None:
    events, verdict = replay(CliKind.CODEX, "codex_turn_failed.jsonl", 1)
    assert kinds(events) == ["Started", "ErrorEvent", "ErrorEvent", "Finished"]
    assert events[1] == ErrorEvent("model rerouted: gpt-5-codex -> gpt-5", fatal=False)
    assert events[2].fatal
    assert not verdict.by_exit_code
    assert verdict.errors[0].startswith("model rerouted")
    # Cut before turn.failed: the fatal error, not a bare exit code, is the reason.
    lines = (RECORDINGS / "codex_turn_failed.jsonl").read_text().splitlines()[:-1]
    verdict = decide(
        [e for line in lines for e in profile_for(CliKind.CODEX).new_parser().feed(line)], 1
    )
    assert not verdict.success and verdict.by_exit_code
    assert verdict.reason.startswith("unexpected status 401 Unauthorized")
    assert verdict.reason.endswith("(no terminal event; exit code 1)")
    # And an error that the turn recovers from does not fail it.
    recovered = decide([ErrorEvent("stream error; retrying", fatal=True), Finished(True, "ok")], 0)
    assert recovered.success


def test_codex_streamed_message_updates_emit_only_what_is_new() -> None:
    parser = profile_for(CliKind.CODEX).new_parser()

    def item(kind: str, text: str) -> str:
        return json.dumps(
            {"type": kind, "item": {"id": "m", "type": "agent_message", "text": text}}
        )

    assert parser.feed(item("item.updated", "Hel")) == [TextDelta("Hel")]
    assert parser.feed(item("item.updated", "Hello")) == [TextDelta("lo")]
    assert parser.feed(item("item.completed", "Hello!")) == [TextDelta("!\n")]


def test_codex_legacy_item_type_spelling_is_read() -> None:
    line = json.dumps(
        {
            "type": "item.completed",
            "item": {"id": "item_3", "item_type": "assistant_message", "text": "hi"},
        }
    )
    assert profile_for(CliKind.CODEX).new_parser().feed(line) == [TextDelta("hi\n")]


def test_gemini_success_events() -> None:
    events, verdict = replay(CliKind.GEMINI, "gemini_success.jsonl", 0)
    assert kinds(events) == [
        "Started",
        "TextDelta",
        "ToolCall",
        "ToolResult",
        "ToolCall",
        "ToolResult",
        "TextDelta",
        "TextDelta",
        "UsageReport",
        "Finished",
    ]
    assert events[0] == Started("c4d1e7a2-93b5-4f08-a6d2-7e1b9c3f5a84", "gemini-2.5-pro")
    assert events[2].name == "read_file" and events[2].read_only
    assert events[4].name == "replace" and not events[4].read_only
    # The user message (the prompt echoed back) is not answer text, nor is the narration
    # before the tool calls: the answer is what follows the last one.
    assert events[1] == TextDelta("I'll read the test and the code it covers.")
    assert verdict.text == "Fixed: `add` subtracted instead of adding."


def test_gemini_error_events() -> None:
    events, verdict = replay(CliKind.GEMINI, "gemini_error.jsonl", 1)
    assert events[2] == ToolResult(
        "run_shell_command-1760097601000-0a1b2c",
        False,
        "Command exited with code 1: migrate.sh: database is locked",
    )
    assert events[3] == ErrorEvent("warning: Loop detected, stopping execution")
    assert verdict.errors == ("warning: Loop detected, stopping execution",)


def test_unknown_events_and_noise_are_ignored() -> None:
    noisy, _ = replay(CliKind.CLAUDE, "claude_unknown_events.jsonl", 0)
    clean, _ = replay(CliKind.CLAUDE, "claude_success.jsonl", 0)
    assert noisy == [clean[0], clean[1], clean[6], clean[7], clean[8]]
    run = profile_for(CliKind.CLAUDE).start()
    for line in (RECORDINGS / "claude_unknown_events.jsonl").read_text().splitlines():
        run.feed(line)
    # Counted: the three lines that are not events at all. Unknown types (and an assistant
    # message without a message) are skipped without counting as noise.
    assert run._parser.ignored_lines == 3


def test_a_success_event_wins_over_a_failing_exit_code() -> None:
    _, verdict = replay(CliKind.CLAUDE, "claude_success.jsonl", 1)
    assert verdict.success and not verdict.by_exit_code
    assert "exit code 1 ignored: the terminal event decides" in verdict.reason


@pytest.mark.parametrize(
    ("exit_code", "success", "reason"),
    [
        (0, True, "exit code 0"),
        (3, False, "exit code 3"),
        (-9, False, "killed by signal SIGKILL"),
        (None, False, "no exit code"),
    ],
)
def test_generic_command_is_judged_by_its_exit_code(
    exit_code: int | None, success: bool, reason: str
) -> None:
    run = profile_for(CliKind.GENERIC).start()
    assert run.feed("hello") == [TextDelta("hello\n")]
    assert run.feed('{"type":"result","subtype":"error_max_turns"}') == [
        TextDelta('{"type":"result","subtype":"error_max_turns"}\n')
    ]
    verdict = run.finish(exit_code)
    assert (verdict.success, verdict.reason, verdict.by_exit_code) == (success, reason, True)
    assert verdict.text.startswith("hello\n")
    assert not verdict.side_effects


@pytest.mark.parametrize(
    ("line", "success", "reason"),
    [
        (
            {"type": "result", "subtype": "success", "is_error": True, "result": "API Error: 529"},
            False,
            "error result after 1 turn: API Error: 529",
        ),
        (
            {"type": "result", "subtype": "error_during_execution", "is_error": True,
             "errors": ["Tool permission stream closed"]},
            False,
            "error_during_execution: error during execution after 1 turn: Tool permission",
        ),
        (
            {"type": "result", "subtype": "error_max_budget_usd", "is_error": True},
            False,
            "error_max_budget_usd: stopped at the budget limit after 1 turn",
        ),
        (
            {"type": "result", "subtype": "success", "is_error": False, "cost_usd": 0.5},
            True,
            "success after 1 turn",
        ),
    ],
)  # fmt: skip
def test_claude_result_subtypes(line: dict, success: bool, reason: str) -> None:
    verdict = profile_for(CliKind.CLAUDE).verdict(
        profile_for(CliKind.CLAUDE).new_parser().feed(json.dumps({**line, "num_turns": 1})), 0
    )
    assert verdict.success is success
    assert verdict.reason.startswith(reason)


def test_an_old_claude_cost_field_is_read() -> None:
    events = (
        profile_for(CliKind.CLAUDE)
        .new_parser()
        .feed('{"type":"result","subtype":"success","is_error":false,"cost_usd":0.5}')
    )
    assert events[0] == UsageReport(cost_usd=0.5)


# --- robustness ---


GARBAGE = [
    "",
    "   ",
    "null",
    "42",
    '"text"',
    "[]",
    "{",
    "}",
    "{}",
    '{"type": 5}',
    '{"type": null}',
    '{"type": "result"}',
    '{"type": "result", "usage": "lots", "stats": [1], "total_cost_usd": "0.1", "num_turns": "x"}',
    '{"type": "result", "subtype": ["success"], "is_error": "yes", "errors": "boom"}',
    '{"type": "assistant", "message": {"content": "plain string"}}',
    '{"type": "assistant", "message": {"content": [null, 1, {"type": "tool_use"}, {"type": 0}]}}',
    '{"type": "user", "message": {"content": [{"type": "tool_result", "content": {"x": 1}}]}}',
    '{"type": "item.completed", "item": null}',
    '{"type": "item.completed", "item": {"type": "command_execution", "changes": 3}}',
    '{"type": "item.completed", "item": {"id": 7, "type": "file_change", "changes": [1, "a"]}}',
    '{"type": "item.updated", "item": {"id": "x", "type": "agent_message", "text": 9}}',
    '{"type": "turn.completed", "usage": null}',
    '{"type": "turn.failed", "error": "string"}',
    '{"type": "error"}',
    '{"type": "tool_use", "parameters": "none"}',
    '{"type": "tool_result", "error": 1}',
    '{"type": "message", "role": "assistant", "content": {"a": 1}}',
    '{"type": "init", "session_id": 12}',
    '{"type": "result", "status": "success", "stats": {"input_tokens": true, "duration_ms": "1"}}',
    "\x00\x01\ufffd binary-ish \udcff",
    "{" * 5000 + "}" * 5000,
]


@pytest.mark.parametrize("kind", list(CliKind))
def test_garbage_lines_do_not_crash(kind: CliKind) -> None:
    run = profile_for(kind).start()
    rng = random.Random(7)
    lines = GARBAGE + ["".join(rng.choice('{}[]":,x1 \\') for _ in range(40)) for _ in range(300)]
    for line in lines:
        assert isinstance(run.feed(line), list)
    verdict = run.finish(1)
    assert isinstance(verdict, Verdict)


def test_a_json_line_cut_into_pieces_is_joined_back() -> None:
    """The executor's splitter cuts lines over 16 KiB; a big tool result must survive it."""
    big = "x" * 50_000
    line = json.dumps(
        {"type": "user", "message": {"content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": big}]}}
    )  # fmt: skip
    parser = profile_for(CliKind.CLAUDE).new_parser()
    pieces = [line[i : i + 16_384] for i in range(0, len(line), 16_384)]
    events = [e for piece in pieces for e in parser.feed(piece)]
    assert len(events) == 1 and events[0].call_id == "t1"
    assert events[0].output.startswith("x" * 4000) and "more characters" in events[0].output
    # A broken line followed by a whole one: the broken one is dropped, the next one read.
    assert parser.feed('{"type":"result","subtype":') == []
    assert kinds(parser.feed('{"type":"system","subtype":"init"}')) == ["Started"]
    assert parser.ignored_lines == 1


# --- the verdict and the report ---


def test_side_effects_make_a_failure_not_retryable_unless_the_workspace_is_disposable() -> None:
    _, touched = replay(CliKind.CLAUDE, "claude_error_max_turns.jsonl", 1)
    assert touched.side_effects
    assert not touched.retryable()
    assert touched.retryable(workspace_disposable=True)
    _, untouched = replay(CliKind.CODEX, "codex_turn_failed.jsonl", 1)
    assert not untouched.side_effects and untouched.retryable()
    _, succeeded = replay(CliKind.CODEX, "codex_success.jsonl", 0)
    assert not succeeded.retryable(workspace_disposable=True)


def test_read_only_tools_are_not_side_effects() -> None:
    _, verdict = replay(CliKind.GEMINI, "gemini_turn_limit.jsonl", 53)
    assert verdict.tool_calls == 1 and not verdict.side_effects and verdict.retryable()


def test_usage_lands_in_the_contracts_report() -> None:
    _, verdict = replay(CliKind.CLAUDE, "claude_success.jsonl", 0)
    usage = verdict.to_usage(duration_s=19.5)
    assert usage == Usage(duration_s=19.5, tokens_in=54270, tokens_out=412, cost_usd=0.0421837)
    assert verdict.to_usage().duration_s == pytest.approx(18.234)
    ids = {"task_id": uuid.uuid4(), "attempt": 1}
    report = CompleteTask(**ids, output=verdict.text, exit_code=0, usage=usage)
    assert report.usage.cost_usd == pytest.approx(0.0421837)
    _, failed = replay(CliKind.CODEX, "codex_turn_failed.jsonl", 1)
    FailTask(**ids, reason=failed.reason, retryable=failed.retryable(), usage=failed.to_usage(2.0))


def test_the_last_usage_report_is_the_runs_usage() -> None:
    verdict = decide(
        [UsageReport(10, 1), UsageReport(30, 3, cached_tokens=5), Finished(True, "ok")], 0
    )
    assert verdict.usage == UsageReport(30, 3, cached_tokens=5)


def test_profile_verdict_equals_the_incremental_one() -> None:
    for case in CASES:
        events, incremental = replay(case.kind, case.recording, case.exit_code)
        assert profile_for(case.kind).verdict(events, case.exit_code) == incremental


# --- the fake CLIs, run once for real ---


def clean_env() -> dict[str, str]:
    """This process's environment without any FAKE_CLI_* setting it may have inherited."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FAKE_CLI_")}


def run_fake(
    profile: Profile, prompt: str, **env: str
) -> tuple[subprocess.CompletedProcess[str], Verdict, AgentRun]:
    cli = FAKE_CLIS / profile.kind.value
    argv = profile.build_argv([str(cli)])
    proc = subprocess.run(
        argv, input=prompt, capture_output=True, text=True, timeout=30,
        env={**clean_env(), **env}, check=False,
    )  # fmt: skip
    run = profile.start()
    for line in proc.stdout.split("\n"):
        run.feed(line)
    return proc, run.finish(proc.returncode), run


@pytest.mark.parametrize(
    ("kind", "recording", "exit_code", "success"),
    [
        (CliKind.CLAUDE, "success", 0, True),
        (CliKind.CLAUDE, "error_max_turns", 1, False),
        (CliKind.CLAUDE, "truncated", 1, False),
        (CliKind.CODEX, "success", 0, True),
        (CliKind.CODEX, "turn_failed", 1, False),
        (CliKind.GEMINI, "success", 0, True),
        (CliKind.GEMINI, "error", 1, False),
        (CliKind.GEMINI, "turn_limit", 53, False),
    ],
)
def test_fake_clis_replay_their_recordings(
    kind: CliKind, recording: str, exit_code: int, success: bool, tmp_path: Path
) -> None:
    prompt_out = tmp_path / "prompt.txt"
    prompt = "Fix the failing test.\nIt is in tests/test_calc.py; say what you changed.\n"
    proc, verdict, _ = run_fake(
        profile_for(kind), prompt, FAKE_CLI_RECORDING=recording, FAKE_CLI_PROMPT_OUT=str(prompt_out)
    )
    assert proc.returncode == exit_code, proc.stderr
    assert proc.stdout == (RECORDINGS / f"{kind.value}_{recording}.jsonl").read_text()
    assert prompt_out.read_text() == prompt
    assert verdict.success is success


def test_fake_clis_default_to_success_and_refuse_a_missing_flag_or_prompt() -> None:
    for kind in (CliKind.CLAUDE, CliKind.CODEX, CliKind.GEMINI):
        cli = str(FAKE_CLIS / kind.value)
        proc, verdict, _ = run_fake(profile_for(kind), "hi")
        assert proc.returncode == 0 and verdict.success
        bare = subprocess.run(
            [cli], input="hi", capture_output=True, text=True, env=clean_env(), check=False
        )
        assert bare.returncode == 2 and "missing" in bare.stderr
        argv = profile_for(kind).build_argv([cli])
        empty = subprocess.run(
            argv, input="", capture_output=True, text=True, env=clean_env(), check=False
        )
        assert empty.returncode == 2 and "no prompt" in empty.stderr


def test_fake_cli_exit_code_can_be_overridden() -> None:
    proc, verdict, _ = run_fake(
        profile_for(CliKind.CLAUDE), "hi", FAKE_CLI_RECORDING="truncated", FAKE_CLI_EXIT_CODE="0"
    )
    assert proc.returncode == 0
    assert verdict.success and verdict.by_exit_code


def test_fake_clis_are_executable_python_scripts() -> None:
    for name in ("claude", "codex", "gemini"):
        path = FAKE_CLIS / name
        assert os.access(path, os.X_OK)
        assert path.read_text().startswith("#!/usr/bin/env python3")
