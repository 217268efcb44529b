"""Circuit breaker transitions on a fake clock."""

from __future__ import annotations

import pytest
from whoosh_executor_ollama.circuit_breaker import BreakerBoard, BreakerState, CircuitBreaker
from whoosh_executor_ollama.failures import classify_status


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(
        failure_threshold=3, window_s=10, base_open_s=5, max_open_s=20, clock=clock
    )


def test_failures_within_window_open_it(clock: FakeClock) -> None:
    b = breaker(clock)
    b.record_failure()
    clock.now += 6
    b.record_failure()
    clock.now += 6  # the first failure is now out of the window
    b.record_failure()
    assert b.state is BreakerState.CLOSED and b.allow_request()
    b.record_failure()
    assert b.state is BreakerState.OPEN and not b.allow_request() and not b.available()
    assert b.retry_after_s() == 5


def test_half_open_single_trial_and_growing_interval(clock: FakeClock) -> None:
    b = breaker(clock)
    b.record_failure(open_now=True)  # a 503
    assert b.state is BreakerState.OPEN
    clock.now += 4.9
    assert not b.allow_request()
    clock.now += 0.1
    assert b.state is BreakerState.HALF_OPEN and b.available()
    assert b.allow_request() and not b.allow_request()  # one trial only
    assert not b.available()
    b.record_failure()  # the trial failed: open for twice as long
    assert b.state is BreakerState.OPEN and b.retry_after_s() == 10
    clock.now += 10
    assert b.allow_request()
    b.record_failure()
    assert b.retry_after_s() == 20
    clock.now += 20
    assert b.allow_request()
    b.record_failure()
    assert b.retry_after_s() == 20  # capped


def test_trial_that_never_reports_expires(clock: FakeClock) -> None:
    b = breaker(clock)
    b.record_failure(open_now=True)
    clock.now += 5
    assert b.allow_request()  # the trial's task is then cancelled: no outcome
    clock.now += 9
    assert not b.allow_request()
    clock.now += 1
    assert b.state is BreakerState.HALF_OPEN and b.allow_request()


def test_success_closes_and_resets(clock: FakeClock) -> None:
    b = breaker(clock)
    b.record_failure(open_now=True)
    clock.now += 5
    assert b.allow_request()
    b.record_failure()
    clock.now += 10
    assert b.allow_request()
    b.record_success()
    assert b.state is BreakerState.CLOSED and b.open_interval_s == 5
    b.record_failure()
    b.record_failure()
    assert b.state is BreakerState.CLOSED  # old failures were forgotten
    b.record_failure(open_now=True)
    assert b.retry_after_s() == 5


def test_record_failures_by_kind(clock: FakeClock) -> None:
    b = breaker(clock)
    for _ in range(5):
        b.record(classify_status(404))  # the backend is fine, the model is missing
        b.record(classify_status(400))
    assert b.state is BreakerState.CLOSED
    b.record(classify_status(503))
    assert b.state is BreakerState.OPEN
    clock.now += 5
    assert b.allow_request()
    b.record(None)
    assert b.state is BreakerState.CLOSED


def test_board_keeps_one_breaker_per_backend(clock: FakeClock) -> None:
    board = BreakerBoard(lambda: breaker(clock))
    board["http://a:11434"].record_failure(open_now=True)
    assert board["http://b:11434"].allow_request()
    assert board.available() == ["http://b:11434"]
    clock.now += 5
    assert set(board.available()) == {"http://a:11434", "http://b:11434"}


def test_invalid_settings() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=0)
