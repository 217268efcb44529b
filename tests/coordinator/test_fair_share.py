"""Fair share: at equal priority submitters take turns, so one key's flood cannot hold
another key's task back; priority still wins; shares by key name from whoosh.yaml."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from itertools import islice

import pytest
from coordinator.core import Core
from coordinator.factories import task_view
from whoosh_coordinator.assignment import Assigner
from whoosh_coordinator.commands import CommandHandler
from whoosh_coordinator.follower import Follower
from whoosh_coordinator.projections import FleetProjection
from whoosh_coordinator.scheduling.fair_queue import FairShare, check_shares, key_name
from whoosh_coordinator.store import open_store
from whoosh_shared.contract import commands as c
from whoosh_shared.contract.config import ConfigError, parse_config_text
from whoosh_shared.contract.enums import TaskStatus

FLOOD, ALICE, BOB, CAROL = (f"key {p} ({n})" for p, n in (
    ("fl00d", "flood"), ("a11ce", "alice"), ("b0b00", "bob"), ("ca201", "carol")
))  # fmt: skip


def test_key_names_are_read_from_the_gateways_actor_strings() -> None:
    assert key_name("key ab12cd (ci bot)") == "ci bot"
    assert key_name("cli (NATS)") is None and key_name("system") is None


def test_submitters_take_turns_within_a_priority_level() -> None:
    flood = [task_view(i, submitted_by=FLOOD) for i in range(1, 101)]
    late = [task_view(200, submitted_by=ALICE), task_view(201, submitted_by=BOB)]
    queued = sorted(flood + late, key=lambda t: (-t.priority, t.sequence))
    first = [t.submitted_by for t in islice(FairShare().order(queued, lambda a: 0), 4)]
    assert first == [FLOOD, ALICE, BOB, FLOOD]  # ties go to the older task


def test_a_key_holding_slots_waits_behind_one_holding_none() -> None:
    queued = [task_view(1, submitted_by=FLOOD), task_view(2, submitted_by=ALICE)]
    unfinished = {FLOOD: 1 + 8, ALICE: 1}  # the flood holds 8 slots, alice none
    order = FairShare().order(queued, unfinished.__getitem__)
    assert [t.submitted_by for t in order] == [ALICE, FLOOD]


def test_priority_still_wins_across_levels() -> None:
    queued = [
        task_view(1, priority=9, submitted_by=FLOOD),
        task_view(2, priority=9, submitted_by=FLOOD),
        task_view(3, priority=5, submitted_by=ALICE),
    ]
    order = FairShare().order(queued, {FLOOD: 2, ALICE: 1}.__getitem__)
    assert [t.sequence for t in order] == [1, 2, 3]


def test_shares_weight_the_turns() -> None:
    queued = [task_view(i, submitted_by=ALICE if i % 2 else BOB) for i in range(1, 801)]
    fair = FairShare({"alice": 3})
    taken = Counter(t.submitted_by for t in islice(fair.order(queued, lambda a: 400), 400))
    assert taken == {ALICE: 300, BOB: 100}


def test_shares_are_read_from_whoosh_yaml_and_checked() -> None:
    config = parse_config_text("coordinator:\n  fair_share:\n    shares: {alice: 3}\n", "w.yaml")
    assert config.coordinator.fair_share.shares == {"alice": 3.0}
    with pytest.raises(ConfigError, match="share of key 'bob' must be > 0"):
        parse_config_text("coordinator:\n  fair_share:\n    shares: {bob: 0}\n", "w.yaml")
    check_shares({"alice": 3}, ["alice", "ci"])
    with pytest.raises(ValueError, match=r"unknown API key\(s\): typo \(known key names: alice"):
        check_shares({"typo": 2, "alice": 1}, ["alice"])


# -- the flood, through the coordinator on a real SQLite store ----------------------------


@pytest.fixture
def sqlite_core(sqlite_url: str) -> Iterator[Core]:
    store = open_store(sqlite_url)
    projection = FleetProjection()
    handler = CommandHandler(store, projection, on_saved=Follower(store, projection).fold_saved)
    yield Core(sqlite_url, store, projection, handler, Assigner(handler, timeout_grace_s=0))
    store.close()


def flood(core: Core, actor: str, count: int) -> None:
    """Submit `count` tasks as the gateway's group commit would (hundreds per transaction)."""
    for start in range(0, count, 500):
        batch = [c.SubmitTask(prompt="bulk", actor=actor) for _ in range(min(500, count - start))]
        assert all(reply.accepted for reply in core.handler.handle_batch(batch))


def finish_one(core: Core) -> None:
    """End the oldest running task: a slot frees and the scheduler fills it."""
    task = min(core.projection.active(), key=lambda t: t.sequence)
    assert core.run_to_end(task.id).accepted


def test_a_flood_of_10000_does_not_hold_back_other_keys(sqlite_core: Core) -> None:
    core = sqlite_core
    core.register("worker-1", max_concurrent=2)
    core.register("worker-2", max_concurrent=2)
    flood(core, FLOOD, 10_000)
    core.assigner.assign_pending()
    assert core.projection.count(TaskStatus.QUEUED) == 10_000 - 4  # the flood fills every slot
    singles = [core.submit(actor=actor) for actor in (ALICE, BOB, CAROL)]
    assert all(core.task(t).status is TaskStatus.QUEUED for t in singles)

    flood_started = 0
    for _ in range(10):  # without fair share the singles would wait for 9,996 tasks
        if not any(core.task(t).status is TaskStatus.QUEUED for t in singles):
            break
        before = {t.id for t in core.projection.active()}
        finish_one(core)
        started = [t for t in core.projection.active() if t.id not in before]
        flood_started += sum(1 for t in started if t.submitted_by == FLOOD)
    assert all(core.task(t).status is not TaskStatus.QUEUED for t in singles)
    assert flood_started == 0  # each freed slot went to a waiting single, none to the flood
    high = core.submit(actor=FLOOD, priority=9)
    late = core.submit(actor=ALICE)
    for _ in range(2):
        finish_one(core)
    assert core.task(high).status is not TaskStatus.QUEUED  # priority wins over fairness
    assert core.task(late).status is not TaskStatus.QUEUED  # alice holds none: her turn next


def test_without_other_keys_the_flood_runs_in_submission_order(sqlite_core: Core) -> None:
    core = sqlite_core
    core.register("worker", max_concurrent=1)
    flood(core, FLOOD, 50)
    core.assigner.assign_pending()
    order = []
    for _ in range(5):
        running = core.projection.active()
        order += [t.sequence for t in running]
        finish_one(core)
    assert order == sorted(order)
