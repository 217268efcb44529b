"""Speeds learned by concurrency (estimates.py): how a server shares its compute between
the streams it runs at once is measured from completed tasks, not assumed."""

from __future__ import annotations

import pytest
from coordinator.core import Core
from whoosh_coordinator.replay import rebuild
from whoosh_coordinator.scheduling.estimates import expected_seconds, observe, stream_tps
from whoosh_shared.contract import commands as c
from whoosh_shared.contract.commands import Usage
from whoosh_shared.contract.inventory import SpeedStats


def test_each_sample_is_kept_by_the_streams_that_ran_at_once() -> None:
    stats = observe(None, Usage(decode_tps=100, prefill_tps=1000), streams=1)
    stats = observe(stats, Usage(decode_tps=60, prefill_tps=1000), streams=4)
    stats = observe(stats, Usage(decode_tps=40, prefill_tps=1000), streams=4)
    assert stats is not None
    assert stats.stream_tps == {1: 100.0, 4: pytest.approx(54.0)}  # 0.7 * 60 + 0.3 * 40


def test_a_server_measured_not_to_slow_down_is_not_assumed_to() -> None:
    """Independent slots (one GPU per slot): four streams each as fast as one alone. The
    old rule (compute shared) would have said 1.75x as long at three others."""
    stats = None
    for streams in (1, 4):
        stats = observe(stats, Usage(decode_tps=50, prefill_tps=1e9), streams=streams)
    alone = expected_seconds(stats, 0, 100, warm=True, load=0, max_concurrent=4)
    beside_three = expected_seconds(stats, 0, 100, warm=True, load=3, max_concurrent=4)
    assert alone == beside_three == pytest.approx(2.0)


def test_a_concurrency_never_measured_follows_the_nearest_with_the_sharing_rule() -> None:
    stats = SpeedStats(samples=2, decode_tps=80, stream_tps={1: 100.0, 4: 50.0})
    assert stream_tps(stats, 4, 8) == 50.0
    # 3 streams: nearest is 4 (50 tok/s); sharing rule 1 + 3/8 at 4, 1 + 2/8 at 3
    assert stream_tps(stats, 3, 8) == pytest.approx(50.0 * 1.375 / 1.25)
    # nothing by streams (as before this was learned): the overall speed, shared
    assert stream_tps(SpeedStats(samples=1, decode_tps=80), 3, 4) == pytest.approx(80 / 1.5)


def test_prompt_reading_slows_down_as_decoding_does() -> None:
    stats = SpeedStats(samples=2, decode_tps=100, prefill_tps=1000, stream_tps={1: 100.0, 2: 50.0})
    assert expected_seconds(stats, 1000, 100, warm=True, load=1, max_concurrent=2) == 4.0


def test_the_projection_counts_the_streams_and_replay_agrees(core: Core) -> None:
    core.register("gpu1", type="ollama", endpoint="http://127.0.0.1:9", model="m:1b",
                  max_concurrent=2)  # fmt: skip
    first, second = core.submit(), core.submit()
    for task_id in (first, second):
        attempt = core.task(task_id).attempt
        core.send(c.StartTask(task_id=task_id, attempt=attempt, executor_id="t"))
    for task_id, decode in ((first, 40.0), (second, 70.0)):  # both running, then one alone
        usage = c.Usage(tokens_out=50, decode_tps=decode, prefill_tps=900.0)
        attempt = core.task(task_id).attempt
        assert core.send(c.CompleteTask(task_id=task_id, attempt=attempt, usage=usage)).accepted
    stats = core.projection.agent_by_name("gpu1").speeds["m:1b"]
    assert stats.stream_tps == {2: 40.0, 1: 70.0}
    assert rebuild(core.store).agent_by_name("gpu1").speeds == {"m:1b": stats}
