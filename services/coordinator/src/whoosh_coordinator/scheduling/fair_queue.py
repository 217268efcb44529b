"""Fair share between submitters: the order in which queued work is offered to the scheduler.

Without it, queued work at one priority is taken in submission order, so one API key that
queues 10,000 tasks makes every other key wait behind all of them. Here, within one
priority level, submitters (the `actor` of SubmitTask: the API key, `key <prefix> (<name>)`)
take turns, weighted by their share: start-time weighted fair queuing, where each
submitter's next task is tagged `held / share` and the smallest tag goes first (ties to the
older task). `held` counts the slots the submitter's work holds now (assigned or running)
plus the tasks already offered in this pass, so:

- a key with nothing running goes before a key that holds slots: one key's backlog delays
  another key's new task by at most the slots that free up meanwhile, not by its backlog;
- two busy keys alternate (with shares 3 and 1: three tasks to one for each of the other);
- priority still wins across levels: levels are offered highest first, fairness applies
  within a level only.

It is computed from the projection on every pass (what each key holds, what is queued),
so it needs no state of its own: a restarted coordinator, or several on one store, order
work the same way. Pure: views in, an order out.

Shares come from `coordinator.fair_share.shares` in whoosh.yaml, by API key name (every
key's share is 1 unless set); a share for a name no key has is refused when the
coordinator starts (see `check_shares`).
"""

from __future__ import annotations

import heapq
import re
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import groupby

from whoosh_shared.contract.queries import TaskView

DEFAULT_SHARE = 1.0
_KEY_ACTOR = re.compile(r"^key \S+ \((?P<name>.*)\)$")  # as the gateway's callers.py writes it


def key_name(actor: str) -> str | None:
    """The API key name in an actor string, or None for other actors (NATS, system)."""
    match = _KEY_ACTOR.match(actor)
    return match.group("name") if match else None


class FairShare:
    """Shares by API key name; every other submitter has the default share."""

    def __init__(self, shares: Mapping[str, float] | None = None) -> None:
        self.shares = dict(shares or {})

    def share_of(self, actor: str) -> float:
        name = key_name(actor)
        return self.shares.get(name, DEFAULT_SHARE) if name is not None else DEFAULT_SHARE

    def order(
        self,
        queued: Sequence[TaskView],
        unfinished_by: Callable[[str], int],
        queued_by: Callable[[str], int] | None = None,
    ) -> Iterator[TaskView]:
        """`queued` (highest priority first, then submission order) in fair order.
        `unfinished_by(actor)`: the actor's tasks not yet ended (queued or holding a slot).
        `queued_by(actor)`: the actor's queued tasks, when `queued` is only part of the
        queue (the need classes a free agent could take, need_classes.py); without it,
        `queued` is taken to be the whole queue. Tasks a pass skips as unplaceable take no
        turn: the order among the rest is the order they would have among themselves."""
        if queued_by is None:
            counts = Counter(task.submitted_by for task in queued)
            queued_by = counts.__getitem__
        actors = {task.submitted_by for task in queued}
        held = {actor: unfinished_by(actor) - queued_by(actor) for actor in actors}
        for _, level in groupby(queued, key=lambda task: task.priority):
            yield from _interleave(level, held, self.share_of)


def _interleave(
    level: Iterable[TaskView], held: Mapping[str, int], share_of: Callable[[str], float]
) -> Iterator[TaskView]:
    """One priority level: each submitter's tasks in submission order, submitters in turn by
    tag (held slots, then each task offered, divided by the share)."""
    by_actor: dict[str, deque[TaskView]] = {}
    for task in level:
        by_actor.setdefault(task.submitted_by, deque()).append(task)
    if len(by_actor) == 1:
        yield from next(iter(by_actor.values()))
        return
    heap = [
        (max(0, held.get(actor, 0)) / share_of(actor), tasks[0].sequence, actor)
        for actor, tasks in by_actor.items()
    ]
    heapq.heapify(heap)
    while heap:
        tag, _, actor = heapq.heappop(heap)
        tasks = by_actor[actor]
        yield tasks.popleft()
        if tasks:
            heapq.heappush(heap, (tag + 1 / share_of(actor), tasks[0].sequence, actor))


def check_shares(shares: Mapping[str, float], key_names: Iterable[str]) -> None:
    """Refuse shares for API key names that no key has (a typo would silently do nothing)."""
    known = set(key_names)
    unknown = sorted(set(shares) - known)
    if unknown:
        listed = ", ".join(sorted(known)) or "none yet"
        raise ValueError(
            f"coordinator.fair_share.shares names unknown API key(s): {', '.join(unknown)} "
            f"(known key names: {listed}); create the key first (whoosh key create NAME) "
            "or remove its share"
        )
