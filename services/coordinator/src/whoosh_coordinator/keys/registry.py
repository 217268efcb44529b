"""The coordinator's read model of API keys, folded from ApiKey events. Pure.

It is the one place that knows the keys' hashes: the gateway asks it to verify a key
(VerifyApiKey) and lists keys without them.
"""

from __future__ import annotations

from datetime import datetime

from whoosh_shared.contract import events as ev
from whoosh_shared.contract.api_keys import hashes_match
from whoosh_shared.contract.events import EventEnvelope
from whoosh_shared.contract.queries import ApiKeyView


class KeyRefused(Exception):
    """The presented key is not valid now; the message says why (without leaking hashes)."""


class ApiKeyRegistry:
    def __init__(self) -> None:
        self.keys: dict[str, ApiKeyView] = {}
        self._hashes: dict[str, str] = {}

    def apply(self, envelope: EventEnvelope, payload: ev.EventData) -> None:
        match payload:
            case ev.ApiKeyCreated():
                self.keys[payload.prefix] = ApiKeyView(
                    id=envelope.aggregate_id,
                    prefix=payload.prefix,
                    name=payload.name,
                    role=payload.role,
                    created_at=envelope.timestamp,
                    created_by=payload.actor,
                    expires_at=payload.expires_at,
                )
                self._hashes[payload.prefix] = payload.key_hash
            case ev.ApiKeyRevoked(actor=actor):
                view = next((k for k in self.keys.values() if k.id == envelope.aggregate_id), None)
                if view is not None:
                    view.revoked_at, view.revoked_by = envelope.timestamp, actor

    def verify(self, prefix: str, key_hash: str, now: datetime) -> ApiKeyView:
        """The key's view if the hash matches and it is neither revoked nor expired."""
        stored = self._hashes.get(prefix)
        if stored is None or not hashes_match(stored, key_hash):
            raise KeyRefused("unknown API key")
        view = self.keys[prefix]
        if view.revoked_at is not None:
            raise KeyRefused(f"API key {prefix} was revoked")
        if view.expires_at is not None and now >= view.expires_at:
            raise KeyRefused(f"API key {prefix} expired at {view.expires_at.isoformat()}")
        return view

    def listed(self) -> list[ApiKeyView]:
        return sorted(self.keys.values(), key=lambda k: k.created_at)

    def has_valid_admin(self, now: datetime) -> bool:
        return any(k.role == "admin" and k.valid_at(now) for k in self.keys.values())
