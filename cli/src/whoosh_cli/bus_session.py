"""A short-lived bus connection for one CLI command, with errors a user can act on.

A command line must say quickly, and in words, that WHOOSH is not running: a TCP
check first (instant when nothing listens), then a bounded connect.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import TypeVar
from urllib.parse import urlparse

import nats.errors
from pydantic import BaseModel, ValidationError
from whoosh_shared.contract.commands import Command, CommandReply
from whoosh_shared.contract.queries import Query
from whoosh_shared.runtime.bus import Bus, BusError

from whoosh_cli.errors import NOT_RUNNING_HINT, CliError, UnreachableError

CONNECT_TIMEOUT_S = 5.0
REQUEST_TIMEOUT_S = 10.0
ResultT = TypeVar("ResultT", bound=BaseModel)


def nats_answers(url: str, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections at the URL's host and port."""
    parsed = urlparse(url if "://" in url else f"nats://{url}")
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 4222
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


async def connect_bus(url: str, name: str = "whoosh-cli") -> Bus:
    """Connect, or raise UnreachableError naming the URL and how to start WHOOSH."""
    if not nats_answers(url):
        raise UnreachableError(f"cannot reach NATS at {url}: {NOT_RUNNING_HINT}")
    bus = Bus(url, name)
    try:
        await bus.connect(timeout=CONNECT_TIMEOUT_S)
    except BusError as exc:
        raise UnreachableError(f"{exc}: {NOT_RUNNING_HINT}") from None
    return bus


async def close_bus(bus: Bus) -> None:
    """Close without letting a half-dead connection turn into a traceback."""
    with suppress(Exception):
        await asyncio.wait_for(bus.close(), 5.0)


@asynccontextmanager
async def bus_session(url: str) -> AsyncIterator[Bus]:
    """`async with bus_session(url) as bus:` -- connected, and closed afterwards."""
    bus = await connect_bus(url)
    try:
        yield bus
    finally:
        await close_bus(bus)


async def send(bus: Bus, command: Command, timeout: float = REQUEST_TIMEOUT_S) -> CommandReply:
    """Send a command; an unreachable coordinator becomes exit 3 with a hint."""
    try:
        return await bus.send(command, timeout=timeout)
    except (BusError, nats.errors.Error) as exc:
        raise UnreachableError(f"{exc or type(exc).__name__}: {NOT_RUNNING_HINT}") from None


async def ask(
    bus: Bus, query: Query, result_model: type[ResultT], timeout: float = REQUEST_TIMEOUT_S
) -> ResultT:
    """Ask a query and return its typed result; a query error is a plain failure."""
    try:
        reply = await bus.ask(query, timeout=timeout)
    except (BusError, nats.errors.Error) as exc:
        raise UnreachableError(f"{exc or type(exc).__name__}: {NOT_RUNNING_HINT}") from None
    if reply.status != "ok" or reply.result is None:
        raise CliError(f"{reply.code or 'error'}: {reply.reason or 'the query failed'}")
    try:
        return result_model.model_validate(reply.result)
    except ValidationError as exc:
        raise CliError(f"unexpected answer to {type(query).__name__}: {exc}") from None


def require_accepted(reply: CommandReply, what: str) -> CommandReply:
    """Turn a rejection into exit 1 with its code and reason."""
    if not reply.accepted:
        raise CliError(f"{what} rejected ({reply.code or 'rejected'}): {reply.reason or ''}")
    return reply
