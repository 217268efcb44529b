"""An agent's SSH settings: safe defaults, host parsing, refusals, what travels in specs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from whoosh_shared.contract.agents import AgentSpec, AgentUpdate, SshSettings, split_host
from whoosh_shared.contract.work import WorkItem


def remote(host: str, **fields: object) -> AgentSpec:
    return AgentSpec(name="remote", command=["claude", "-p"], host=host, **fields)


def test_defaults_check_host_keys_and_stay_below_maxsessions() -> None:
    settings = SshSettings()
    assert settings.insecure_skip_host_key_check is False
    assert settings.known_hosts is None  # ~/.ssh/known_hosts
    assert settings.channels_per_connection < 10  # OpenSSH's default MaxSessions
    assert settings.max_connections >= 1
    assert settings.keepalive_interval_s > 0 and settings.connect_timeout_s > 0


def test_a_local_agent_has_no_target() -> None:
    assert AgentSpec(name="local", command=["sh"]).ssh_target() is None


@pytest.mark.parametrize(
    ("host", "user", "name", "port", "label"),
    [
        ("dev-box.lan", None, "dev-box.lan", 22, "dev-box.lan:22"),
        ("builder@dev-box.lan", "builder", "dev-box.lan", 22, "builder@dev-box.lan:22"),
        ("10.0.0.5:2222", None, "10.0.0.5", 2222, "10.0.0.5:2222"),
        ("ci@[fe80::1]:2200", "ci", "fe80::1", 2200, "ci@[fe80::1]:2200"),
    ],
)
def test_host_carries_user_and_port(
    host: str, user: str | None, name: str, port: int, label: str
) -> None:
    target = remote(host).ssh_target()
    assert target is not None
    assert (target.user, target.host, target.port, target.label) == (user, name, port, label)


def test_settings_fill_in_what_host_leaves_out() -> None:
    target = remote("dev-box.lan", ssh={"user": "ci", "port": 2022}).ssh_target()
    assert target is not None
    assert (target.user, target.port) == ("ci", 2022)


@pytest.mark.parametrize(
    ("host", "ssh", "words"),
    [
        ("-oProxyCommand=sh", None, "is not [user@]host[:port]"),
        ("two words", None, "is not [user@]host[:port]"),
        ("box:70000", None, "invalid port"),
        ("ci@box", {"user": "root"}, "user 'ci' in host and 'root' in ssh settings differ"),
        ("box:22", {"port": 2222}, "port 22 in host and 2222 in ssh settings differ"),
        ("box", {"known_hosts": "/k", "insecure_skip_host_key_check": True}, "not both"),
        ("box", {"channels_per_connection": 0}, "channels_per_connection"),
    ],
)
def test_bad_settings_are_refused_with_the_reason(
    host: str, ssh: dict[str, object] | None, words: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        remote(host, ssh=ssh)
    assert words in str(caught.value)


def test_ssh_settings_need_a_host() -> None:
    with pytest.raises(ValidationError, match="'ssh' settings need a 'host'"):
        AgentSpec(name="x", command=["sh"], ssh={"user": "ci"})


def test_unknown_ssh_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="StrictHostKeyChecking"):
        remote("box", ssh={"StrictHostKeyChecking": "no"})


def test_the_insecure_setting_is_visible_in_the_spec_and_travels_with_the_work() -> None:
    spec = remote("box", ssh={"insecure_skip_host_key_check": True})
    assert spec.model_dump(mode="json")["ssh"]["insecure_skip_host_key_check"] is True
    item = WorkItem.model_validate_json(
        WorkItem(
            task_id="00000000-0000-0000-0000-000000000001",
            attempt=1,
            agent=spec,
            prompt="p",
            timeout_s=5,
        ).model_dump_json()
    )
    target = item.agent.ssh_target()
    assert target is not None and target.settings.insecure_skip_host_key_check


def test_an_update_may_change_the_ssh_settings() -> None:
    update = AgentUpdate(ssh={"max_connections": 2})
    # what the coordinator merges into the stored spec reads back as the same settings
    assert SshSettings.model_validate(update.changes()["ssh"]) == SshSettings(max_connections=2)
    with pytest.raises(ValidationError):
        AgentUpdate(host="bad host")


def test_split_host() -> None:
    assert split_host("a@b:1") == ("a", "b", 1)
    assert split_host("[::1]") == (None, "::1", None)
    assert split_host("b") == (None, "b", None)
