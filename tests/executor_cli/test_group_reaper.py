"""The group reaper: commands listed when their executor dies are stopped, helpers
included; groups the executor said were gone are left alone."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest
from harness import alive
from whoosh_executor_cli.group_reaper import GroupReaper, listed_at_end, stop_groups

pytestmark = pytest.mark.timeout(60)


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


@pytest.fixture
def groups() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Command groups of two processes each (a shell and its background sleeper)."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def command_group(started: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ["sh", "-c", "sleep 60 & wait"], start_new_session=True, stdout=subprocess.DEVNULL
    )
    started.append(proc)
    return proc


def members(pgid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid and alive(int(entry)):
                    found.append(int(entry))
            except ProcessLookupError:
                pass
    return found


def test_the_groups_of_a_killed_executor_are_stopped_and_forgotten_ones_are_not(
    groups, tmp_path
) -> None:
    """A stand-in executor (its own process) lists two groups, forgets one, and dies by
    kill -9: the listed group goes, both its processes; the forgotten one stays."""
    listed, forgotten = command_group(groups), command_group(groups)
    time.sleep(0.2)  # the background sleepers exist
    listed_pids, kept_pids = members(listed.pid), members(forgotten.pid)
    assert len(listed_pids) == 2 and len(kept_pids) == 2
    executor = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import time
                from whoosh_executor_cli.group_reaper import GroupReaper
                reaper = GroupReaper(grace_s=1.0)
                reaper.start()
                reaper.watch({listed.pid})
                reaper.watch({forgotten.pid})
                reaper.forget({forgotten.pid})
                print("listed", flush=True)
                time.sleep(60)
                """
            ),
        ],
        stdout=subprocess.PIPE,
    )
    assert executor.stdout is not None and executor.stdout.readline() == b"listed\n"
    executor.kill()
    executor.wait()
    assert wait_gone(listed_pids, timeout=10) == []
    assert all(alive(pid) for pid in kept_pids)


def test_a_group_that_ignores_sigterm_is_killed_after_the_grace(groups) -> None:
    proc = subprocess.Popen(["sh", "-c", "trap '' TERM; sleep 60 & wait"], start_new_session=True)
    groups.append(proc)
    time.sleep(0.2)
    pids = members(proc.pid)
    began = time.monotonic()
    stop_groups([proc.pid], grace_s=0.5)
    assert wait_gone(pids, timeout=5) == []
    assert time.monotonic() - began >= 0.5  # TERM first, KILL only after the grace


def test_an_orderly_close_stops_the_reaper_and_nothing_else(groups) -> None:
    proc = command_group(groups)
    reaper = GroupReaper(grace_s=1.0)
    reaper.start()
    reaper.watch(proc.pid)
    reaper.forget(proc.pid)
    process = reaper.process
    assert process is not None
    reaper.close()
    assert process.wait(5) == 0  # it ends by itself at end of input...
    assert alive(proc.pid)  # ...and stops nothing it was told is gone


def test_a_reaper_that_died_is_replaced_with_the_whole_list(groups) -> None:
    proc = command_group(groups)
    time.sleep(0.2)
    pids = members(proc.pid)
    reaper = GroupReaper(grace_s=0.5)
    reaper.start()
    reaper.watch(proc.pid)
    assert reaper.process is not None
    reaper.process.kill()
    reaper.process.wait()
    reaper.watch(12345678)  # the write fails: a new reaper gets both groups
    reaper.forget(12345678)
    reaper.close()  # end of input: the new reaper stops what is still listed
    assert wait_gone(pids, timeout=5) == []


def test_the_listing_is_read_in_pieces_of_any_size() -> None:
    read, write = os.pipe()
    os.write(write, b"+11\n+12\n-1")
    os.write(write, b"1\n+13\n-99\nnoise\n+1")
    os.write(write, b"4")  # no newline before the end: not a whole line, not listed
    os.close(write)
    try:
        assert listed_at_end(read, pause_s=0) == [12, 13]
    finally:
        os.close(read)
