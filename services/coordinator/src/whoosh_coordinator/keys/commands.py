"""API key commands (from the gateway): create one (its hash only), revoke one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from eventsourcing.application import AggregateNotFoundError
from whoosh_shared.contract import commands as c
from whoosh_shared.contract.api_keys import key_id
from whoosh_shared.contract.commands import CommandReply, RejectCode

from whoosh_coordinator.keys.domain import ApiKey
from whoosh_coordinator.rejection import Rejected

if TYPE_CHECKING:
    from whoosh_coordinator.commands import CommandHandler


def create_api_key(handler: CommandHandler, cmd: c.CreateApiKey) -> CommandReply:
    if key_id(cmd.prefix) in handler.store.repository:
        raise Rejected(RejectCode.DUPLICATE, f"API key prefix {cmd.prefix} is taken")
    if cmd.expires_at is not None and cmd.expires_at <= handler.clock():
        raise Rejected(RejectCode.INVALID, "expires_at is in the past")
    key = ApiKey(
        prefix=cmd.prefix,
        name=cmd.name,
        role=cmd.role.value,
        key_hash=cmd.key_hash,
        expires_at=cmd.expires_at,
        actor=cmd.actor,
    )
    handler.save(key)
    return CommandReply.accept(key_id=str(key.id), prefix=cmd.prefix)


def revoke_api_key(handler: CommandHandler, cmd: c.RevokeApiKey) -> CommandReply:
    try:
        key: ApiKey = handler.aggregates.get(key_id(cmd.prefix))  # type: ignore[assignment]
    except AggregateNotFoundError:
        raise Rejected(RejectCode.NOT_FOUND, f"unknown API key {cmd.prefix}") from None
    key.revoke(actor=cmd.actor)
    handler.save(key)
    return CommandReply.accept(key_id=str(key.id), prefix=cmd.prefix)
