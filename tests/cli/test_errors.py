"""User errors end as one clear line and a documented exit code, never a traceback.

None of these needs WHOOSH to be running.
"""

from __future__ import annotations

import time

from cli.whoosh_processes import WhooshEnv


def assert_clean_error(result, code: int) -> None:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("whoosh: error: "), result.stderr


def test_malformed_yaml_exits_2_naming_the_line(whoosh_env: WhooshEnv) -> None:
    config = whoosh_env.root / "whoosh.yaml"
    config.write_text("cluster:\n  name: test\nagents:\n  a: [1\n")
    result = whoosh_env.run("status")
    assert_clean_error(result, 2)
    assert str(config) in result.stderr
    assert "line 5" in result.stderr or "line 4" in result.stderr
    assert "malformed YAML" in result.stderr


def test_invalid_field_exits_2_naming_field_and_line(whoosh_env: WhooshEnv) -> None:
    config = "cluster:\n  name: t\nagents:\n  x:\n    command: cat\n    max_concurrent: 0\n"
    (whoosh_env.root / "whoosh.yaml").write_text(config)
    result = whoosh_env.run("agent", "list")
    assert_clean_error(result, 2)
    assert "agents.x.max_concurrent (line 6)" in result.stderr


def test_missing_config_file_exits_2(whoosh_env: WhooshEnv) -> None:
    result = whoosh_env.run("--config", str(whoosh_env.root / "nope.yaml"), "task", "list")
    assert_clean_error(result, 2)
    assert "no such configuration file" in result.stderr


def test_gateway_unreachable_exits_3_quickly_with_a_hint(whoosh_env: WhooshEnv) -> None:
    started = time.monotonic()
    for args in (
        ["agent", "list"],
        ["task", "submit", "hi"],
        ["task", "submit", "hi", "--wait"],
        ["status", "--json"],
        ["key", "list"],
    ):
        result = whoosh_env.run(*args, timeout=30)
        assert_clean_error(result, 3)
        assert f"gateway at http://127.0.0.1:{whoosh_env.gateway_port}" in result.stderr
        assert "is WHOOSH running? start it with `whoosh up`" in result.stderr
    assert time.monotonic() - started < 30


def test_nats_option_overrides_the_config(whoosh_env: WhooshEnv) -> None:
    result = whoosh_env.run("--nats", "nats://127.0.0.1:9", "agent", "list")
    assert_clean_error(result, 3)
    assert "nats://127.0.0.1:9" in result.stderr


def test_without_a_gateway_commands_use_nats(whoosh_env: WhooshEnv) -> None:
    whoosh_env.env["WHOOSH__GATEWAY__ENABLED"] = "false"
    result = whoosh_env.run("agent", "list")
    assert_clean_error(result, 3)
    assert f"127.0.0.1:{whoosh_env.port}" in result.stderr


def test_bad_flag_values_are_usage_errors(whoosh_env: WhooshEnv) -> None:
    result = whoosh_env.run("task", "submit", "hi", "--priority", "42")
    assert_clean_error(result, 2)
    assert "priority" in result.stderr
    result = whoosh_env.run("agent", "add", "Bad Name", "--command", "cat")
    assert_clean_error(result, 2)
    assert "name" in result.stderr
    result = whoosh_env.run("agent", "add", "no-command")
    assert_clean_error(result, 2)
    assert "needs a 'command'" in result.stderr
    result = whoosh_env.run("task", "get", "not-a-uuid")
    assert_clean_error(result, 2)


def test_empty_stdin_prompt_is_a_usage_error(whoosh_env: WhooshEnv) -> None:
    result = whoosh_env.run("task", "submit", "-", stdin="  \n")
    assert_clean_error(result, 2)
    assert "empty" in result.stderr


def test_example_config_validates() -> None:
    from pathlib import Path

    from whoosh_shared.contract.config import load_config

    example = Path(__file__).resolve().parents[2] / "whoosh.yaml"
    config = load_config(example, environ={})
    local = config.agents["local-shell"]
    assert local.command[:2] == ["sh", "-c"]
    assert local.max_concurrent == 4
    assert config.monitoring.alert_thresholds["gpu_usage"] == 95
