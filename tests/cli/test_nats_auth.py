"""The nats-server `whoosh up` starts requires the credential it generated on first start:
kept 0600 in the data dir, never in argv; an unauthenticated client is refused, while
every service `up` started, and the `whoosh` command (also with `--nats`), get in."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import nats
import nats.errors
import pytest
from cli.whoosh_processes import WhooshEnv


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def connect(url: str, **options):
    return await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0,
                              allow_reconnect=False, **options)  # fmt: skip


def test_bundled_nats_requires_the_generated_token(whoosh_env: WhooshEnv) -> None:
    whoosh_env.up()
    data = whoosh_env.data_dir
    token_file = data / "nats.token"
    assert mode(token_file) == 0o600 and mode(data / "nats-server.conf") == 0o600
    assert mode(data) == 0o700
    token = token_file.read_text().strip()
    nats_pid = next(c["pid"] for c in whoosh_env.children() if c["name"] == "nats")
    assert token not in Path(f"/proc/{nats_pid}/cmdline").read_text()
    url = f"nats://127.0.0.1:{whoosh_env.port}"

    async def attempts() -> None:
        with pytest.raises(nats.errors.Error) as refused:
            await connect(url)
        assert "authorization" in str(refused.value).lower()
        with pytest.raises(nats.errors.Error):
            await connect(url, token="not-the-token")
        nc = await connect(url, token=token)
        await nc.close()

    asyncio.run(attempts())
    over_nats = whoosh_env.run("--nats", url, "--json", "status")
    assert over_nats.returncode == 0, over_nats.stderr
    assert json.loads(over_nats.stdout)  # the coordinator answered over the token
    through_gateway = whoosh_env.run("task", "submit", "--wait", "hello")
    assert through_gateway.returncode == 0, through_gateway.stderr


def test_the_token_survives_restarts_and_unreadable_config_is_refused(
    whoosh_env: WhooshEnv,
) -> None:
    first = whoosh_env.up()
    token = (whoosh_env.data_dir / "nats.token").read_text()
    assert first.interrupt() == 0
    whoosh_env.up()
    assert (whoosh_env.data_dir / "nats.token").read_text() == token
    env_bad = {**whoosh_env.env, "WHOOSH__NATS__TOKEN_FILE": "/nonexistent/token"}
    bad = WhooshEnv(whoosh_env.root, env_bad).run("--nats", f"nats://127.0.0.1:{whoosh_env.port}",
                                                  "status")  # fmt: skip
    assert bad.returncode == 2 and "/nonexistent/token" in bad.stderr
