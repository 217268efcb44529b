"""NATS credentials as clients present them (the server side is tested in tests/cli and
tests/deploy against real nats-servers)."""

from __future__ import annotations

import pytest
from whoosh_shared.contract.config import ConfigError, parse_config_text
from whoosh_shared.contract.nats_credentials import NatsCredentials
from whoosh_shared.runtime import nats_auth
from whoosh_shared.runtime.nats_auth import client_options, ensure_token


def test_the_local_nats_token_is_only_sent_to_a_local_server(tmp_path) -> None:
    _, token = ensure_token(tmp_path)
    none = NatsCredentials()
    assert client_options(none, tmp_path, "nats://127.0.0.1:4311") == {"token": token}
    assert client_options(none, tmp_path, "nats://nats.example:4222") == {}
    configured = NatsCredentials(user="executor", password="pw")
    assert client_options(configured, tmp_path, "nats://127.0.0.1:1") == {
        "user": "executor", "password": "pw"}  # fmt: skip


def test_one_credential_at_a_time_and_tls_needs_cert_with_key() -> None:
    with pytest.raises(ConfigError, match="give one credential"):
        parse_config_text("nats:\n  user: a\n  password: b\n  token: c\n")
    with pytest.raises(ConfigError, match="'cert' and 'key' go together"):
        parse_config_text("nats:\n  tls: {cert: /x.pem}\n")
    config = parse_config_text("nats:\n  creds_file: /etc/whoosh/exec.creds\n")
    options = nats_auth.for_config(config, "nats://nats:4222")
    assert options == {"user_credentials": "/etc/whoosh/exec.creds"}


def test_the_generated_token_is_private_and_kept(tmp_path) -> None:
    path, token = ensure_token(tmp_path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert ensure_token(tmp_path) == (path, token) and len(token) >= 40
