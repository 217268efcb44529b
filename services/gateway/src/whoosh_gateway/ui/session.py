"""The dashboard's browser session: the API key itself, sealed in a cookie.

No session is stored anywhere: the cookie carries the key, encrypted and authenticated
(Fernet: AES-CBC + HMAC-SHA256, with its issue time, so it also expires), and every
request opens it and verifies the key like a bearer key (the verifier's cache is evicted
by `ApiKeyRevoked`, so revoking the key ends the session at once, on every gateway).

Every gateway must open every other's cookies, so the sealing secret is shared through
NATS: the first gateway creates it in the KV bucket `WHOOSH_UI` (create-if-absent), the
others read it. A CSRF token is derived from the cookie (HMAC), so it needs no storage
either and changes with every login.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken
from nats.js.client import JetStreamContext
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError

COOKIE = "whoosh_ui"
COOKIE_PATH = "/ui"
SESSION_MAX_AGE_S = 12 * 3600
BUCKET = "WHOOSH_UI"
SECRET_KEY = "session_secret"


class SessionSeal:
    """Seals an API key into a cookie value and opens it again; derives CSRF tokens."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._fernet = Fernet(base64.urlsafe_b64encode(hashlib.sha256(secret).digest()))

    def seal(self, api_key: str) -> str:
        return self._fernet.encrypt(api_key.encode()).decode()

    def open(self, cookie: str | None) -> str | None:
        """The key inside a cookie; None when missing, tampered with or expired."""
        if not cookie:
            return None
        try:
            return self._fernet.decrypt(cookie.encode(), ttl=SESSION_MAX_AGE_S).decode()
        except (InvalidToken, ValueError):
            return None

    def csrf_token(self, cookie: str) -> str:
        return hmac.new(self._secret, b"csrf:" + cookie.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, cookie: str, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf_token(cookie), token or "")


async def shared_secret(js: JetStreamContext) -> bytes:
    """The sealing secret every gateway of the cluster uses (made once, kept in NATS)."""
    try:
        kv = await js.key_value(BUCKET)
    except BucketNotFoundError:
        kv = await js.create_key_value(bucket=BUCKET, history=1)
    with contextlib.suppress(KeyWrongLastSequenceError):  # another gateway made it first
        await kv.create(SECRET_KEY, secrets.token_bytes(32))
    try:
        entry = await kv.get(SECRET_KEY)
    except KeyNotFoundError:  # pragma: no cover - deleted between create and get
        raise RuntimeError("the dashboard's session secret vanished from NATS") from None
    assert entry.value is not None
    return entry.value
