"""A real WHOOSH behind two gateways, for the gateway tests: its own nats-server, a
coordinator on a fresh SQLite store, a CLI executor, and gateways on free loopback ports.

Its own NATS (not the session's shared one): a coordinator that lives for the whole
session must not answer the commands of other tests' coordinators.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from harness import NatsServer, ServiceProcess, eventually, free_port
from whoosh_shared.contract.api_keys import Role, generate_key
from whoosh_shared.contract.commands import CreateApiKey
from whoosh_shared.runtime.bus import Bus

NO_CONFIG_FILE = {"WHOOSH_CONFIG": os.devnull}
# The commands operators may register here (security.allowed_commands); others need admin.
OPERATOR_COMMANDS = {"WHOOSH__SECURITY__ALLOWED_COMMANDS": '["cat", "sh -s"]'}
SHELL_AGENT = {
    "name": "shell",
    "type": "cli",
    "command": ["sh", "-s"],
    "max_concurrent": 8,
    "capabilities": ["shell"],
}


@dataclass
class Gateway:
    url: str
    process: ServiceProcess

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30, **kwargs)

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/api/v1/ws"


@dataclass
class Stack:
    root: Path
    nats: NatsServer
    store_url: str
    processes: list[ServiceProcess] = field(default_factory=list)
    gateways: list[Gateway] = field(default_factory=list)
    admin_key: str = ""

    @property
    def gateway(self) -> Gateway:
        return self.gateways[0]

    def spawn(self, module: str, *args: str, env: dict[str, str] | None = None) -> ServiceProcess:
        log = self.root / f"{module}-{len(self.processes)}.log"
        proc = ServiceProcess(module, list(args), {**NO_CONFIG_FILE, **(env or {})}, log)
        self.processes.append(proc.start())
        return proc

    async def start_gateway(
        self, env: dict[str, str] | None = None, nats_url: str | None = None
    ) -> Gateway:
        port = free_port()
        nats = nats_url or self.nats.url
        proc = self.spawn("whoosh_gateway", "--nats", nats, "--port", str(port), env=env)
        gateway = Gateway(f"http://127.0.0.1:{port}", proc)

        async def ready() -> bool:
            if proc.proc is not None and proc.proc.poll() is not None:
                raise AssertionError(f"gateway exited:\n{proc.output()}")
            try:
                async with gateway.client() as client:
                    return (await client.get("/readyz")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(ready, timeout=60, interval=0.1, what="the gateway to be ready")
        self.gateways.append(gateway)
        return gateway

    async def issue_key(self, role: Role, name: str = "test", **fields: Any) -> str:
        """A key issued over the bus, as `whoosh up` issues the first admin key."""
        key = generate_key()
        bus = Bus(self.nats.url, "test-keys")
        await bus.connect()
        try:
            reply = await bus.send(
                CreateApiKey(
                    prefix=key.prefix, key_hash=key.key_hash, name=name, role=role, **fields
                )
            )
        finally:
            await bus.close()
        assert reply.accepted, reply.reason
        return key.token

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        self.nats.stop()
