"""`whoosh key create|list|revoke`: API keys (admin).

Through the gateway with an admin key; or, with `--nats URL`, straight to the
coordinator, for an operator on the cluster's own network (reaching NATS is the
credential there), which is also how a lost last admin key is replaced. A new key is
printed once; only its hash is stored."""

from __future__ import annotations

import argparse
import re
from typing import Any

from whoosh_shared.contract.api_keys import PREFIX_PATTERN, Role, generate_key
from whoosh_shared.contract.commands import CreateApiKey, RevokeApiKey
from whoosh_shared.contract.queries import ApiKeyList, ApiKeyView, ListApiKeys

from whoosh_cli.bus_session import ask, bus_session, require_accepted, send
from whoosh_cli.context import CliContext
from whoosh_cli.errors import EXIT_OK, CliError, UsageError
from whoosh_cli.gateway_session import GatewayRejected, gateway_session, raise_for_usage
from whoosh_cli.output import notice, print_json, print_line, print_table

ACTOR = "cli (NATS)"


async def key_create(ctx: CliContext, args: argparse.Namespace) -> int:
    if ctx.uses_gateway:
        body: dict[str, Any] = {"name": args.name, "role": args.role}
        if args.expires is not None:
            body["expires_at"] = args.expires.isoformat()
        async with gateway_session(ctx.gateway_url(), ctx.api_key()) as session:
            try:
                created = await session.call("POST", "/keys", json=body)
            except GatewayRejected as rejected:
                raise_for_usage(rejected)
                raise
    else:
        created = await _create_over_nats(ctx, args)
    if ctx.json:
        print_json(created)
        return EXIT_OK
    print_line(created["key"])
    notice(
        f"whoosh: {created['role']} key {created['prefix']} for {created['name']!r}: shown once, "
        "keep it (WHOOSH_API_KEY=... or api_key in ~/.config/whoosh/cli.yaml)"
    )
    return EXIT_OK


async def _create_over_nats(ctx: CliContext, args: argparse.Namespace) -> dict[str, Any]:
    key = generate_key()
    command = CreateApiKey(
        prefix=key.prefix,
        key_hash=key.key_hash,
        name=args.name,
        role=Role(args.role),
        expires_at=args.expires,
        actor=ACTOR,
    )
    async with bus_session(ctx.nats_url()) as bus:
        require_accepted(await send(bus, command), "key")
    return {
        "key": key.token,
        "prefix": key.prefix,
        "name": args.name,
        "role": args.role,
        "expires_at": args.expires.isoformat() if args.expires else None,
    }


async def key_list(ctx: CliContext, args: argparse.Namespace) -> int:
    if ctx.uses_gateway:
        async with gateway_session(ctx.gateway_url(), ctx.api_key()) as session:
            keys = await session.get("/keys", ApiKeyList)
    else:
        async with bus_session(ctx.nats_url()) as bus:
            keys = await ask(bus, ListApiKeys(), ApiKeyList)
    if ctx.json:
        print_json(keys)
        return EXIT_OK
    print_table(
        ("PREFIX", "ROLE", "NAME", "CREATED", "BY", "EXPIRES", "REVOKED"),
        [_row(k) for k in keys.keys],
    )
    return EXIT_OK


def _row(key: ApiKeyView) -> tuple[object, ...]:
    return (
        key.prefix,
        key.role.value,
        key.name,
        key.created_at.isoformat(timespec="seconds"),
        key.created_by,
        key.expires_at.isoformat(timespec="seconds") if key.expires_at else None,
        key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else None,
    )


async def key_revoke(ctx: CliContext, args: argparse.Namespace) -> int:
    if not re.match(PREFIX_PATTERN, args.prefix):
        raise UsageError(f"{args.prefix!r} is not a key prefix (12 hex digits, see key list)")
    if ctx.uses_gateway:
        async with gateway_session(ctx.gateway_url(), ctx.api_key()) as session:
            revoked = await session.delete(f"/keys/{args.prefix}", ApiKeyView)
    else:
        async with bus_session(ctx.nats_url()) as bus:
            command = RevokeApiKey(prefix=args.prefix, actor=ACTOR)
            require_accepted(await send(bus, command), f"revoke {args.prefix}")
            listed = await ask(bus, ListApiKeys(), ApiKeyList)
        found = [k for k in listed.keys if k.prefix == args.prefix]
        if not found:
            raise CliError(f"unknown API key {args.prefix}")
        revoked = found[0]
    if ctx.json:
        print_json(revoked)
    else:
        print_line(f"revoked key {revoked.prefix} ({revoked.name})")
    return EXIT_OK
