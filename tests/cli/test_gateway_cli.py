"""`whoosh` on the gateway: `whoosh up` runs it and issues the first admin key, and the
commands work from anywhere with a key (here: another "machine" that has only the
gateway URL and a key in its environment or CLI config file)."""

from __future__ import annotations

import asyncio
import json
import stat
import uuid
from pathlib import Path

import httpx
import httpx2
from cli.whoosh_processes import WhooshEnv, make_installation
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from whoosh_shared.contract import metric_names
from whoosh_shared.contract.api_keys import generate_key


async def mcp_tools(url: str, key: str) -> set[str]:
    """The tools `whoosh up`'s /mcp lists for this key, through the MCP SDK's client."""
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        return {tool.name for tool in (await client.list_tools()).tools}


def remote(running: WhooshEnv, tmp_path: Path, key: str | None) -> WhooshEnv:
    """A second installation that shares nothing with `running` but its gateway's URL."""
    root = tmp_path / f"remote-{uuid.uuid4().hex[:6]}"
    root.mkdir()
    elsewhere = make_installation(root)
    elsewhere.env["WHOOSH_GATEWAY_URL"] = f"http://127.0.0.1:{running.gateway_port}"
    if key:
        elsewhere.env["WHOOSH_API_KEY"] = key
    return elsewhere


def test_up_prints_the_gateway_and_a_first_admin_key_once(whoosh_env: WhooshEnv) -> None:
    first = whoosh_env.up()
    out = first.stdout()
    url = f"http://127.0.0.1:{whoosh_env.gateway_port}"
    assert f"gateway   {url} (docs {url}/docs)" in out
    assert f"mcp       {url}/mcp" in out
    key_line = next(line for line in out.splitlines() if line.startswith("  admin key "))
    key = key_line.split()[-1]
    assert key.startswith("whk_")
    assert "whoosh_submit_task" in asyncio.run(mcp_tools(f"{url}/mcp", key))
    key_file = whoosh_env.data_dir / "admin.key"
    assert key_file.read_text().strip() == key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert json.loads((whoosh_env.data_dir / "endpoints.json").read_text())["gateway_url"] == url
    assert first.interrupt() == 0
    second = whoosh_env.up()
    assert "admin key whk_" not in second.stdout(), "the key is shown on the first start only"
    assert "admin keys exist" in second.stdout()


def test_an_admin_key_from_the_environment_is_registered(whoosh_env: WhooshEnv) -> None:
    token = generate_key().token
    whoosh_env.env["WHOOSH_ADMIN_KEY"] = token
    up = whoosh_env.up()
    assert "admin key from WHOOSH_ADMIN_KEY registered" in up.stdout()
    assert token not in up.stdout()
    listed = json.loads(whoosh_env.run("key", "list", "--json").stdout)["keys"]
    assert [k["name"] for k in listed] == ["admin key (WHOOSH_ADMIN_KEY)"]


