"""A hard limit on request bodies, answered in the JSON error shape.

A declared Content-Length over the limit is refused before anything is read; a chunked
body is counted as it arrives and refused as soon as it passes the limit, so an endless
body cannot fill the gateway's memory. A JSON body's nesting is measured as it arrives too
(400 past MAX_DOCUMENT_DEPTH), before Python's recursive decoder could fail on it.
(The refusal while reading is an HTTPException, which FastAPI passes through its body
parsing to the error handlers unchanged.)
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from whoosh_shared.contract.limits import MAX_DOCUMENT_DEPTH, JsonDepthMeter, too_deep

from whoosh_gateway.errors import error_response


def too_large_message(max_bytes: int) -> str:
    return f"request body over the limit of {max_bytes} bytes"


class BodyTooLarge(HTTPException):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(status_code=413, detail=too_large_message(max_bytes))


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            response = error_response(413, "too_large", too_large_message(self.max_bytes))
            await response(scope, receive, send)
            return
        seen = 0
        content_type = dict(scope.get("headers") or []).get(b"content-type", b"")
        meter = JsonDepthMeter() if not content_type or b"json" in content_type else None

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                body = message.get("body", b"")
                seen += len(body)
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
                if meter is not None and meter.feed(body) > MAX_DOCUMENT_DEPTH:
                    raise HTTPException(status_code=400, detail=too_deep(meter.deepest))
            return message

        await self.app(scope, counted, send)
