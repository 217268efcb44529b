"""The per-address bound on refused keys, as a pure counter on a controlled clock."""

from __future__ import annotations

import pytest
from whoosh_gateway.errors import ApiError
from whoosh_gateway.refused_keys import RefusedKeys


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_an_address_is_refused_past_its_limit_until_the_minute_turns() -> None:
    clock = Clock(6000.0 + 15)  # 15 s into a clock minute
    refused = RefusedKeys(per_minute=2, clock=clock)
    for _ in range(2):
        refused.reserve("10.0.0.1")  # both in flight at once: the second is the last
    with pytest.raises(ApiError) as raised:
        refused.reserve("10.0.0.1")
    assert (raised.value.status, raised.value.headers["Retry-After"]) == (429, "45")
    refused.reserve("10.0.0.2")  # another address has its own count
    clock.now += 45
    refused.reserve("10.0.0.1")  # a new minute


def test_a_check_that_was_not_a_refusal_gives_its_place_back() -> None:
    refused = RefusedKeys(per_minute=1, clock=Clock(6000.0))
    refused.reserve("10.0.0.1")
    refused.release("10.0.0.1")  # the key was good
    refused.reserve("10.0.0.1")
    with pytest.raises(ApiError):
        refused.reserve("10.0.0.1")
