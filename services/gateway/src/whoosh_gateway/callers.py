"""Who is calling: the identity every request and WebSocket carries after auth."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from whoosh_shared.contract.api_keys import Role

ANONYMOUS_ACTOR = "anonymous (auth disabled)"


@dataclass(frozen=True)
class Caller:
    """`actor` goes on every command this caller causes (the audit trail's 'who')."""

    actor: str
    role: Role
    prefix: str | None = None
    expires_at: datetime | None = None  # streams opened with the key end when it expires
    key_hash: str | None = None  # to ask the coordinator again about an open stream's key

    @property
    def limit_key(self) -> str:
        """What rate limits count against: the key, or everyone when auth is off."""
        return self.prefix or "anonymous"

    @classmethod
    def for_key(
        cls,
        prefix: str,
        name: str,
        role: Role,
        expires_at: datetime | None = None,
        key_hash: str | None = None,
    ) -> Caller:
        return cls(actor=f"key {prefix} ({name})"[:200], role=role, prefix=prefix,
                   expires_at=expires_at, key_hash=key_hash)  # fmt: skip


UNAUTHENTICATED_ADMIN = Caller(actor=ANONYMOUS_ACTOR, role=Role.ADMIN)
