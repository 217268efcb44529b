"""The refused-keys bound against a flood that shares an address with good keys: a key
this gateway verified before is re-checked with the coordinator when its cache entry runs
out, even past the bound; every other key (unknown, or a known prefix with another
secret) is answered 429 without asking. On a controlled clock, with a coordinator stand-in
that answers VerifyApiKey as the coordinator does (401 for anything but the one key)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from whoosh_gateway.errors import ApiError
from whoosh_gateway.key_verifier import KeyVerifier
from whoosh_gateway.refused_keys import RefusedKeys
from whoosh_shared.contract.api_keys import Role, generate_key, hash_token, key_id
from whoosh_shared.contract.queries import ApiKeyView, VerifyApiKey

GOOD = generate_key()
ADDRESS = "10.0.0.9"


class Coordinator:
    def __init__(self) -> None:
        self.asked = 0
        self.revoked = False

    async def ask(self, query: VerifyApiKey, model: type[Any]) -> ApiKeyView:
        self.asked += 1
        if self.revoked or query.prefix != GOOD.prefix or query.key_hash != hash_token(GOOD.token):
            raise ApiError(401, "unauthorized", "unknown, expired or revoked API key")
        return ApiKeyView(
            id=key_id(GOOD.prefix), prefix=GOOD.prefix, name="good", role=Role.VIEWER,
            created_at=datetime.now(UTC), created_by="test",
        )  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_good_key_outlives_a_flood_of_bad_ones_from_its_address() -> None:
    coordinator, clock = Coordinator(), Clock()
    refused = RefusedKeys(per_minute=3, clock=lambda: 60.0 * 100 + 1)  # one fixed minute
    verifier = KeyVerifier(coordinator, cache_s=5, refused=refused, clock=clock)  # type: ignore[arg-type]
    await verifier.verify(GOOD.token, ADDRESS)
    for _ in range(3):
        with pytest.raises(ApiError) as bad:
            await verifier.verify(generate_key().token, ADDRESS)
        assert bad.value.status == 401
    asked = coordinator.asked
    with pytest.raises(ApiError) as limited:
        await verifier.verify(generate_key().token, ADDRESS)
    wrong_secret = f"whk_{GOOD.prefix}_{'x' * 43}"
    with pytest.raises(ApiError) as guessed:
        await verifier.verify(wrong_secret, ADDRESS)
    assert (limited.value.status, guessed.value.status, coordinator.asked) == (429, 429, asked)

    clock.now += 6  # the good key's cache entry has run out: re-checked despite the bound
    caller = await verifier.verify(GOOD.token, ADDRESS)
    assert caller.role is Role.VIEWER and coordinator.asked == asked + 1

    coordinator.revoked = True  # refused on its re-check: no longer let past the bound
    clock.now += 6
    with pytest.raises(ApiError) as revoked:
        await verifier.verify(GOOD.token, ADDRESS)
    assert revoked.value.status == 401
    with pytest.raises(ApiError) as after:
        await verifier.verify(GOOD.token, ADDRESS)
    assert after.value.status == 429 and coordinator.asked == asked + 2
