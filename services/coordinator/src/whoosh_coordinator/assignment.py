"""Applying the scheduler's plan to the store, and enforcing deadlines.

Each placement saves the Task (Assigned) and the Agent (SlotTaken) in one
transaction. Placements of one pass are saved as one batch (one transaction,
barely dearer than one event); if the batch loses a race with another
coordinator, each placement is retried alone from fresh state.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from whoosh_coordinator.agents.domain import Agent
from whoosh_coordinator.commands import CommandHandler
from whoosh_coordinator.need_classes import fitting, usable_slots
from whoosh_coordinator.rejection import Rejected
from whoosh_coordinator.scheduling.fair_queue import FairShare
from whoosh_coordinator.scheduling.lookahead import SlotForecast
from whoosh_coordinator.scheduling.scheduler import Placement, plan

log = logging.getLogger(__name__)


class Assigner:
    def __init__(
        self, handler: CommandHandler, timeout_grace_s: float, fair_share: FairShare | None = None
    ) -> None:
        self.handler = handler
        self.fair_share = fair_share or FairShare()
        self.aggregates = handler.aggregates
        self.projection = handler.projection
        self.timeout_grace = timedelta(seconds=timeout_grace_s)

    def assign_pending(self) -> int:
        """Place as many queued tasks as free slots allow; returns how many were placed."""
        agents, now = self.projection.agents.values(), self.handler.clock()
        waiting = self.projection.queued_classes()
        classes = fitting(waiting, agents)
        if not classes:
            return 0  # no free slot could take any queued work: the queue need not be read
        some = classes if len(classes) < len(waiting) else None
        if self.projection.queued_actors() == 1:  # no one to be fair to: read lazily,
            queued = self.projection.queued_in_order(some)  # up to the last free slot
        else:
            queued = self.fair_share.order(
                self.projection.queued(some),
                self.projection.unfinished_by,
                self.projection.queued_by,
            )
        forecast = SlotForecast.of(agents, self.projection.tasks, now)
        rotation = self.projection.rotation.copy()  # credits folded from events (weights.py)
        placements = plan(
            queued,
            agents,
            now,
            rotation=rotation,
            forecast=forecast,
            slots=usable_slots(classes, agents),
        )
        if not placements:
            return 0
        self.aggregates.begin()
        try:
            self.handler.save(*self._apply(placements))
            return len(placements)
        except (Rejected, IntegrityError):
            self.aggregates.forget_touched()
            return sum(self._assign_alone(p) for p in placements)

    def _apply(self, placements: list[Placement]) -> list[Aggregate]:
        agents: dict[UUID, Agent] = {}
        changed: list[Aggregate] = []
        for placement in placements:
            task = self.aggregates.get(placement.task_id)
            agent = agents.get(placement.agent_id)
            if agent is None:
                agent = agents[placement.agent_id] = self.aggregates.get(placement.agent_id)
                changed.append(agent)
            budgets = self.handler.reserve_for(task, agent)
            if budgets is None:  # refused by a budget: the task ended instead
                changed += [task, *self.handler.task_end_followers(task)]
                continue
            task.assign(agent.id, agent.name, placement.weighted_among)
            agent.take_slot(task.id, task.attempt)
            changed += [task, *budgets]
        return changed

    def _assign_alone(self, placement: Placement) -> int:
        self.aggregates.begin()
        try:
            self.handler.save(*self._apply([placement]))
            return 1
        except (Rejected, IntegrityError) as exc:
            self.aggregates.forget_touched()
            log.debug("placement %s skipped: %s", placement, exc)
            return 0

    def time_out_overdue(self) -> int:
        """Backstop for executors that died or never reported: end attempts past their deadline."""
        now = self.handler.clock()
        ended = 0
        for view in self.projection.active():
            began = view.assigned_at or view.submitted_at
            if now <= began + timedelta(seconds=view.timeout_s) + self.timeout_grace:
                continue
            self.aggregates.begin()
            try:
                task = self.aggregates.get(view.id)
                held = task.agent_id
                task.time_out(
                    attempt=task.attempt,
                    reason=f"no result within {view.timeout_s:g}s (timeout enforced by the "
                    "coordinator)",
                )
                self.handler.settle(task, held)
                ended += 1
            except (Rejected, IntegrityError) as exc:
                self.aggregates.forget_touched()
                log.debug("timeout of %s skipped: %s", view.id, exc)
        return ended
