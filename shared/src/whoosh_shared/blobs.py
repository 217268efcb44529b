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

import hashlib
import logging
from typing import TYPE_CHECKING

from pydantic import Field

from whoosh_shared.agents import Strict
from whoosh_shared.limits import utf8_size

if TYPE_CHECKING:  # nats.js itself only when a body is stored: `whoosh` commands import
    # this contract (BlobRef) and should not pay for the JetStream client to start.
    from nats.js import JetStreamContext
    from nats.js.object_store import ObjectStore

log = logging.getLogger(__name__)
BUCKET = "WHOOSH_BLOBS"


class BlobRef(Strict):
    """Where a body lives and what it is, so its size can be judged without reading it."""

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0, description="UTF-8 size")
    chars: int = Field(ge=0, description="characters (token estimates count these)")


class BlobMissing(LookupError):
    """A referenced body is not (or no longer) in the blob store."""


class BlobStore:
    """The `WHOOSH_BLOBS` bucket on one connection; created on first use."""

    def __init__(self, js: JetStreamContext, replicas: int = 1) -> None:
        self.js = js
        self.replicas = replicas
        self._store: ObjectStore | None = None

    async def _bucket(self) -> ObjectStore:
        if self._store is None:
            from nats.js.api import ObjectStoreConfig, StorageType
            from nats.js.errors import BucketNotFoundError, NotFoundError

            try:
                self._store = await self.js.object_store(BUCKET)
            except (BucketNotFoundError, NotFoundError):
                config = ObjectStoreConfig(
                    bucket=BUCKET,
                    storage=StorageType.FILE,
                    replicas=self.replicas,
                    description="WHOOSH bodies over limits.inline_bytes (prompts, outputs)",
                )
                self._store = await self.js.create_object_store(BUCKET, config=config)
        return self._store

    async def put_text(self, text: str) -> BlobRef:
        data = text.encode("utf-8", errors="surrogatepass")
        ref = BlobRef(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data), chars=len(text))
        from nats.js.errors import NotFoundError, ObjectNotFoundError

        store = await self._bucket()
        try:
            info = await store.get_info(ref.sha256)
            if info.size == ref.bytes:
                return ref  # stored once: the same body again costs nothing
        except (ObjectNotFoundError, NotFoundError):
            pass
        await store.put(ref.sha256, data)
        return ref

    async def get_text(self, ref: BlobRef) -> str:
        from nats.js.errors import NotFoundError, ObjectNotFoundError

        store = await self._bucket()
        try:
            result = await store.get(ref.sha256)
        except (ObjectNotFoundError, NotFoundError):
            raise BlobMissing(f"body {ref.sha256[:12]} ({ref.bytes} bytes) is not stored") from None
        data = result.data or b""
        if hashlib.sha256(data).hexdigest() != ref.sha256:
            raise BlobMissing(f"body {ref.sha256[:12]} does not match its digest")
        return data.decode("utf-8", errors="surrogatepass")


def needs_ref(text: str, inline_bytes: int) -> bool:
    return utf8_size(text) > inline_bytes
