"""Two coordinators on one store: a query answers as of every write the other coordinator
said it made (its StoreAppended nudge), not as of this coordinator's last scheduling pass.

A client that saw its task end through one coordinator and then asked the other read an
older view (seen end to end: a budget four completions behind)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from whoosh_coordinator.service import Coordinator
from whoosh_shared.contract import commands as c
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.budgets import BudgetList, ListBudgets, SetBudget
from whoosh_shared.contract.config import CoordinatorSettings

UNUSED_NATS = "nats://127.0.0.1:1"  # nothing here connects


@pytest.fixture
def pair(store_url: str) -> Iterator[tuple[Coordinator, Coordinator]]:
    a, b = (Coordinator(store_url, UNUSED_NATS, CoordinatorSettings()) for _ in range(2))
    yield a, b
    a.store.close()
    b.store.close()


def budgets(coordinator: Coordinator) -> dict[str, int]:
    reply = coordinator.answer_query(ListBudgets.SUBJECT, ListBudgets().model_dump_json().encode())
    assert reply.status == "ok", reply.reason
    return {b.scope: b.tokens for b in BudgetList.model_validate(reply.result).budgets}


def test_a_query_folds_what_the_other_coordinator_said_it_wrote(pair) -> None:
    a, b = pair
    spec = AgentSpec(name="w", command=["cat"])
    assert b.handler.handle(c.RegisterAgent(spec=spec)).accepted
    assert a.handler.handle(SetBudget(scope="global", tokens=500)).accepted
    assert budgets(b) == {}  # no nudge heard yet: b answers from what it has
    b.handler.heard_of(a.projection.position)  # a's StoreAppended
    assert budgets(b) == {"global": 500}


def test_a_query_reads_nothing_when_no_other_writer_spoke(pair, monkeypatch) -> None:
    """The log is read only on a nudge: a single coordinator's queries cost no store read."""
    a, _ = pair
    assert a.handler.handle(SetBudget(scope="global", tokens=500)).accepted
    monkeypatch.setattr(a.follower, "catch_up", lambda: pytest.fail("read the log"))
    assert budgets(a) == {"global": 500}
