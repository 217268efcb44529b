"""The `WHOOSH_BLOBS` object store bucket: putting and reading the large bodies that
messages reference by `BlobRef` (see whoosh_shared.contract.blobs for why).
"""

from __future__ import annotations

import hashlib
import logging

from nats.js import JetStreamContext
from nats.js.api import ObjectStoreConfig, StorageType
from nats.js.errors import BucketNotFoundError, NotFoundError, ObjectNotFoundError
from nats.js.object_store import ObjectStore

from whoosh_shared.contract.blobs import BUCKET, BlobRef

log = logging.getLogger(__name__)


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
        store = await self._bucket()
        try:
            result = await store.get(ref.sha256)
        except (ObjectNotFoundError, NotFoundError):
            raise BlobMissing(f"body {ref.sha256[:12]} ({ref.bytes} bytes) is not stored") from None
        data = result.data or b""
        if hashlib.sha256(data).hexdigest() != ref.sha256:
            raise BlobMissing(f"body {ref.sha256[:12]} does not match its digest")
        return data.decode("utf-8", errors="surrogatepass")
