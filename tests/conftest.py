"""Session-wide real parts: one nats-server, PostgreSQL schemas, service processes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from harness import NatsServer, PgSchema, ServiceProcess
from whoosh_shared.runtime.bus import Bus, ensure_streams


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path_factory.mktemp("nats"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def nats_url(nats_server: NatsServer) -> str:
    return nats_server.url


@pytest.fixture
async def bus(nats_url: str) -> AsyncIterator[Bus]:
    """A client connection for the test itself, with the streams in place and emptied."""
    client = Bus(nats_url, "test-client")
    await client.connect()
    js = client.js
    await ensure_streams(js)
    for stream in ("WHOOSH_EVENTS", "WHOOSH_WORK"):
        await js.purge_stream(stream)
        # A work-queue stream allows one consumer per subject: drop earlier tests' consumers.
        for consumer in await js.consumers_info(stream):
            await js.delete_consumer(stream, consumer.name)
    yield client
    await client.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    schema = PgSchema()
    yield schema.url
    schema.drop()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'events.sqlite'}"


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Core lifecycle tests run against both stores."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'events.sqlite'}"
    else:
        schema = PgSchema()
        yield schema.url
        schema.drop()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator:
    """Start service processes; every one is stopped (or killed) at the end of the test."""
    started: list[ServiceProcess] = []

    def _spawn(module: str, *args: str, env: dict[str, str] | None = None) -> ServiceProcess:
        log = tmp_path / f"{module}-{len(started)}.log"
        proc = ServiceProcess(module, list(args), env or {}, log).start()
        started.append(proc)
        return proc

    yield _spawn
    for proc in started:
        proc.stop()
