"""whoosh.yaml loading: valid files, environment overrides, and errors that name the line."""

from __future__ import annotations

from pathlib import Path

import pytest
from whoosh_shared.contract.config import ConfigError, load_config, parse_config_text
from whoosh_shared.contract.enums import AgentType
from whoosh_shared.runtime.store import StoreUrlError, describe_store, store_env

REPO = Path(__file__).resolve().parents[2]

SEEDS_STYLE = """
whoosh:
  cluster:
    name: "Development Cluster"
  agents:
    acacia:
      name: "ACACIA Infrastructure Specialist"
      type: ollama
      endpoint: "http://127.0.0.1:11434"
      model: "deepseek-r1:7b"
      specialization: "infrastructure"
      capabilities: ["devops", "architecture"]
      hardware: {gpu_type: "AMD Radeon RX 7900 XTX", vram_gb: 24, cpu_cores: 16}
      performance_targets: {min_tps: 15, max_response_time: 30}
  monitoring:
    alert_thresholds: {cpu_usage: 85, memory_usage: 90}
"""


def test_example_config_in_the_repository_is_valid() -> None:
    config = load_config(REPO / "whoosh.yaml", environ={})
    assert config.agents, "the example must define at least one agent"
    assert any(a.type is AgentType.CLI for a in config.agents.values())


def test_seeds_style_file_loads_with_display_name_and_capability_list() -> None:
    config = parse_config_text(SEEDS_STYLE)
    acacia = config.agents["acacia"]
    assert acacia.name == "acacia"
    assert acacia.display_name == "ACACIA Infrastructure Specialist"
    assert acacia.capabilities == {"devops": 1.0, "architecture": 1.0}
    assert acacia.hardware.vram_gb == 24
    assert config.monitoring.alert_thresholds["cpu_usage"] == 85


def test_environment_overrides_shortcuts_and_nested_keys(tmp_path: Path) -> None:
    path = tmp_path / "whoosh.yaml"
    path.write_text("nats:\n  port: 5000\n")
    environ = {
        "WHOOSH_STORE_URL": "postgresql://u@127.0.0.1/db",
        "WHOOSH__NATS__PORT": "6001",
        "WHOOSH__EXECUTOR__ACK_WAIT_S": "3",
    }
    config = load_config(path, environ=environ)
    assert config.nats.port == 6001
    assert config.executor.ack_wait_s == 3
    assert config.store_url() == "postgresql://u@127.0.0.1/db"


def test_malformed_yaml_names_the_line() -> None:
    with pytest.raises(ConfigError, match=r"line 4, column 4: malformed YAML"):
        parse_config_text("agents:\n  a:\n    command: [unclosed\n  b: 1\n")


def test_half_valid_file_names_each_bad_field_and_its_line() -> None:
    text = "agents:\n  good:\n    command: cat\n  bad:\n    command: cat\n    max_concurrent: 0\n"
    with pytest.raises(ConfigError) as info:
        parse_config_text(text)
    message = str(info.value)
    assert "agents.bad.max_concurrent (line 6)" in message
    assert "greater than or equal to 1" in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("agents:\n  x:\n    type: ollama\n", "needs an 'endpoint'"),
        ("agents:\n  x:\n    type: ollama\n    endpoint: gpu1:11434\n", "is not an http"),
        ("agents:\n  x:\n    type: ollama\n    endpoint: http://g:99999\n", "invalid port"),
        ("agents:\n  x:\n    type: llama\n    endpoint: http://g\n", "agents.x.type"),
        ("agents:\n  x:\n    type: cli\n", "needs a 'command'"),
        ("agents:\n  Bad.Name:\n    command: cat\n", "should match pattern"),
        ("agents:\n  x:\n    command: cat\n    colour: red\n", "agents.x.colour"),
        ("- just\n- a list\n", "top level must be a mapping"),
        ("nats:\n  port: 99999\n", "nats.port"),
        ("limits:\n  stderr_tail_bytes: 100\n", "or at least 256 bytes"),
        ("limits:\n  stderr_tail_bytes: 65537\n", "limits.stderr_tail_bytes"),
    ],
)
def test_invalid_files_are_rejected_with_a_reason(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.").replace("(", r"\(")):
        parse_config_text(text)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "absent.yaml", environ={})


def test_store_urls_map_to_eventsourcing_settings(tmp_path: Path) -> None:
    sqlite = store_env(f"sqlite:///{tmp_path}/x/events.sqlite")
    assert sqlite["PERSISTENCE_MODULE"] == "eventsourcing.sqlite"
    assert (tmp_path / "x").is_dir()
    pg = store_env("postgresql://me:secret@db.local:6543/whoosh?schema=s1")
    assert pg["POSTGRES_HOST"] == "db.local" and pg["POSTGRES_PORT"] == "6543"
    assert pg["POSTGRES_SCHEMA"] == "s1" and pg["POSTGRES_PASSWORD"] == "secret"
    assert "secret" not in describe_store("postgresql://me:secret@db.local:6543/whoosh")
    with pytest.raises(StoreUrlError, match="unsupported scheme"):
        store_env("mysql://x/y")
    with pytest.raises(StoreUrlError, match="no database name"):
        store_env("postgresql://127.0.0.1")


def test_the_stderr_tail_defaults_to_8_kib_and_0_keeps_none() -> None:
    assert parse_config_text("cluster: {name: x}\n").limits.stderr_tail_bytes == 8192
    assert parse_config_text("limits:\n  stderr_tail_bytes: 0\n").limits.stderr_tail_bytes == 0
