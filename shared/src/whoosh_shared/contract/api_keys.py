"""API keys: their format, their roles, and the one-way hash the store keeps.

A key reads `whk_<prefix>_<secret>`. The prefix is public (it names the key in lists,
logs and the audit trail, and it is how the coordinator finds the key); the secret is
32 random bytes, shown once and never stored: the store keeps only its SHA-256. A
plain hash is enough here because the secret has 256 bits of entropy (a slow hash
protects guessable passwords, not random keys).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum
from uuid import NAMESPACE_URL, UUID, uuid5

KEY_PREFIX = "whk"
PREFIX_PATTERN = r"^[0-9a-f]{12}$"
KEY_PATTERN = re.compile(rf"^{KEY_PREFIX}_([0-9a-f]{{12}})_([A-Za-z0-9_-]{{43}})$")
API_KEY_NAMESPACE = uuid5(NAMESPACE_URL, "whoosh:api-key")


class Role(StrEnum):
    """What a key may do; each role includes the ones below it."""

    ADMIN = "admin"  # everything, including keys
    OPERATOR = "operator"  # submit and cancel tasks, manage agents
    VIEWER = "viewer"  # read only

    @property
    def rank(self) -> int:
        return ROLE_RANK[self]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


ROLE_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


@dataclass(frozen=True)
class NewKey:
    """A freshly generated key: `token` is shown once; only `key_hash` is kept."""

    prefix: str
    token: str

    @property
    def key_hash(self) -> str:
        return hash_token(self.token)

    @property
    def key_id(self) -> UUID:
        return key_id(self.prefix)


def generate_key() -> NewKey:
    prefix = secrets.token_hex(6)
    return NewKey(prefix, f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}")


def parse_token(token: str) -> str | None:
    """The public prefix of a well-formed key, or None for anything else."""
    match = KEY_PATTERN.match(token.strip())
    return match.group(1) if match else None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.strip().encode()).hexdigest()


def hashes_match(a: str, b: str) -> bool:
    """Constant-time comparison, so response timing tells nothing about a stored hash."""
    return hmac.compare_digest(a.encode(), b.encode())


def key_id(prefix: str) -> UUID:
    """The ApiKey aggregate's id: derived from the prefix, so a prefix cannot be reused."""
    return uuid5(API_KEY_NAMESPACE, prefix)
