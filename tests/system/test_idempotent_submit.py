"""`whoosh task submit` through the gateway while the coordinator is killed (-9) and
restarted: every submit succeeds, and the store holds exactly one task per submit.

Each invocation sends one Idempotency-Key and sends it again while the gateway answers
503, so a submit whose first try was recorded just before the crash (the answer lost)
gets its task back instead of a second one."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from gateway.stack import SHELL_AGENT, Stack
from harness import NatsServer, eventually, wait_for_coordinator
from whoosh_coordinator.store import open_store, read_envelopes
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.api_keys import Role
from whoosh_shared.contract.commands import RegisterAgent
from whoosh_shared.runtime.bus import Bus

SUBMITS = 24
RETRIED = "retrying with the same idempotency key"
PARALLEL = 4


def submitted_task_ids(store_url: str) -> list[str]:
    store = open_store(store_url)
    found, position = [], 0
    while batch := read_envelopes(store, position):
        found += [str(e.aggregate_id) for e in batch if e.type == "TaskSubmitted"]
        position = batch[-1].notification_id
    store.close()
    return found


def cli_submit(stack: Stack, key: str, n: int) -> subprocess.CompletedProcess[str]:
    """One `whoosh task submit`; its stderr also goes to a file the test watches."""
    stderr = stack.root / f"submit-{n}.err"
    with stderr.open("w") as err:
        done = subprocess.run(
            [sys.executable, "-m", "whoosh_cli", "--gateway", stack.gateway.url, "--api-key",
             key, "task", "submit", f"echo {n}"],
            env={"WHOOSH_CONFIG": "/dev/null", "PATH": "/usr/bin:/bin"},
            stdout=subprocess.PIPE, stderr=err, text=True, timeout=120, check=False,
        )  # fmt: skip
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout,
                                       stderr.read_text())  # fmt: skip


def someone_retried(root: Path) -> bool:
    return any(RETRIED in f.read_text() for f in root.glob("submit-*.err"))


async def test_submits_during_a_coordinator_kill_neither_fail_nor_duplicate(
    tmp_path: Path,
) -> None:
    nats = NatsServer(tmp_path / "nats")
    nats.start()
    stack = Stack(tmp_path, nats, f"sqlite:///{tmp_path / 'events.sqlite'}")
    coordinator_args = ("serve", "--nats", nats.url, "--store", stack.store_url)
    try:
        coordinator = stack.spawn("whoosh_coordinator", *coordinator_args)
        bus = Bus(nats.url, "test")
        await bus.connect()
        await wait_for_coordinator(bus)
        spec = AgentSpec.model_validate({**SHELL_AGENT, "max_concurrent": 1000})
        assert (await bus.send(RegisterAgent(spec=spec))).accepted
        await stack.start_gateway()
        key = await stack.issue_key(Role.OPERATOR, "submitter")

        gate = asyncio.Semaphore(PARALLEL)

        async def one(n: int) -> subprocess.CompletedProcess[str]:
            async with gate:
                return await asyncio.to_thread(cli_submit, stack, key, n)

        submits = [asyncio.create_task(one(n)) for n in range(SUBMITS)]
        while sum(s.done() for s in submits) < SUBMITS // 3:
            await asyncio.sleep(0.05)
        coordinator.kill()  # kill -9, mid-stream of submits
        # down until a submit has met it (then it is started again)
        await eventually(lambda: someone_retried(tmp_path), timeout=60, what="a retry")
        stack.spawn("whoosh_coordinator", *coordinator_args)
        results = await asyncio.gather(*submits)
        await bus.close()
    finally:
        stack.stop()
    failed = [r.stderr for r in results if r.returncode != 0]
    assert not failed, failed
    retried = [r for r in results if RETRIED in r.stderr]
    assert retried, "no submit met the dead coordinator: the test proved nothing"
    printed = [r.stdout.strip() for r in results]
    assert len(set(printed)) == SUBMITS
    assert sorted(submitted_task_ids(stack.store_url)) == sorted(printed)
