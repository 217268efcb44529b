"""The whole fleet on the shipped NATS permission set (deploy/nats/accounts.conf): a real
nats-server with one user per service role, and every service connected as its own role
(coordinator, CLI and LLM executors, monitor, gateway). Through it: a task (CLI and LLM),
a prompt and an output large enough for the object store (WHOOSH_BLOBS), a workflow, a
thread, MCP tool calls, the key-rate counters (KV), a backup; then the server's log must
hold no permission violation at all. And a role cannot step outside itself: an executor
cannot submit tasks, register agents, mint keys or take the coordinator's commands; a
gateway cannot forge events or results; the monitor cannot mint keys.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest
from abuse.helpers import finished
from executor_ollama.double_fixtures import make_double
from gateway.stack import SHELL_AGENT, Stack
from gateway.test_mcp_http import mcp_client
from harness import NatsServer, eventually, free_port, nats_server_binary, wait_for_port
from system.llm_stack import MODEL, MakeDouble, hold_in_memory
from whoosh_shared.contract.api_keys import Role, generate_key
from whoosh_shared.contract.commands import CreateApiKey
from whoosh_shared.runtime.bus import Bus

__all__ = ["make_double"]  # a fixture, found here by pytest
pytestmark = pytest.mark.timeout(300)

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ROLES = ("coordinator", "executor", "gateway", "monitor", "admin")
PASSWORDS = {f"WHOOSH_NATS_{role.upper()}_PASSWORD": f"pw-{role}-7f3a" for role in ROLES}
INLINE = 16 * 1024  # limits.inline_bytes: bodies over it go to the object store
FAST = {
    "WHOOSH__LIMITS__INLINE_BYTES": str(INLINE),
    "WHOOSH__EXECUTOR__HEARTBEAT_INTERVAL_S": "0.5",
    "WHOOSH__MONITORING__METRICS_PORT": "0",
}
WORKFLOW = """
whoosh: workflow/v1
name: perms
steps:
  a: {type: shell, command: "echo a"}
  b: {type: shell, needs: [a], command: "echo b-{{ steps.a.output | trim }}"}
