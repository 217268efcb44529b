"""The ApiKey aggregate: a key's role, hash and expiry, and its revocation.

Issuing and revoking keys are events like any other, so the audit trail records who
did them; the secret itself never reaches the coordinator, only its hash.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event
from whoosh_shared.contract.api_keys import key_id
from whoosh_shared.contract.commands import RejectCode

from whoosh_coordinator.rejection import Rejected


class ApiKey(Aggregate):
    """One per prefix: the id is derived from it, so a prefix can never be issued twice."""

    @staticmethod
    def create_id(prefix: str) -> UUID:
        return key_id(prefix)

    @event("Created")
    def __init__(
        self,
        prefix: str,
        name: str,
        role: str,
        key_hash: str,
        expires_at: datetime | None,
        actor: str,
    ) -> None:
        self.prefix = prefix
        self.role = role
        self.revoked = False

    def revoke(self, actor: str) -> None:
        if self.revoked:
            raise Rejected(RejectCode.BAD_STATE, f"API key {self.prefix} is already revoked")
        self._revoked(actor=actor)

    @event("Revoked")
    def _revoked(self, actor: str) -> None:
        self.revoked = True
