"""Large bodies (prompts, outputs) stored once, referenced from bus messages.

NATS refuses any message over its `max_payload` (1 MB by default), and a refused publish
or reply used to stop whatever loop made it. So a body over `limits.inline_bytes` goes
into the JetStream object store bucket `WHOOSH_BLOBS` once, named by its SHA-256 (the
same prompt submitted twice is stored once), and messages and events carry a `BlobRef`.
The object store chunks the body (128 KiB per message) and checks its digest on read.

Why the object store and not a table beside the event store: every service that needs a
body (the gateway that receives a prompt, the executor that runs it, the CLI) already
talks to JetStream, while only the coordinator may touch the event store; a table
would need the coordinator to stream megabytes through request-reply in chunks.
"""

from __future__ import annotations

from pydantic import Field

from whoosh_shared.contract.agents import Strict
from whoosh_shared.contract.limits import utf8_size

BUCKET = "WHOOSH_BLOBS"


class BlobRef(Strict):
    """Where a body lives and what it is, so its size can be judged without reading it."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0, description="UTF-8 size")
    chars: int = Field(ge=0, description="characters (token estimates count these)")


def needs_ref(text: str, inline_bytes: int) -> bool:
    return utf8_size(text) > inline_bytes
