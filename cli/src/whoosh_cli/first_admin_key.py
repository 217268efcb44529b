"""The first admin key: `whoosh up` makes sure one exists before anyone needs it.

With `WHOOSH_ADMIN_KEY` set, that key is registered (once) as an admin key. Otherwise,
when no valid admin key exists yet (first start), a new one is generated, registered by
its hash, printed once in the banner and saved for local commands in the data dir's
`admin.key` (mode 600). Later starts create nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from whoosh_shared.contract.api_keys import Role, generate_key, hash_token, parse_token
from whoosh_shared.contract.commands import CreateApiKey
from whoosh_shared.contract.queries import ApiKeyList, ListApiKeys, VerifyApiKey
from whoosh_shared.runtime.bus import Bus, BusError

from whoosh_cli.bus_session import ask, require_accepted, send
from whoosh_cli.credentials import read_key_file, write_key_file
from whoosh_cli.errors import UnreachableError, UsageError

ADMIN_KEY_ENV = "WHOOSH_ADMIN_KEY"
ACTOR = "whoosh up"


@dataclass(frozen=True)
class FirstKey:
    """What the banner says about the admin key; `shown` is the new key, shown once."""

    note: str
    shown: str | None = None


async def ensure_admin_key(bus: Bus, data_dir: Path, environ: Mapping[str, str]) -> FirstKey:
    token = environ.get(ADMIN_KEY_ENV, "").strip()
    if token:
        return await _from_environment(bus, data_dir, token)
    keys = await ask(bus, ListApiKeys(), ApiKeyList)
    now = datetime.now(UTC)
    if any(k.role is Role.ADMIN and k.valid_at(now) for k in keys.keys):
        saved = read_key_file(data_dir)
        where = (
            f"saved in {data_dir / 'admin.key'}"
            if saved
            else "lost yours? whoosh --nats NATS_URL key create NAME --role admin"
        )
        return FirstKey(f"admin keys exist ({where})")
    key = generate_key()
    reply = await send(
        bus,
        CreateApiKey(
            prefix=key.prefix,
            key_hash=key.key_hash,
            name="first admin key (whoosh up)",
            role=Role.ADMIN,
            actor=ACTOR,
        ),
    )
    require_accepted(reply, "the first admin key")
    path = write_key_file(data_dir, key.token)
    return FirstKey(f"new admin key, saved for local commands in {path}", shown=key.token)


async def _from_environment(bus: Bus, data_dir: Path, token: str) -> FirstKey:
    prefix = parse_token(token)
    if prefix is None:
        raise UsageError(f"{ADMIN_KEY_ENV} is not an API key (expected whk_<prefix>_<secret>)")
    try:
        verified = await bus.ask(VerifyApiKey(prefix=prefix, key_hash=hash_token(token)))
    except BusError as exc:
        raise UnreachableError(f"cannot check {ADMIN_KEY_ENV}: {exc}") from None
    if verified.status == "ok":
        write_key_file(data_dir, token)
        return FirstKey(f"admin key from {ADMIN_KEY_ENV} ({prefix})")
    if verified.reason and verified.reason != "unknown API key":
        raise UsageError(f"{ADMIN_KEY_ENV}: {verified.reason}; unset it or give another key")
    reply = await send(
        bus,
        CreateApiKey(
            prefix=prefix,
            key_hash=hash_token(token),
            name=f"admin key ({ADMIN_KEY_ENV})",
            role=Role.ADMIN,
            actor=ACTOR,
        ),
    )
    require_accepted(reply, f"the key in {ADMIN_KEY_ENV}")
    write_key_file(data_dir, token)
    return FirstKey(f"admin key from {ADMIN_KEY_ENV} registered ({prefix})")
