"""The size policy at the gateway: a prompt is measured before anything is written, and
one over limits.inline_bytes goes to the blob store, the command carrying its reference.

REST and WebSocket submits share this, so both refuse with the same 413 message (the
limit, the size seen, the setting that raises it).
"""

from __future__ import annotations

from whoosh_shared.contract import commands as c
from whoosh_shared.contract.limits import LimitSettings, preview, too_large, utf8_size
from whoosh_shared.runtime.blob_store import BlobStore
from whoosh_shared.runtime.bus import Bus

from whoosh_gateway.errors import ApiError

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


async def by_reference(command: c.SubmitTask, bus: Bus, limits: LimitSettings) -> c.SubmitTask:
    """The command every gateway door sends (REST, WebSocket, dashboard, MCP): its prompt
    measured against the limit (413 before anything is written) and, when over
    limits.inline_bytes, stored once in the blob store and referenced."""
    if command.prompt_ref is not None:
        return command
    size = check_prompt(command.prompt, limits)
    if size <= limits.inline_bytes:
        return command
    ref = await BlobStore(bus.js).put_text(command.prompt)
    return command.model_copy(update={"prompt": preview(command.prompt), "prompt_ref": ref})
