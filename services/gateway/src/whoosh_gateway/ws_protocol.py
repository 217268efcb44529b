"""What a WebSocket client may send, validated like every other boundary.

    {"action": "subscribe", "scope": "task" | "agent" | "thread" | "all", "id": ...,
     "last_event_id": N}
    {"action": "unsubscribe", "scope": ..., "id": ...}
    {"action": "start", "task": {<TaskSubmission>}, "request_id": ..., "idempotency_key": ...}
    {"action": "stop", "task_id": ..., "reason": ..., "request_id": ...}
    {"action": "ping"}

A message that is not JSON, names an unknown action or does not validate is answered
with `{"type": "error", "code": ..., "message": ...}`; the connection stays open.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import Field, TypeAdapter, ValidationError
from whoosh_shared.contract.agents import Strict
from whoosh_shared.contract.commands import IDEMPOTENCY_KEY_PATTERN
from whoosh_shared.contract.limits import MAX_DOCUMENT_DEPTH, raw_json_depth, too_deep
from whoosh_shared.contract.queries import MAX_EVENT_ID

from whoosh_gateway.api_models import TaskSubmission
from whoosh_gateway.errors import describe_validation

RequestId = Annotated[str | None, Field(default=None, max_length=200)]
Scope = Literal["task", "agent", "all", "execution", "thread"]
ACTIONS = ("subscribe", "unsubscribe", "start", "stop", "ping")


class Subscribe(Strict):
    action: Literal["subscribe"]
    scope: Scope
    id: str | None = Field(
        default=None, max_length=100, description="task id, agent name or execution id"
    )
    last_event_id: int | None = Field(
        default=None,
        ge=0,
        le=MAX_EVENT_ID,
        description="resume: everything after this event id is replayed",
    )
    request_id: RequestId = None


class Unsubscribe(Strict):
    action: Literal["unsubscribe"]
    scope: Scope
    id: str | None = Field(default=None, max_length=100)
    request_id: RequestId = None


class Start(Strict):
    action: Literal["start"]
    task: TaskSubmission
    request_id: RequestId = None
    idempotency_key: str | None = Field(
        default=None,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="as the REST Idempotency-Key header: a resent start gets the same task",
    )


class Stop(Strict):
    action: Literal["stop"]
    task_id: UUID
    reason: str = Field(default="stopped by user", min_length=1, max_length=2000)
    request_id: RequestId = None


class Ping(Strict):
    action: Literal["ping"]
    request_id: RequestId = None


ClientMessage = Annotated[
    Subscribe | Unsubscribe | Start | Stop | Ping, Field(discriminator="action")
]
CLIENT_MESSAGE: TypeAdapter[Subscribe | Unsubscribe | Start | Stop | Ping] = TypeAdapter(
    ClientMessage
)


class BadMessage(Exception):
    def __init__(self, code: str, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


def parse_client_message(text: str) -> Subscribe | Unsubscribe | Start | Stop | Ping:
    depth = raw_json_depth(text.encode("utf-8", errors="surrogatepass"))
    if depth > MAX_DOCUMENT_DEPTH:
        raise BadMessage("invalid_json", too_deep(depth))
    try:
        raw: Any = json.loads(text)
    except ValueError as exc:
        raise BadMessage("invalid_json", f"not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise BadMessage("invalid", "a message must be a JSON object with an 'action'")
    request_id = raw.get("request_id") if isinstance(raw.get("request_id"), str) else None
    action = raw.get("action")
    if action not in ACTIONS:
        raise BadMessage(
            "unknown_action",
            f"unknown action {action!r}; one of: {', '.join(ACTIONS)}",
            request_id,
        )
    try:
        return CLIENT_MESSAGE.validate_python(raw)
    except ValidationError as exc:
        message, _ = describe_validation(list(exc.errors()))
        raise BadMessage("invalid", message, request_id) from None
