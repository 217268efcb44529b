"""The coordinator process refuses what it cannot work with, in one line, without a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest


def run_coordinator(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "whoosh_coordinator", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("store", "code", "message"),
    [
        ("mysql://x/y", 2, "unsupported scheme 'mysql'"),
        ("postgresql://postgres@127.0.0.1:1/nowhere", 1, "event store postgresql://"),
    ],
)
def test_unusable_store_is_refused_clearly(store: str, code: int, message: str) -> None:
    result = run_coordinator("replay", "--store", store)
    assert result.returncode == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_nats_is_refused_clearly(sqlite_url: str) -> None:
    result = run_coordinator("serve", "--nats", "nats://127.0.0.1:1", "--store", sqlite_url)
    assert result.returncode == 1
    assert "cannot connect to NATS at nats://127.0.0.1:1" in result.stderr
