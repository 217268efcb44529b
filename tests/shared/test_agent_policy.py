"""The rule for who may define an agent and where it may point, and the masking and
resolution of agents' env: pure functions, every refusal naming what would allow it."""

from __future__ import annotations

import pytest
from whoosh_shared.contract.agent_env import (
    MASK,
    EnvReferenceError,
    child_environ,
    mask_env,
    resolve_env,
)
from whoosh_shared.contract.agent_policy import PolicyRefusal, check_definition
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.api_keys import Role
from whoosh_shared.contract.config import ConfigError, parse_config_text
from whoosh_shared.contract.security_settings import SecuritySettings

OPEN = SecuritySettings()
CLAUDE_ONLY = SecuritySettings(allowed_commands=["claude -p *", "sh -s"])


def cli(**fields) -> AgentSpec:
    return AgentSpec(name="a", type="cli", command=fields.pop("command", ["sh", "-s"]), **fields)


def llm(endpoint: str) -> AgentSpec:
    return AgentSpec(name="m", type="ollama", endpoint=endpoint)


def test_admins_and_bus_clients_may_define_any_command_agent() -> None:
    for role in (Role.ADMIN, None):
        check_definition(cli(command=["rm", "-rf", "/"]), role, OPEN)


def test_an_operator_needs_an_allowed_command_and_is_told_which_setting() -> None:
    with pytest.raises(PolicyRefusal) as refused:
        check_definition(cli(), Role.OPERATOR, OPEN)
    message = str(refused.value)
    assert "admin key" in message and "security.allowed_commands" in message
    assert "it is empty" in message and "'sh -s'" in message
    check_definition(cli(), Role.OPERATOR, CLAUDE_ONLY)
    check_definition(cli(command=["claude", "-p", "--model", "x"]), Role.OPERATOR, CLAUDE_ONLY)
    with pytest.raises(PolicyRefusal, match="none of its 2 entries matches"):
        check_definition(cli(command=["bash", "-c", "id"]), Role.OPERATOR, CLAUDE_ONLY)


def test_an_operator_may_change_what_does_not_decide_what_runs() -> None:
    spec = cli(command=["bash", "-c", "id"])
    check_definition(spec, Role.OPERATOR, OPEN, changed=["capabilities", "max_concurrent"])
    with pytest.raises(PolicyRefusal):
        check_definition(spec, Role.OPERATOR, OPEN, changed=["workdir"])


def test_an_operator_may_not_set_env_that_changes_the_code_run() -> None:
    with pytest.raises(PolicyRefusal, match=r"LD_PRELOAD, PATH.*only an admin"):
        check_definition(cli(env={"PATH": "/tmp", "LD_PRELOAD": "x.so", "TOKEN": "t"}),
                         Role.OPERATOR, CLAUDE_ONLY)  # fmt: skip
    check_definition(cli(env={"TOKEN": "t"}), Role.OPERATOR, CLAUDE_ONLY)


@pytest.mark.parametrize(
    "endpoint",
    ["http://169.254.169.254", "http://[fe80::1]:11434", "http://[fd00:ec2::254]",
     "http://metadata.google.internal/computeMetadata", "http://[::ffff:169.254.169.254]"],
)  # fmt: skip
def test_metadata_and_link_local_endpoints_are_refused_unless_listed(endpoint: str) -> None:
    with pytest.raises(PolicyRefusal, match=r"security\.allowed_endpoints"):
        check_definition(llm(endpoint), Role.ADMIN, OPEN)
    listed = SecuritySettings(
        allowed_endpoints=["169.254.0.0/16", "fe80::/10", "fd00:ec2::254", "metadata.*"]
    )
    check_definition(llm(endpoint), Role.ADMIN, listed)


def test_allowed_endpoints_limit_llm_endpoints_and_ssh_hosts() -> None:
    security = SecuritySettings(allowed_endpoints=["*.lan", "10.0.0.0/8"])
    check_definition(llm("http://gpu1.lan:11434"), None, security)
    check_definition(llm("http://10.1.2.3:11434"), None, security)
    check_definition(cli(host="me@build.lan:2222"), None, security)
    for spec in (llm("http://evil.example:11434"), cli(host="192.168.1.5")):
        with pytest.raises(PolicyRefusal, match=r"not in security.allowed_endpoints.*\*\.lan"):
            check_definition(spec, Role.ADMIN, security)


def test_security_settings_are_validated_when_the_file_is_read() -> None:
    with pytest.raises(ConfigError, match="allowed_endpoints"):
        parse_config_text("security:\n  allowed_endpoints: ['10.0.0.0/99']\n")
    config = parse_config_text("security:\n  allowed_commands: ['claude *']\n")
    assert config.security.allowed_commands == ["claude *"]


def test_env_values_are_masked_except_bare_references() -> None:
    masked = mask_env({"OPENAI_API_KEY": "sk-secret", "TOKEN": "${TOKEN}", "X": "a ${B}"})
    assert masked == {"OPENAI_API_KEY": MASK, "TOKEN": "${TOKEN}", "X": MASK}


def test_references_resolve_from_the_executor_and_never_to_whoosh_settings() -> None:
    environ = {"TOKEN": "t0k", "WHOOSH_ADMIN_KEY": "whk_x", "HOME": "/h"}
    assert resolve_env({"A": "Bearer ${TOKEN}", "B": "plain"}, environ) == {
        "A": "Bearer t0k", "B": "plain"}  # fmt: skip
    with pytest.raises(EnvReferenceError, match=r"env A: \$\{MISSING\} is not set"):
        resolve_env({"A": "${MISSING}"}, environ)
    with pytest.raises(EnvReferenceError, match="WHOOSH's own settings"):
        resolve_env({"A": "${WHOOSH_ADMIN_KEY}"}, environ)
    child = child_environ({"A": "${TOKEN}"}, {**environ, "WHOOSH__NATS__PASSWORD": "p"})
    assert child == {"TOKEN": "t0k", "HOME": "/h", "A": "t0k"}
