"""The connectivity probe against a real sshd: each way it can fail names its cause."""

from __future__ import annotations

from pathlib import Path

import pytest
from executor_cli.sshd_server import SshdServer, keygen, sshd_factory_fixture, sshd_fixture
from harness import free_port
from whoosh_executor_cli.ssh_failures import SshFailureCause
from whoosh_executor_cli.ssh_probe import probe_agent
from whoosh_shared.contract.agents import AgentSpec

__all__ = ["sshd_factory_fixture", "sshd_fixture"]  # fixtures, found here by pytest


@pytest.fixture
def fake_cli(tmp_path: Path) -> Path:
    cli = tmp_path / "fake-cli"
    cli.write_text('#!/bin/sh\n[ "$1" = --version ] && echo "fake-cli 1.2.3 (test)"\n')
    cli.chmod(0o755)
    return cli


def agent(server: SshdServer, command: list[str], **settings: object) -> AgentSpec:
    return server.agent("probed", command, ssh=server.settings(**settings))


async def test_a_reachable_host_with_the_cli_passes_with_its_path_and_version(
    sshd: SshdServer, fake_cli: Path
) -> None:
    result = await probe_agent(agent(sshd, [str(fake_cli), "-p"]))
    assert result.ok, result.reason
    assert result.cli_path == str(fake_cli)
    assert result.version == "fake-cli 1.2.3 (test)"
    assert result.host == f"{sshd.user}@127.0.0.1:{sshd.port}"


async def test_a_cli_without_a_version_still_passes(sshd: SshdServer) -> None:
    result = await probe_agent(agent(sshd, ["sh", "-s"]))  # dash has no --version
    assert result.ok and result.cli_path and result.version is None


async def test_a_missing_cli_is_command_not_found(sshd: SshdServer) -> None:
    result = await probe_agent(agent(sshd, ["whoosh-no-such-cli", "-p"]))
    assert not result.ok
    assert result.cause is SshFailureCause.COMMAND_NOT_FOUND
    assert result.reason is not None and "'whoosh-no-such-cli' not found" in result.reason


async def test_a_closed_port_is_host_unreachable(sshd: SshdServer, fake_cli: Path) -> None:
    result = await probe_agent(agent(sshd, [str(fake_cli)], port=free_port()))
    assert not result.ok
    assert result.cause is SshFailureCause.UNREACHABLE
    assert result.reason is not None and "cannot reach" in result.reason


async def test_a_key_the_host_does_not_know_is_auth_failed(
    sshd: SshdServer, fake_cli: Path, tmp_path: Path
) -> None:
    stranger = keygen(tmp_path / "stranger")
    result = await probe_agent(agent(sshd, [str(fake_cli)], identity_file=str(stranger)))
    assert not result.ok
    assert result.cause is SshFailureCause.AUTH_FAILED
    assert result.reason is not None and str(stranger) in result.reason


async def test_a_different_host_key_in_known_hosts_is_a_mismatch(
    sshd: SshdServer, fake_cli: Path, tmp_path: Path
) -> None:
    impostor = keygen(tmp_path / "impostor")
    key_type, key = Path(f"{impostor}.pub").read_text().split()[:2]
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{sshd.port} {key_type} {key}\n")
    result = await probe_agent(agent(sshd, [str(fake_cli)], known_hosts=str(known_hosts)))
    assert not result.ok
    assert result.cause is SshFailureCause.HOST_KEY_MISMATCH
    assert result.reason is not None and "man in the middle" in result.reason


async def test_a_host_missing_from_known_hosts_is_unknown(
    sshd: SshdServer, fake_cli: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    result = await probe_agent(agent(sshd, [str(fake_cli)], known_hosts=str(empty)))
    assert result.cause is SshFailureCause.HOST_KEY_UNKNOWN
    assert result.reason is not None and "ssh-keyscan" in result.reason
    missing = await probe_agent(agent(sshd, [str(fake_cli)], known_hosts=str(tmp_path / "nowhere")))
    assert missing.cause is SshFailureCause.HOST_KEY_UNKNOWN
    assert missing.reason is not None and "no such file" in missing.reason


async def test_skipping_the_host_key_check_is_explicit_and_then_connects(
    sshd: SshdServer, fake_cli: Path
) -> None:
    spec = agent(sshd, [str(fake_cli)], known_hosts=None, insecure_skip_host_key_check=True)
    assert (await probe_agent(spec)).ok


async def test_a_local_agent_cannot_be_probed() -> None:
    with pytest.raises(ValueError, match="no host"):
        await probe_agent(AgentSpec(name="local", command=["sh"]))
