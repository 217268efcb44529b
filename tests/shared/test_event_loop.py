"""Services run on uvloop unless WHOOSH_EVENT_LOOP=asyncio asks for the standard loop."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from whoosh_shared.runtime import event_loop


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_services_run_on_uvloop_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(event_loop.ENV, raising=False)
    assert event_loop.kind() == "uvloop"
    assert event_loop.run(_loop_module()).startswith("uvloop")


def test_the_standard_loop_can_be_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(event_loop.ENV, "asyncio")
    assert event_loop.kind() == "asyncio"
    assert event_loop.run(_loop_module()).startswith("asyncio")


STUBBORN = """
import asyncio, logging, sys
from whoosh_shared.runtime import event_loop

async def stubborn():  # what nats-py's reconnect task does while its server is gone
    while True:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            pass

async def main():
    asyncio.get_running_loop().create_task(stubborn())
    await asyncio.sleep(0)
    return 7

logging.basicConfig()
print("result", event_loop.run(main()))
"""


def test_a_task_that_ignores_cancellation_cannot_keep_the_process_alive() -> None:
    done = subprocess.run(
        [sys.executable, "-c", STUBBORN], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "ignored cancellation: stubborn" in done.stderr
    assert "result" not in done.stdout  # it left from inside run, not after it


GC_STATE = """
import gc
from whoosh_shared.runtime import event_loop

async def main():
    return gc.get_freeze_count() > 0, gc.get_threshold() == event_loop.GC_THRESHOLDS

print(event_loop.run(main()))
"""


@pytest.mark.parametrize(
    ("setting", "expected"),
    [(None, (True, True)), ("python", (False, False))],
)
def test_services_freeze_what_they_built_and_collect_young_objects_less_often(
    setting: str | None, expected: tuple[bool, bool]
) -> None:
    """A full collection walked every object the service had imported (60-100 ms with the
    loop stopped, in the coordinator under load): what exists when the loop starts is
    frozen out of the collector's scans, unless WHOOSH_GC=python asks for the defaults."""
    env = {k: v for k, v in os.environ.items() if k != event_loop.GC_ENV}
    if setting is not None:
        env[event_loop.GC_ENV] = setting
    out = subprocess.run(
        [sys.executable, "-c", GC_STATE], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == repr(expected)
