"""Floods against a real fleet (nats-server, coordinator on SQLite, CLI executor, gateway):

- a flood of refused keys (unknown, malformed, missing) is answered 401, and past
  `rate_limits.refused_keys_per_minute` 429 with Retry-After, without asking the
  coordinator for each one, while a verified key is served all along;
- 10,000 tasks queued by one API key: every submit is answered, another key's task on the
  same agent still runs next (fair share), the lists page by count and by bytes over
  all of them, and the store holds exactly the accepted tasks.

Figures (time per request, submits per second) are printed with the load average, never
asserted: this machine is shared.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from gateway.stack import SHELL_AGENT, Stack
from harness import NatsServer, eventually
from nats.aio.msg import Msg
from whoosh_shared.contract.api_keys import Role, generate_key, parse_token
from whoosh_shared.contract.limits import preview
from whoosh_shared.contract.queries import GetStats, VerifyApiKey
from whoosh_shared.runtime.bus import Bus

from abuse.helpers import finished, still_serving

FLOOD_TASKS = 10_000
REFUSED_PER_MINUTE = 60
pytestmark = pytest.mark.timeout(1500)
GATEWAY_ENV = {
    "WHOOSH__GATEWAY__RATE_LIMITS__REQUESTS_PER_MINUTE": "1000000",
    "WHOOSH__GATEWAY__RATE_LIMITS__CONCURRENT_TASKS": str(FLOOD_TASKS * 2),
    "WHOOSH__GATEWAY__RATE_LIMITS__REFUSED_KEYS_PER_MINUTE": str(REFUSED_PER_MINUTE),
    "WHOOSH__GATEWAY__KEY_CACHE_S": "1",
}
# Two slots, each flood task holds one for a while: the queue stays ~10,000 deep.
SLOW_AGENT = {
    "name": "slow",
    "type": "cli",
    "command": ["sh", "-s"],
    "max_concurrent": 2,
    "capabilities": ["slow"],
}
# ~400 bytes of preview per task: a page of 1,000 summaries is over limits.reply_bytes.
FLOOD_PROMPT = "sleep 2 # " + "é" * 300


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


@pytest.fixture(scope="module")
async def flood_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    root = tmp_path_factory.mktemp("flood-stack")
    nats = NatsServer(root / "nats")
    nats.start()
    stack = Stack(root, nats, f"sqlite:///{root / 'events.sqlite'}")
    try:
        stack.spawn("whoosh_coordinator", "serve", "--nats", nats.url, "--store", stack.store_url)
        stack.spawn("whoosh_executor_cli", "--nats", nats.url)
        await stack.start_gateway(env=GATEWAY_ENV)
        stack.admin_key = await stack.issue_key(Role.ADMIN, "flood admin")
        async with stack.gateway.client(stack.admin_key) as admin:
            for spec in (SHELL_AGENT, SLOW_AGENT):
                created = await admin.post("/api/v1/agents", json={"spec": spec})
                assert created.status_code == 201, created.text
        yield stack
    finally:
        stack.stop()


class Counting:
    """A passive subscriber on the test's NATS: how many checks of keys other than
    `known` reached the bus (the known key's own re-checks, as its cache entry runs out,
    are the gateway doing its job)."""

    def __init__(self, known: str) -> None:
        self.known = known
        self.seen = 0

    async def count(self, msg: Msg) -> None:
        if json.loads(msg.data).get("prefix") != self.known:
            self.seen += 1


async def timed_get(client: httpx.AsyncClient, path: str) -> float:
    started = time.perf_counter()
    reply = await client.get(path)
    assert reply.status_code == 200, reply.text
    return time.perf_counter() - started


async def test_ten_thousand_queued_tasks_from_one_key_starve_no_one(flood_stack: Stack) -> None:
    flooder = await flood_stack.issue_key(Role.OPERATOR, "flooder")
    other = await flood_stack.issue_key(Role.OPERATOR, "other")
    gateway = flood_stack.gateway
    accepted: list[str] = []
    async with (
        gateway.client(flooder, limits=httpx.Limits(max_connections=16)) as flood,
        gateway.client(other) as polite,
        gateway.client(flood_stack.admin_key) as admin,
    ):
        started = time.perf_counter()

        async def submit(_: int) -> None:
            reply = await flood.post(
                "/api/v1/tasks", json={"prompt": FLOOD_PROMPT, "capabilities": ["slow"]}
            )
            assert reply.status_code == 201, reply.text
            accepted.append(reply.json()["task_id"])

        for chunk in range(0, FLOOD_TASKS, 16):
            await asyncio.gather(*(submit(i) for i in range(chunk, min(chunk + 16, FLOOD_TASKS))))
        submit_s = time.perf_counter() - started
        assert len(set(accepted)) == FLOOD_TASKS

        # Another key's task for the same two slots runs next, not after 10,000 others:
        # at most the flood tasks holding the two slots end before it (how many ended while
        # the flood was being submitted depends on the machine's speed, not on fairness).
        before = (await admin.get("/api/v1/stats")).json()["tasks_by_status"]
        queued_at = time.perf_counter()
        mine = await polite.post(
            "/api/v1/tasks", json={"prompt": "echo not-starved", "capabilities": ["slow"]}
        )
        assert mine.status_code == 201, mine.text
        view = await finished(polite, mine.json()["task_id"], timeout=120)
        waited_s = time.perf_counter() - queued_at
        assert view["status"] == "completed" and view["output"].strip() == "not-starved", view
        stats = (await admin.get("/api/v1/stats")).json()
        ended = stats["tasks_by_status"]["completed"] - before["completed"] - 1
        assert ended <= 4, f"{ended} flood tasks ended before another key's task: {stats}"

        await still_serving(admin)  # another agent's work and the lists: not stalled

        # The whole list pages, by count and by bytes, and holds every task once.
        listed: list[str] = []
        page_sizes: list[int] = []
        cursor = None
        list_started = time.perf_counter()
        while True:
            params: dict[str, str | int] = {"limit": 1000, "capability": "slow"}
            if cursor:
                params["cursor"] = cursor
            page = await polite.get("/api/v1/tasks", params=params)
            assert page.status_code == 200, page.text
            body = page.json()
            listed += [t["id"] for t in body["items"]]
            page_sizes.append(len(body["items"]))
            assert {t["prompt"] for t in body["items"]} <= {
                preview(FLOOD_PROMPT),
                "echo not-starved",
            }
            cursor = body["next_cursor"]
            if cursor is None:
                break
        list_s = time.perf_counter() - list_started
    assert max(page_sizes) < 1000, f"pages cut by bytes before 1,000 summaries: {page_sizes}"
    assert sorted(listed) == sorted([*accepted, mine.json()["task_id"]])
    assert stats["tasks_by_status"].get("failed", 0) == 0, stats
    print(
        f"\n{FLOOD_TASKS} submits from one key in {submit_s:.1f}s "
        f"({FLOOD_TASKS / submit_s:.0f}/s, 16 at a time); another key's task on the same "
        f"agent ran after {waited_s:.2f}s; listing {len(listed)} tasks took {list_s:.2f}s "
        f"in {len(page_sizes)} pages; {load()}"
    )


async def test_the_coordinator_answers_stats_promptly_with_the_queue_full(
    flood_stack: Stack,
) -> None:
    """Whatever the previous test left queued, a query is answered (not stalled)."""
    bus = Bus(flood_stack.nats.url, "test-stats")
    await bus.connect()
    try:
        reply = await eventually(
            lambda: bus.ask(GetStats(), timeout=5), timeout=30, what="GetStats"
        )
    finally:
        await bus.close()
    assert reply.status == "ok", reply


async def test_a_flood_of_refused_keys_is_answered_without_the_coordinator(
    flood_stack: Stack,
) -> None:
    """Last in this module: it uses up 127.0.0.1's refused keys for the minute. The admin
    key was verified before it, and its cache entry (1 s here) runs out during the flood:
    it is still served all along (a key this gateway saw succeed is re-checked past the
    bound); only keys it never verified wait for the minute to turn."""
    bus = Bus(flood_stack.nats.url, "test-key-checks")
    await bus.connect()
    checks = Counting(known=parse_token(flood_stack.admin_key) or "")
    await bus.nc.subscribe(VerifyApiKey.SUBJECT, cb=checks.count)
    gateway = flood_stack.gateway
    bad = [f"Bearer {generate_key().token}" for _ in range(1500)]  # well-formed, unknown
    bad += ["Bearer whk_x", "Bearer " + "z" * 5000, "Basic Zm9vOmJhcg=="] * 100
    try:
        async with (
            gateway.client(flood_stack.admin_key) as verified,
            gateway.client(limits=httpx.Limits(max_connections=32)) as stranger,
        ):
            quiet = [await timed_get(verified, "/api/v1/me") for _ in range(20)]

            async def one(header: str) -> httpx.Response:
                try:
                    return await stranger.get("/api/v1/tasks", headers={"Authorization": header})
                except (httpx.ReadError, httpx.RemoteProtocolError):
                    # A pooled keep-alive connection the server closed as it was reused
                    # (seen once in a loaded CI run): a GET is retried, as browsers do. A
                    # gateway that died would refuse the retry's connection.
                    return await stranger.get("/api/v1/tasks", headers={"Authorization": header})

            async def verified_meanwhile(stop: asyncio.Event) -> list[float]:
                times = []
                while not stop.is_set():
                    times.append(await timed_get(verified, "/api/v1/me"))
                return times

            stop = asyncio.Event()
            beside = asyncio.create_task(verified_meanwhile(stop))
            started = time.perf_counter()
            answers = []
            for chunk in range(0, len(bad), 32):
                answers += await asyncio.gather(*(one(h) for h in bad[chunk : chunk + 32]))
            flood_s = time.perf_counter() - started
            stop.set()
            during = await beside
            await bus.nc.flush()
    finally:
        await bus.close()
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {401, 429}, sorted(set(statuses))
    limited = [a for a in answers if a.status_code == 429]
    assert len(limited) >= len(bad) - 1000, "most of the flood is answered without a check"
    assert "refused API keys per minute" in limited[-1].json()["error"]["message"]
    assert 1 <= int(limited[-1].headers["Retry-After"]) <= 60
    # Each refusal that reached the coordinator counts; at most two minutes' worth did
    # (the flood may straddle a minute's turn).
    assert checks.seen <= 2 * REFUSED_PER_MINUTE, checks.seen
    assert during, "the verified key was answered during the flood"
    print(
        f"\nrefused-key flood: {len(bad)} requests in {flood_s:.2f}s "
        f"({len(bad) / flood_s:.0f}/s), {checks.seen} reached the coordinator; "
        f"verified key p50 {sorted(quiet)[10] * 1000:.1f} ms quiet, "
        f"{sorted(during)[len(during) // 2] * 1000:.1f} ms during ({len(during)} requests); "
        f"{load()}"
    )