def test_commands_work_from_another_machine_with_a_key(
    running_whoosh: WhooshEnv, tmp_path: Path
) -> None:
    created = running_whoosh.run("key", "create", "laptop", "--role", "operator", "--json")
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)["key"]

    laptop = remote(running_whoosh, tmp_path, key)
    done = laptop.run("task", "submit", "from afar", "--wait", timeout=60)
    assert done.returncode == 0, done.stderr
    assert "echo-agent got: from afar" in done.stdout
    assert "assigned to echo" in done.stderr and "completed in" in done.stderr

    config = tmp_path / "cli.yaml"
    config.write_text(
        f"gateway_url: http://127.0.0.1:{running_whoosh.gateway_port}\napi_key: {key}\n"
    )
    by_file = remote(running_whoosh, tmp_path, None)
    del by_file.env["WHOOSH_GATEWAY_URL"]
    by_file.env["WHOOSH_CLI_CONFIG"] = str(config)
    listed = by_file.run("agent", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert "echo" in {a["spec"]["name"] for a in json.loads(listed.stdout)["agents"]}

    keyless = remote(running_whoosh, tmp_path, None).run("agent", "list")
    assert keyless.returncode == 1 and "unauthorized" in keyless.stderr
    assert "Traceback" not in keyless.stderr


def test_the_gateway_serves_the_monitors_metrics(running_whoosh: WhooshEnv) -> None:
    """`whoosh up` points its gateway at the monitor it started: GATEWAY/metrics works."""
    key = (running_whoosh.data_dir / "admin.key").read_text().strip()
    response = httpx.get(
        f"http://127.0.0.1:{running_whoosh.gateway_port}/metrics",
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert f"# TYPE {metric_names.QUEUE_DEPTH} gauge" in response.text


def test_roles_keys_and_history_through_the_cli(running_whoosh: WhooshEnv, tmp_path: Path) -> None:
    viewer = json.loads(
        running_whoosh.run("key", "create", "reader", "--role", "viewer", "--expires", "1d",
                           "--json").stdout
    )  # fmt: skip
    reader = remote(running_whoosh, tmp_path, viewer["key"])
    assert reader.run("task", "list").returncode == 0
    refused = reader.run("task", "submit", "nope")
    assert refused.returncode == 1 and "forbidden" in refused.stderr
    assert reader.run("key", "list").returncode == 1

    done = json.loads(running_whoosh.run("task", "submit", "history", "--wait", "--json").stdout)
    events = running_whoosh.run("task", "events", done["id"], "--json")
    types = [e["type"] for e in json.loads(events.stdout)]
    assert types[0] == "TaskSubmitted" and types[-1] == "TaskCompleted"
    table = running_whoosh.run("task", "events", done["id"]).stdout
    assert "TaskStarted" in table and "actor=key " in table

    revoked = running_whoosh.run("key", "revoke", viewer["prefix"])
    assert revoked.returncode == 0, revoked.stderr
    after = reader.run("task", "list")
    assert after.returncode == 1 and "revoked" in after.stderr

    recent = running_whoosh.run("task", "list", "--since", "10m", "--capability", "shell", "--json")
    assert recent.returncode == 0, recent.stderr
    bad_when = running_whoosh.run("task", "list", "--since", "yesterday")
    assert bad_when.returncode == 2 and "ISO time" in bad_when.stderr


def test_keys_over_nats_replace_a_lost_admin_key(running_whoosh: WhooshEnv) -> None:
    nats = f"nats://127.0.0.1:{running_whoosh.port}"
    created = running_whoosh.run("--nats", nats, "key", "create", "rescue", "--role", "admin")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    keyless = dict(running_whoosh.env, WHOOSH_API_KEY=key)
    by_key = WhooshEnv(running_whoosh.root, keyless)
    listed = json.loads(by_key.run("key", "list", "--json").stdout)["keys"]
    rescue = next(k for k in listed if k["name"] == "rescue")
    assert rescue["created_by"] == "cli (NATS)" and rescue["role"] == "admin"
    revoked = running_whoosh.run("--nats", nats, "key", "revoke", rescue["prefix"])
    assert revoked.returncode == 0, revoked.stderr
    assert by_key.run("key", "list").returncode == 1


def test_agent_remove_through_the_cli(running_whoosh: WhooshEnv) -> None:
    assert running_whoosh.run("agent", "add", "doomed", "--command", "cat").returncode == 0
    removed = running_whoosh.run("agent", "remove", "doomed", "--json")
    assert removed.returncode == 0 and json.loads(removed.stdout)["status"] == "accepted"
    again = running_whoosh.run("agent", "remove", "doomed")
    assert again.returncode == 1 and "not_found" in again.stderr


def test_auth_off_is_shown_in_the_banner(tmp_path: Path) -> None:
    installation = make_installation(tmp_path)
    installation.env["WHOOSH__GATEWAY__INSECURE_NO_AUTH"] = "true"
    try:
        up = installation.up()
        assert "auth      DISABLED" in up.stdout()
        assert not (installation.data_dir / "admin.key").exists()
        assert installation.run("agent", "list").returncode == 0
    finally:
        for started in installation.started:
            started.cleanup()
