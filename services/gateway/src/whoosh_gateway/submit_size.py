"""The size policy at the gateway: a prompt is measured before anything is written, and
one over limits.inline_bytes goes to the blob store, the command carrying its reference.

REST and WebSocket submits share this, so both refuse with the same 413 message (the
limit, the size seen, the setting that raises it).
"""

from __future__ import annotations

from whoosh_shared import commands as c
from whoosh_shared.blobs import BlobStore
from whoosh_shared.limits import LimitSettings, preview, too_large, utf8_size

from whoosh_gateway.api_models import TaskSubmission
from whoosh_gateway.callers import Caller
from whoosh_gateway.errors import ApiError
from whoosh_gateway.gateway_state import GatewayState

ENVELOPE_BYTES = 1024 * 1024  # room for the other fields of a submission


def body_limit(max_body_bytes: int, limits: LimitSettings) -> int:
    """The largest request body: a prompt at the limit must get in even when its JSON
    escapes every non-ASCII character (`\\u00e9` is 6 bytes where UTF-8 needs 2, at worst
    3 times the UTF-8 size); the exact limit is checked on the decoded prompt."""
    return max(max_body_bytes, 3 * limits.max_prompt_bytes + ENVELOPE_BYTES)


def check_prompt(prompt: str, limits: LimitSettings) -> int:
    size = utf8_size(prompt)
    if size > limits.max_prompt_bytes:
        raise ApiError(
            413,
            "too_large",
            too_large("the prompt", size, limits.max_prompt_bytes, "max_prompt_bytes"),
        )
    return size


async def prepared_submit(
    state: GatewayState, body: TaskSubmission, caller: Caller
) -> c.SubmitTask:
    """SubmitTask with what only the gateway sets (who asked, the key's task limit), and
    a large prompt stored once and referenced."""
    size = check_prompt(body.prompt, state.limits)
    fields = body.model_dump(exclude_unset=True)
    if size > state.limits.inline_bytes:
        fields["prompt_ref"] = await BlobStore(state.bus.js).put_text(body.prompt)
        fields["prompt"] = preview(body.prompt)
    return c.SubmitTask(
        **fields,
        actor=caller.actor,
        max_active_tasks=state.settings.rate_limits.concurrent_tasks,
    )
