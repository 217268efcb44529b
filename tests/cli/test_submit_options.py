"""`whoosh task submit` flags for LLM agents become the task's LlmOptions, or a usage error."""

from __future__ import annotations

import pytest
from whoosh_cli.arguments import build_parser
from whoosh_cli.errors import UsageError
from whoosh_cli.task_commands import submit_command


def submit(*flags: str):
    return submit_command(build_parser().parse_args(["task", "submit", "hello", *flags]))


def test_llm_flags_become_options_with_typed_values() -> None:
    task = submit(
        "--system",
        "be brief",
        "--option",
        "temperature=0.2",
        "--option",
        "stop=[END]",
        "--option",
        "seed=7",
        "--format",
        "json",
    )
    assert task.llm is not None and task.llm.system == "be brief"
    assert task.llm.options == {"temperature": 0.2, "stop": ["END"], "seed": 7}
    assert task.llm.format == "json" and task.llm.raw is False


def test_no_llm_flags_means_no_llm_options() -> None:
    assert submit().llm is None
    assert submit("--raw").llm.raw is True


@pytest.mark.parametrize("bad", ["temperature", "=3", "x=[unclosed"])
def test_malformed_option_is_a_usage_error_naming_it(bad: str) -> None:
    with pytest.raises(UsageError, match="--option"):
        submit("--option", bad)
