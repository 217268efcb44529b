"""With `insecure_no_auth`, only this machine's own clients get in -- not web pages.

Without keys, every caller is admin, and a bind to loopback stops other machines but
not a web page in the developer's browser: it can open `ws://127.0.0.1:PORT/api/v1/ws`
(browsers do not apply the same-origin policy to WebSockets) or, through DNS rebinding,
send requests whose Host is the attacker's name. So in that mode every request and
WebSocket handshake must name a loopback Host, and an Origin, when a browser sends one,
must be the gateway's own (a loopback name on its port, or `public_url`). Refusals are
403 (a WebSocket handshake is refused before it is accepted) naming the header and the
setting.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from whoosh_gateway.errors import error_response

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
SETTING = "gateway.insecure_no_auth"


def host_name(value: str) -> str:
    """`host[:port]` or `[v6][:port]` -> the name alone, lower-case."""
    return (urlsplit(f"//{value}").hostname or "").lower()


class LocalOnly:
    def __init__(self, app: ASGIApp, port: int, public_url: str | None = None) -> None:
        self.app = app
        self.port = port
        public = urlsplit(public_url) if public_url else None
        self.public_origin = f"{public.scheme}://{public.netloc}".lower() if public else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(dict(scope["headers"]))
        if refusal is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4403, "reason": refusal[:120]})
        else:
            await error_response(403, "forbidden", refusal)(scope, receive, send)

    def refusal(self, headers: dict[bytes, bytes]) -> str | None:
        host = headers.get(b"host", b"").decode("latin-1")
        if host_name(host) not in LOOPBACK_NAMES:
            return (f"Host {host!r} is not a loopback name: with {SETTING} only this "
                    "machine's clients are served (a DNS-rebinding page is not)")  # fmt: skip
        origin = headers.get(b"origin")
        if origin is not None and not self.own(origin.decode("latin-1")):
            return (f"Origin {origin.decode('latin-1')!r} is not this gateway's: with {SETTING} "
                    "other sites' pages get nothing (use an API key instead)")  # fmt: skip
        return None

    def own(self, origin: str) -> bool:
        if self.public_origin and origin.lower().rstrip("/") == self.public_origin:
            return True
        parts = urlsplit(origin)
        try:
            port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
        except ValueError:
            return False
        return (parts.scheme in ("http", "https")
                and (parts.hostname or "").lower() in LOOPBACK_NAMES
                and port == self.port)  # fmt: skip
