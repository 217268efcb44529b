"""`/api/v1/ws`: the live event stream (see ws_session for the protocol and guarantees).

The key comes in the `Authorization` or `X-API-Key` header, or (for browsers, which
cannot set headers on a WebSocket) the `api_key` query parameter. A refused key gets an
error message and close code 4401 (4403 for a missing role, 4429 when rate limited).
"""

from __future__ import annotations

import contextlib

from fastapi import APIRouter, WebSocket
from whoosh_shared.contract.api_keys import Role

from whoosh_gateway.access import authenticate, check_role
from whoosh_gateway.errors import ApiError
from whoosh_gateway.gateway_state import state_of
from whoosh_gateway.submit_size import body_limit
from whoosh_gateway.ws_session import SessionClosed, WsSession

router = APIRouter()
CLOSE_CODES = {401: 4401, 403: 4403, 429: 4429, 503: 1013}
MAX_MESSAGE_CHARS = 2_000_000


@router.websocket("/ws")
async def stream(websocket: WebSocket) -> None:
    await websocket.accept()
    state = state_of(websocket)
    try:
        caller = await authenticate(websocket, websocket.query_params.get("api_key"))
        check_role(caller, Role.VIEWER)
        await state.limiter.check(caller)
    except ApiError as exc:
        with contextlib.suppress(Exception):
            await websocket.send_json({"type": "error", "code": exc.code, "message": exc.message})
            await websocket.close(CLOSE_CODES.get(exc.status, 1008), exc.message[:120])
        return
    max_chars = body_limit(MAX_MESSAGE_CHARS, state.limits)
    session = WsSession(websocket, state, caller)
    session.start_writer()
    state.hub.listeners.add(session)

    async def key_ended(reason: str) -> None:  # the close reason tells the client why
        await session.close(4401, reason[:120])

    unwatch = state.verifier.streams.open(caller, key_ended)
    try:
        while not session.closing:
            message = await session.receive()
            if message is None or message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text is None:
                await session.error("invalid_json", "send text frames with JSON messages")
            elif len(text) > max_chars:
                await session.error(
                    "too_large",
                    f"a message of {len(text)} characters is over the limit of {max_chars} "
                    "(limits.max_prompt_bytes in whoosh.yaml raises it)",
                )
            else:
                await session.handle_text(text)
    except (SessionClosed, RuntimeError):
        pass  # closed under us (slow client, or the peer went away)
    finally:
        unwatch()
        state.hub.listeners.discard(session)
        if not session.closing:
            await session.close(1000, "bye")
        elif session.writer is not None:
            session.writer.cancel()
