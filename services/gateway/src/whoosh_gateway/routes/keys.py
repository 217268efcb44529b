"""`/api/v1/keys`: API keys, for admins. A new key is shown once, in the creation answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from whoosh_shared.contract import commands as c
from whoosh_shared.contract.api_keys import PREFIX_PATTERN, generate_key
from whoosh_shared.contract.queries import ApiKeyList, ApiKeyView, ListApiKeys

from whoosh_gateway.access import Admin
from whoosh_gateway.api_models import KeyCreated, KeyRequest
from whoosh_gateway.callers import Caller
from whoosh_gateway.errors import ERROR_RESPONSES, ApiError
from whoosh_gateway.gateway_state import state_of

router = APIRouter(prefix="/keys", tags=["keys"], responses=ERROR_RESPONSES)
PrefixPath = Annotated[str, Path(pattern=PREFIX_PATTERN, description="the key's prefix")]


@router.get("", response_model=ApiKeyList, summary="Every key (never their secrets)")
async def list_keys(request: Request, caller: Caller = Admin) -> ApiKeyList:
    return await state_of(request).coordinator.ask(ListApiKeys(), ApiKeyList)


@router.post("", status_code=201, response_model=KeyCreated, summary="Create a key (shown once)")
async def create_key(request: Request, body: KeyRequest, caller: Caller = Admin) -> KeyCreated:
    key = generate_key()
    await state_of(request).coordinator.send(
        c.CreateApiKey(
            prefix=key.prefix,
            key_hash=key.key_hash,
            name=body.name,
            role=body.role,
            expires_at=body.expires_at,
            actor=caller.actor,
        )
    )
    return KeyCreated(
        key=key.token, prefix=key.prefix, name=body.name, role=body.role, expires_at=body.expires_at
    )


@router.delete("/{prefix}", response_model=ApiKeyView, summary="Revoke a key, at once")
async def revoke_key(request: Request, prefix: PrefixPath, caller: Caller = Admin) -> ApiKeyView:
    state = state_of(request)
    seen = state.verifier.expect_revocation(prefix)
    await state.coordinator.send(c.RevokeApiKey(prefix=prefix, actor=caller.actor))
    await state.verifier.revoked(prefix, seen)
    keys = await state.coordinator.ask(ListApiKeys(), ApiKeyList)
    for view in keys.keys:
        if view.prefix == prefix:
            return view
    raise ApiError(404, "not_found", f"unknown API key {prefix}")
