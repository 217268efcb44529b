"""HTTP sessions for the LLM servers: one aiohttp session (one connection pool) per server.

aiohttp rather than httpx: at 64 streams in flight httpx/httpcore/anyio cost ~2 ms of
CPU per streamed call (h11 parsing, the pool's scans of its connections, anyio's
wrappers), aiohttp ~0.5 ms, and the executor's CPU was what limited it. A pool per server
keeps each pool's bookkeeping to that server's own connections.
"""

from __future__ import annotations

import asyncio

import aiohttp

# Generation can pause long between chunks (a cold model load takes minutes), so the read
# timeout (between two reads of the socket, aiohttp's `sock_read`) is generous; connecting
# to a LAN server must be quick, so a dead one fails fast (`sock_connect`); `connect` also
# covers waiting for a free connection of the pool. No total: a task has its own timeout.
DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=30.0, sock_connect=5.0, sock_read=300.0)
# Many concurrent streams per backend must never queue behind the client's own pool, and
# the connections of a busy fleet stay open between calls (a new TCP connection per call
# cost more CPU than the rest of the executor's work on a task). An idle one is let go
# after 1 s, well before servers close theirs (uvicorn: 5 s), so that a call never
# goes out on a connection the server is closing at that moment.
MAX_CONNECTIONS = 1000
KEEPALIVE_S = 1.0


def client_timeout(timeout: aiohttp.ClientTimeout | float) -> aiohttp.ClientTimeout:
    """A number means that many seconds for each phase (connect, wait for the pool, each
    read), as httpx's did; never a bound on the whole call."""
    if isinstance(timeout, aiohttp.ClientTimeout):
        return timeout
    return aiohttp.ClientTimeout(
        total=None, connect=timeout, sock_connect=timeout, sock_read=timeout
    )


def new_session(timeout: aiohttp.ClientTimeout | float = DEFAULT_TIMEOUT) -> aiohttp.ClientSession:
    """A session with the executor's pool limits and timeouts (made inside a running loop)."""
    connector = aiohttp.TCPConnector(
        limit=MAX_CONNECTIONS, limit_per_host=0, keepalive_timeout=KEEPALIVE_S
    )
    return aiohttp.ClientSession(connector=connector, timeout=client_timeout(timeout))


class HttpPools:
    """Sessions by endpoint, made on first use, closed together."""

    def __init__(self) -> None:
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    def for_endpoint(self, endpoint: str) -> aiohttp.ClientSession:
        session = self._sessions.get(endpoint)
        if session is None or session.closed:
            session = new_session()
            self._sessions[endpoint] = session
        return session

    async def aclose(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        await asyncio.gather(*(session.close() for session in sessions), return_exceptions=True)