"""


def as_role(role: str) -> dict[str, str]:
    return {"WHOOSH__NATS__USER": role, "WHOOSH__NATS__PASSWORD": PASSWORDS[pw(role)]}


def pw(role: str) -> str:
    return f"WHOOSH_NATS_{role.upper()}_PASSWORD"


class SecuredNats(NatsServer):
    """The shipped single-node config and users, on a free port; its log kept."""

    def start(self) -> None:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        conf = self.store_dir / "single.conf"
        text = (DEPLOY / "nats" / "single.conf").read_text().replace("/data", str(self.store_dir))
        conf.write_text(text)
        (self.store_dir / "accounts.conf").write_text(
            (DEPLOY / "nats" / "accounts.conf").read_text()
        )
        self.log = self.store_dir / "nats.log"
        self.proc = subprocess.Popen(
            [nats_server_binary(), "-c", str(conf), "-a", "127.0.0.1", "-p", str(self.port),
             "-m", str(free_port()), "-l", str(self.log)],
            env={**os.environ, **PASSWORDS},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_port(self.port, timeout=10)

    def violations(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if "Violation" in line]


class RoleStack(Stack):
    async def issue_key(self, role: Role, name: str = "test", **fields: Any) -> str:
        key = generate_key()
        bus = Bus(self.nats.url, "test-keys", as_options("admin"))
        await bus.connect()
        try:
            reply = await bus.send(
                CreateApiKey(prefix=key.prefix, key_hash=key.key_hash, name=name, role=role)
            )
        finally:
            await bus.close()
        assert reply.accepted, reply.reason
        return key.token


def as_options(role: str) -> dict[str, str]:
    return {"user": role, "password": PASSWORDS[pw(role)]}


@pytest.fixture
async def role_stack(tmp_path: Path) -> AsyncIterator[RoleStack]:
    server = SecuredNats(tmp_path / "nats")
    server.start()
    stack = RoleStack(tmp_path, server, f"sqlite:///{tmp_path / 'events.sqlite'}")
    url = server.url
    try:
        stack.spawn("whoosh_coordinator", "serve", "--nats", url, "--store", stack.store_url,
                    env={**FAST, **as_role("coordinator")})  # fmt: skip
        cli = stack.spawn("whoosh_executor_cli", "--nats", url, "--executor-id", "cli-perm",
                          env={**FAST, **as_role("executor")})  # fmt: skip
        llm = stack.spawn("whoosh_executor_ollama", "--nats", url, "--executor-id", "llm-perm",
                          env={**FAST, **as_role("executor")})  # fmt: skip
        monitor = stack.spawn("whoosh_monitor", "--nats", url, env={**FAST, **as_role("monitor")})
        await stack.start_gateway(env={**FAST, **as_role("gateway")})
        for proc, ready in ((cli, "executor ready"), (llm, "executor ready"),
                            (monitor, "monitor ready")):  # fmt: skip
            await eventually(lambda p=proc, r=ready: r in p.output(), timeout=60, what=ready)
        stack.admin_key = await stack.issue_key(Role.ADMIN, "perm admin")
        yield stack
    finally:
        stack.stop()
        print("\n".join(server.violations()))


async def test_the_whole_fleet_runs_on_its_roles_and_nothing_is_refused(
    role_stack: RoleStack, make_double: MakeDouble, tmp_path: Path
) -> None:
    double = make_double(reply="hello from the double")
    hold_in_memory(double)
    llm_agent = {"name": "llm", "type": "ollama", "endpoint": double.url, "model": MODEL,
                 "capabilities": ["chat"]}  # fmt: skip
    async with role_stack.gateway.client(role_stack.admin_key) as admin:
        for spec in (SHELL_AGENT, llm_agent):
            created = await admin.post("/api/v1/agents", json={"spec": spec})
            assert created.status_code == 201, created.text
        # Tasks on both executors; a prompt and an output through the object store.
        big = "x" * (INLINE * 2)
        shell = await admin.post(
            "/api/v1/tasks",
            json={"prompt": f"yes y | head -c {INLINE * 3}; # {big}",
                  "capabilities": ["shell"]},
        )  # fmt: skip
        chat = await admin.post("/api/v1/tasks", json={"prompt": "hi", "capabilities": ["chat"]})
        for submitted in (shell, chat):
            assert submitted.status_code == 201, submitted.text
        shell_view = await finished(admin, shell.json()["task_id"])
        assert shell_view["status"] == "completed", shell_view
        assert shell_view["prompt_ref"] is not None
        output = await admin.get(f"/api/v1/tasks/{shell.json()['task_id']}/output")
        assert output.status_code == 200, output.text[:300]
        assert output.json()["output"] == "y\n" * (INLINE * 3 // 2)
        prompt = await admin.get(f"/api/v1/tasks/{shell.json()['task_id']}/prompt")
        assert prompt.status_code == 200 and prompt.text.endswith(big)
        chat_view = await finished(admin, chat.json()["task_id"])
        assert chat_view["status"] == "completed", chat_view
        assert chat_view["output"] == "hello from the double"
        # A workflow.
        stored = await admin.post("/api/v1/workflows", json={"source": WORKFLOW})
        assert stored.status_code == 201, stored.text
        run = (await admin.post("/api/v1/workflows/perms/run")).json()["execution_id"]

        async def execution_done() -> dict | None:
            view = (await admin.get(f"/api/v1/executions/{run}")).json()
            return view if view["status"] != "running" else None

        execution = await eventually(execution_done, timeout=60, what="the workflow")
        assert execution["status"] == "succeeded", execution
        # A thread: a question to the LLM agent, answered, decided and closed.
        thread = await admin.post(
            "/api/v1/threads", json={"topic": "perms?", "participants": [{"agent": "llm"}]}
        )
        assert thread.status_code == 201, thread.text
        thread_id = thread.json()["id"]

        async def thread_closed() -> dict | None:
            view = (await admin.get(f"/api/v1/threads/{thread_id}")).json()
            return view if view["state"] == "closed" else None

        closed = await eventually(thread_closed, timeout=60, what="the thread to close")
        assert closed["outcome"], closed
        # Live: a WebSocket-free read of the stored events, and stats with nothing down.
        events = await admin.get(f"/api/v1/tasks/{chat.json()['task_id']}/events")
        assert events.status_code == 200 and events.json()["events"], events.text

        async def all_up() -> dict | None:
            ready = await admin.get("/readyz")
            return ready.json() if ready.status_code == 200 else None

        await eventually(all_up, timeout=30, what="/readyz 200 with every loop up")
    # MCP tool calls.
    async with mcp_client(role_stack.gateway, role_stack.admin_key) as client:
        result = await client.call_tool(
            "whoosh_submit_task", {"prompt": "echo via-mcp", "capabilities": ["shell"]}
        )
        assert not result.is_error, result.content
        task_id = result.structured_content["task_id"]
        waited = await client.call_tool("whoosh_wait_task", {"task_id": task_id})
        assert not waited.is_error, waited.content
        status = await client.call_tool("whoosh_cluster_status", {})
        assert not status.is_error, status.content
    # A backup of the store (the coordinator's own file: no NATS involved).
    backup = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "whoosh_cli", "backup", str(tmp_path / "backup.sqlite"),
         "--store", role_stack.store_url],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "WHOOSH_CONFIG": os.devnull}, cwd=tmp_path,
    )  # fmt: skip
    assert backup.returncode == 0, backup.stderr
    await asyncio.sleep(1)  # heartbeats, loop reports and monitor rounds have all gone by
    server: SecuredNats = role_stack.nats  # type: ignore[assignment]
    assert server.violations() == []
    for proc in role_stack.processes:
        assert "Permissions Violation" not in proc.output(), proc.output()[-3000:]


async def denied(role: str, url: str, publish: list[str], subscribe: list[str]) -> str:
    """What the server refused `role` (its error messages), after trying each subject."""
    errors: list[str] = []

    async def keep(exc: Exception) -> None:
        errors.append(str(exc))

    nc = await nats.connect(url, allow_reconnect=False, error_cb=keep, **as_options(role))
    try:
        for subject in subscribe:
            await nc.subscribe(subject)
        for subject in publish:
            await nc.publish(subject, b"{}")
        await nc.flush()
        await asyncio.sleep(0.5)
    finally:
        await nc.close()
    return " | ".join(errors).lower()  # the server's messages lower-case the subject


async def test_a_role_cannot_publish_or_listen_outside_itself(role_stack: RoleStack) -> None:
    url = role_stack.nats.url
    executor = await denied(
        "executor", url,
        publish=["whoosh.cmd.task.submit", "whoosh.cmd.agent.register", "whoosh.cmd.apikey.create",
                 "whoosh.evt.task.x.TaskCompleted", "whoosh.work.cli.x"],
        subscribe=["whoosh.cmd.>", "whoosh.query.>"],
    )  # fmt: skip
    for subject in ("whoosh.cmd.task.submit", "whoosh.cmd.agent.register",
                    "whoosh.cmd.apikey.create", "whoosh.evt.task.x.TaskCompleted",
                    "whoosh.work.cli.x", "whoosh.cmd.>", "whoosh.query.>"):  # fmt: skip
        assert f'"{subject.lower()}"' in executor, (subject, executor)
    gateway = await denied(
        "gateway", url,
        publish=["whoosh.evt.task.x.TaskCompleted", "whoosh.cmd.task.complete",
                 "whoosh.heartbeat.fake", "whoosh.cmd.agent.health"],
        subscribe=["whoosh.cmd.>"],
    )  # fmt: skip
    for subject in ("whoosh.evt.task.x.TaskCompleted", "whoosh.cmd.task.complete",
                    "whoosh.heartbeat.fake", "whoosh.cmd.agent.health",
                    "whoosh.cmd.>"):  # fmt: skip
        assert f'"{subject.lower()}"' in gateway, (subject, gateway)
    monitor = await denied("monitor", url, publish=["whoosh.cmd.apikey.create"], subscribe=[])
    assert '"whoosh.cmd.apikey.create"' in monitor
    anonymous = None
    try:
        await nats.connect(url, allow_reconnect=False, connect_timeout=2)
    except nats.errors.Error as exc:
        anonymous = exc
    assert anonymous is not None, "a client without a credential is refused"


async def test_the_coordinator_did_not_answer_a_forbidden_submit(role_stack: RoleStack) -> None:
    """Not merely an error line: an executor's submit never becomes a task."""
    async with role_stack.gateway.client(role_stack.admin_key) as admin:
        before = (await admin.get("/api/v1/stats")).json()
    nc = await nats.connect(role_stack.nats.url, allow_reconnect=False, **as_options("executor"))
    try:
        with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError)):
            await nc.request("whoosh.cmd.task.submit", b'{"prompt": "x"}', timeout=2)
    finally:
        await nc.close()
    async with role_stack.gateway.client(role_stack.admin_key) as admin:
        after = (await admin.get("/api/v1/stats")).json()
    assert after["tasks_by_status"] == before["tasks_by_status"]
