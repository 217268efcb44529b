"""One work message on an executor: the part of its life every executor shares.

The order is what makes executors crash-safe: a message is read and checked, the
attempt claimed with StartTask, run, reported until the coordinator answers, and only
then acked. Until that ack the message is kept alive with in-progress acks, so an
executor that dies at any point leaves it to JetStream to redeliver after ack_wait, and
the coordinator sorts stale attempts out by their attempt number. What an attempt runs
(a process, an LLM stream) is the executor's own; this module is the envelope around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import nats.errors
from nats.aio.msg import Msg
from pydantic import ValidationError

from whoosh_shared.contract.commands import FailTask, StartTask
from whoosh_shared.contract.work import WorkItem
from whoosh_shared.runtime.blob_store import BlobMissing, BlobStore
from whoosh_shared.runtime.bus import Bus, BusError
from whoosh_shared.runtime.running_attempts import RunningAttempts, RunT

log = logging.getLogger(__name__)

# Redelivery delays: set explicitly, since a NAK without one redelivers at once.
COORDINATOR_DOWN_DELAY_S = 1.0
SHUTDOWN_REDELIVERY_DELAY_S = 0.5


async def settle(ack: Awaitable[None]) -> None:
    """Await an ack/nak/term, tolerating a connection that is already gone.

    If it is lost, JetStream redelivers after ack_wait, which is the safe side.
    """
    try:
        await ack
    except Exception as exc:
        log.debug("ack not sent: %s", exc)


def ids(item: WorkItem) -> dict[str, Any]:
    """The fields that name an attempt in log records."""
    return {"task_id": str(item.task_id), "attempt": item.attempt}


async def receive(
    msg: Msg,
    serves: Callable[[WorkItem], bool],
    stopping: asyncio.Event,
    bus: Bus | None = None,
) -> WorkItem | None:
    """The work item a message carries, or None once the message is settled: a message
    that is not a work item, or is for an agent this executor cannot run, is dropped
    (term: no executor could do better); one arriving while stopping goes back (nak).
    A prompt held by reference is fetched from the blob store (through `bus`) first."""
    try:
        item = WorkItem.model_validate_json(msg.data)
    except ValidationError as exc:
        log.error("dropping an invalid work message on %s: %s", msg.subject, _brief(exc))
        await settle(msg.term())
        return None
    if not serves(item):
        log.error("dropping work for a %s agent on %s", item.agent.type.value, msg.subject)
        await settle(msg.term())
        return None
    if stopping.is_set():
        await settle(msg.nak(delay=SHUTDOWN_REDELIVERY_DELAY_S))
        return None
    if item.prompt_ref is not None and bus is not None:
        return await _with_prompt(msg, item, bus)
    return item


async def _with_prompt(msg: Msg, item: WorkItem, bus: Bus) -> WorkItem | None:
    """The item with its whole prompt. A body that is gone fails the task for good (no
    executor could run it); a bus that does not answer sends the message back."""
    assert item.prompt_ref is not None
    try:
        prompt = await BlobStore(bus.js).get_text(item.prompt_ref)
    except BlobMissing as exc:
        log.error("cannot run: %s", exc, extra=ids(item))
        reason = f"the prompt could not be read from the blob store: {exc}"
        fail = FailTask(task_id=item.task_id, attempt=item.attempt, reason=reason, retryable=False)
        with contextlib.suppress(BusError, nats.errors.Error):
            await bus.send(fail)
        await settle(msg.term())
        return None
    except Exception as exc:  # NATS unavailable, timeouts: try again later
        log.warning("prompt not fetched, will retry: %s", exc, extra=ids(item))
        await settle(msg.nak(delay=COORDINATOR_DOWN_DELAY_S))
        return None
    return item.model_copy(update={"prompt": prompt})


async def hold(
    msg: Msg,
    running: RunningAttempts[RunT],
    run: RunT,
    ack_wait_s: float,
    work: Callable[[], Awaitable[None]],
) -> None:
    """Do `work` for `run` with the run registered (cancellations find it there) and the
    message kept alive. A redelivered copy of an attempt still running here (its
    in-progress acks did not reach the server in time) is ignored: the running copy
    will ack the message."""
    if not running.add(run):
        log.warning("attempt already running here; ignoring the copy", extra=ids(run.item))
        return
    keepalive = asyncio.create_task(_keep_in_progress(msg, ack_wait_s / 3))
    try:
        await work()
    finally:
        keepalive.cancel()
        await asyncio.gather(keepalive, return_exceptions=True)
        running.remove(run)


async def claim(bus: Bus, msg: Msg, item: WorkItem, executor_id: str) -> bool:
    """StartTask for the attempt; True when it is ours to run. Otherwise the message is
    settled: back to the queue if the coordinator cannot be reached, acked if it said no
    (the task ended or moved on to another attempt)."""
    start = StartTask(task_id=item.task_id, attempt=item.attempt, executor_id=executor_id)
    try:
        reply = await bus.send(start)
    except (BusError, nats.errors.Error) as exc:
        log.warning("cannot start task, will retry: %s", exc, extra=ids(item))
        await settle(msg.nak(delay=COORDINATOR_DOWN_DELAY_S))
        return False
    if not reply.accepted:
        log.info("task not started: %s", reply.reason, extra=ids(item))
        await settle(msg.ack())
        return False
    return True


async def _keep_in_progress(msg: Msg, interval_s: float) -> None:
    """Tell JetStream the work is still in hand, so ack_wait never runs out on long work."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await msg.in_progress()
        except Exception as exc:  # a lost connection: the next beat may get through
            log.debug("in-progress ack failed: %s", exc)


def _brief(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '<top>'}: {e['msg']}" for e in exc.errors())
