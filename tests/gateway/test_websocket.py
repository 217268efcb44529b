"""The event stream over WebSocket, against a real stack: live tokens before completion,
starting and stopping over the socket, resume with the last event id, two gateways as
one, slow clients cut off without delaying others, and bad messages answered in place."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
from gateway.calls import submit, wait_task
from gateway.stack import Stack
from gateway.ws_client import of_type, open_ws, receive, receive_until, send
from websockets.exceptions import ConnectionClosed
from whoosh_shared.contract.api_keys import Role

TOKENS = "for i in 1 2 3 4 5; do echo tok-$i; sleep 0.2; done"


async def test_a_started_task_streams_tokens_before_its_completion(
    stack: Stack, keys: dict[Role, str]
) -> None:
    async with await open_ws(stack.gateway.ws_url, keys[Role.OPERATOR]) as ws:
        await send(ws, {"action": "start", "task": {"prompt": TOKENS, "agent": "shell"},
                        "request_id": "r1"})  # fmt: skip
        accepted = await receive(ws)
        assert accepted["type"] == "accepted" and accepted["request_id"] == "r1"
        task_id = accepted["task_id"]
        messages = await receive_until(ws, of_type("execution_completed", task_id))
    kinds = [(m["type"], m.get("kind"), m.get("step")) for m in messages]
    assert ("agent_event", "step", "submitted") in kinds
    assert ("agent_event", "step", "assigned") in kinds
    started = kinds.index(("execution_started", None, None))
    tokens = [m["text"] for m in messages if m.get("kind") == "message"]
    assert tokens == [f"tok-{i}" for i in range(1, 6)], "every token, in order, once"
    first_token = next(i for i, m in enumerate(messages) if m.get("kind") == "message")
    assert started < first_token < len(messages) - 1, "tokens arrive before the completion"
    done = messages[-1]
    assert "tok-5" in done["output"] and done["exit_code"] == 0
    assert done["usage"]["duration_s"] > 0
    ids = [m["event_id"] for m in messages if "event_id" in m]
    assert ids == sorted(set(ids)), "stored events once each, in order"


async def test_a_task_can_be_stopped_over_the_socket(stack: Stack, keys: dict[Role, str]) -> None:
    async with await open_ws(stack.gateway.ws_url, keys[Role.OPERATOR]) as ws:
        await send(ws, {"action": "start", "task": {"prompt": "echo up; sleep 30",
                                                    "agent": "shell"}})  # fmt: skip
        task_id = (await receive(ws))["task_id"]
        await receive_until(ws, lambda m: m.get("kind") == "message" and m["text"] == "up")
        await send(ws, {"action": "stop", "task_id": task_id, "reason": "enough"})
        rest = await receive_until(ws, of_type("execution_stopped", task_id))
        if not any(m["type"] == "stop_accepted" for m in rest):  # the event may come first
            rest += await receive_until(ws, of_type("stop_accepted", task_id))
    stopped = next(m for m in rest if m["type"] == "execution_stopped")
    assert stopped["reason"] == "enough" and stopped["actor"].startswith("key ")


async def test_a_task_subscription_with_history_gets_the_lines_it_just_missed(
    stack: Stack, keys: dict[Role, str], operator: httpx.AsyncClient
) -> None:
    """Live output is not stored: a client that subscribes to a task (with
    `last_event_id`) after its first lines went by still gets them, from the gateway's
    memory of recent lines, once each and in order, then the rest live."""
    async with await open_ws(stack.gateway.ws_url, keys[Role.VIEWER]) as watcher:
        await send(watcher, {"action": "subscribe", "scope": "all"})
        await receive_until(watcher, of_type("subscribed"))
        task_id = await submit(operator, "echo early-1; echo early-2; sleep 1; echo late",
                               agent="shell")  # fmt: skip
        await receive_until(
            watcher, lambda m: m.get("kind") == "message" and m["text"] == "early-2"
        )
        async with await open_ws(stack.gateway.ws_url, keys[Role.VIEWER]) as late:
            await send(late, {"action": "subscribe", "scope": "task", "id": task_id,
                              "last_event_id": 0})  # fmt: skip
            seen = await receive_until(late, of_type("execution_completed", task_id))
    lines = [m["text"] for m in seen if m.get("kind") == "message"]
    assert lines == ["early-1", "early-2", "late"]


async def test_reconnecting_with_the_last_event_id_gets_exactly_the_missed_events(
    stack: Stack, keys: dict[Role, str], operator: httpx.AsyncClient
) -> None:
    task_id = await submit(operator, "echo one; sleep 1; echo two", agent="shell")
    async with await open_ws(stack.gateway.ws_url, keys[Role.VIEWER]) as ws:
        await send(ws, {"action": "subscribe", "scope": "task", "id": task_id,
                        "last_event_id": 0})  # fmt: skip
        first = await receive_until(ws, lambda m: "event_id" in m)
        last_seen = first[-1]["event_id"]
    await wait_task(operator, task_id, "completed")  # everything after last_seen is missed

    async with await open_ws(stack.gateways[1].ws_url, keys[Role.VIEWER]) as ws:
        await send(ws, {"action": "subscribe", "scope": "task", "id": task_id,
                        "last_event_id": last_seen})  # fmt: skip
        resumed = await receive_until(ws, of_type("subscribed"))
        await send(ws, {"action": "ping"})
        after = await receive_until(ws, of_type("pong"))
    history = (await operator.get(f"/api/v1/tasks/{task_id}/events")).json()["events"]
    missed = [e["notification_id"] for e in history if e["notification_id"] > last_seen]
    got = [m["event_id"] for m in resumed + after if "event_id" in m]
    assert got == missed and missed, "each missed event once, in order, nothing more"
    assert resumed[-1]["replayed"] == len(missed)


async def test_two_gateways_behave_as_one(stack: Stack, keys: dict[Role, str]) -> None:
    one, two = stack.gateways[0], stack.gateways[1]
    async with (
        one.client(keys[Role.OPERATOR]) as via_one,
        two.client(keys[Role.OPERATOR]) as via_two,
        await open_ws(two.ws_url, keys[Role.VIEWER]) as watching_two,
    ):
        await send(watching_two, {"action": "subscribe", "scope": "all"})
        await receive_until(watching_two, of_type("subscribed"))
        task_id = await submit(via_one, "echo across", agent="shell")
        seen_on_two = await receive_until(watching_two, of_type("execution_completed", task_id))
        assert seen_on_two[-1]["output"].strip() == "across"
        assert (await via_two.get(f"/api/v1/tasks/{task_id}")).json()["status"] == "completed"
        name = "via-one"
        spec = {"name": name, "command": ["cat"]}
        assert (await via_one.post("/api/v1/agents", json={"spec": spec})).status_code == 201
        assert (await via_two.post(f"/api/v1/agents/{name}/disable")).status_code == 200
        assert (await via_one.get(f"/api/v1/agents/{name}")).json()["status"] == "disabled"
        statuses = await receive_until(
            watching_two, lambda m: m["type"] == "agent_status" and m["change"] == "AgentDisabled"
        )
        assert statuses[-1]["agent"] == name
        assert (await via_two.delete(f"/api/v1/agents/{name}")).status_code == 200


@pytest.mark.parametrize(
    ("close_timeout_s", "reads_after_s", "close_code"),
    [(None, 0.0, 4008), (1.0, 2.5, None)],
    ids=["reads-in-time-gets-4008", "reads-nothing-is-dropped"],
)
async def test_a_slow_client_is_cut_off_and_does_not_delay_others(
    stack: Stack,
    keys: dict[Role, str],
    operator: httpx.AsyncClient,
    close_timeout_s: float | None,
    reads_after_s: float,
    close_code: int | None,
) -> None:
    """The slow client reads nothing and has a tiny receive buffer: once the socket is full
    its messages pile up in its session's buffer (2000 here) and it is closed with 4008,
    while a client reading normally gets the whole flood and the completion. The buffer
    holds more than one burst: the executor reads the command's output 64 KiB at a time
    (about 900 of these lines), and a busy machine hands a reader that much at once. A
    client that does not read even the close frame within `ws_close_timeout_s` is
    dropped (no close frame: 1006), so it holds nothing on the gateway for ever."""
    env = {
        "WHOOSH__GATEWAY__WS_BUFFER_MESSAGES": "2000",
        "WHOOSH__GATEWAY__SOCKET_SEND_BUFFER_BYTES": "16384",
    }
    if close_timeout_s is not None:
        env["WHOOSH__GATEWAY__WS_CLOSE_TIMEOUT_S"] = str(close_timeout_s)
    small = await stack.start_gateway(env=env)
    try:
        host, port = small.url.removeprefix("http://").split(":")
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((host, int(port)))
        # Uncompressed: permessage-deflate shrinks these alike lines to a few bytes each,
        # and the whole flood would fit in the socket buffers without ever filling a queue.
        slow = await open_ws(
            small.ws_url, keys[Role.VIEWER], max_queue=1, sock=sock, compression=None
        )
        fast = await open_ws(small.ws_url, keys[Role.VIEWER])
        for ws in (slow, fast):
            await send(ws, {"action": "subscribe", "scope": "all"})
            await receive_until(ws, of_type("subscribed"))
        flood = (
            "i=0; while [ $i -lt 8000 ]; do echo line-$i-of-a-flood-long-enough-to-fill-buffers; "
            "i=$((i+1)); [ $((i % 40)) -eq 0 ] && sleep 0.01; done; true"
        )
        task_id = await submit(operator, flood, agent="shell")
        done = await receive_until(fast, of_type("execution_completed", task_id))
        assert sum(1 for m in done if m.get("kind") == "message") > 4000
        await asyncio.sleep(reads_after_s)
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(100_000):
                await receive(slow)
        if close_code is None:
            assert closed.value.rcvd is None, "dropped without a close frame"
        else:
            assert closed.value.rcvd is not None and closed.value.rcvd.code == close_code
            assert "last_event_id" in closed.value.rcvd.reason
        await fast.close()
    finally:
        small.process.stop()
        stack.gateways.remove(small)


async def test_bad_messages_get_an_error_and_the_connection_stays_up(
    stack: Stack, keys: dict[Role, str]
) -> None:
    async with await open_ws(stack.gateway.ws_url, keys[Role.VIEWER]) as ws:
        cases = [
            ("{not json", "invalid_json"),
            ('["a list"]', "invalid"),
            ('{"action": "dance"}', "unknown_action"),
            ('{"action": "subscribe", "scope": "task", "id": "not-a-uuid"}', "invalid"),
            ('{"action": "subscribe", "scope": "task"}', "invalid"),
            ('{"action": "subscribe", "scope": "agent", "id": "ghost"}', "not_found"),
            ('{"action": "subscribe", "scope": "galaxy"}', "invalid"),
            ('{"action": "ping", "extra": 1}', "invalid"),
            ('{"action": "start", "task": {"prompt": "x"}}', "forbidden"),
            ('{"action": "stop", "task_id": "00000000-0000-0000-0000-000000000000"}', "forbidden"),
        ]
        for text, code in cases:
            await ws.send(text)
            answer = await receive(ws)
            assert (answer["type"], answer["code"]) == ("error", code), (text, answer)
            assert answer["message"]
        await ws.send(b"\x00binary")
        assert (await receive(ws))["code"] == "invalid_json"
        await send(ws, {"action": "ping", "request_id": "still-here"})
        assert await receive(ws) == {"type": "pong", "request_id": "still-here"}


async def test_a_socket_without_a_valid_key_is_closed_with_the_reason(stack: Stack) -> None:
    for key in (None, "whk_000000000000_" + "A" * 43):
        async with await open_ws(stack.gateway.ws_url, key) as ws:
            answer = await receive(ws)
            assert (answer["type"], answer["code"]) == ("error", "unauthorized")
            with pytest.raises(ConnectionClosed) as closed:
                await receive(ws)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    async with await open_ws(
        stack.gateway.ws_url.replace("/ws", "/ws?api_key=whk_bad"), None
    ) as ws:
        assert (await receive(ws))["code"] == "unauthorized"


async def test_operator_start_failures_are_errors_on_the_socket(
    stack: Stack, keys: dict[Role, str]
) -> None:
    async with await open_ws(stack.gateway.ws_url, keys[Role.OPERATOR]) as ws:
        await send(ws, {"action": "start", "task": {"prompt": "x", "model": "nope"},
                        "request_id": "m"})  # fmt: skip
        answer = await receive(ws)
        assert (answer["code"], answer["request_id"]) == ("no_capable_agent", "m")
        await send(ws, {"action": "stop", "task_id": "00000000-0000-0000-0000-000000000000"})
        assert (await receive(ws))["code"] == "not_found"
        await asyncio.sleep(0)


async def test_failures_timeouts_and_agent_changes_reach_the_socket(
    stack: Stack, keys: dict[Role, str]
) -> None:
    async with await open_ws(stack.gateway.ws_url, keys[Role.OPERATOR]) as ws:
        await send(ws, {"action": "subscribe", "scope": "agent", "id": "shell"})
        await receive_until(ws, of_type("subscribed"))
        failing = {"prompt": "echo broken; exit 3", "agent": "shell", "retry": {"max_attempts": 1}}
        await send(ws, {"action": "start", "task": failing})
        before = await receive_until(ws, of_type("accepted"))
        failed_id = before[-1]["task_id"]
        failed = await receive_until(ws, of_type("execution_error", failed_id))
        assert failed[-1]["exit_code"] == 3 and failed[-1]["timed_out"] is False
        assert "broken" in failed[-1]["output"]
        slots = [m for m in before + failed if m["type"] == "agent_status"]
        assert slots and slots[0]["agent"] == "shell" and slots[0]["change"] == "AgentSlotTaken"

        slow = {
            "prompt": "sleep 20",
            "agent": "shell",
            "timeout_s": 1,
            "retry": {"max_attempts": 1},
        }
        await send(ws, {"action": "start", "task": slow})
        slow_id = (await receive_until(ws, of_type("accepted")))[-1]["task_id"]
        timed_out = await receive_until(ws, of_type("execution_error", slow_id))
        assert timed_out[-1]["timed_out"] is True and timed_out[-1]["reason"]


async def test_an_agent_subscription_follows_the_executions_given_to_that_agent(
    stack: Stack, keys: dict[Role, str], operator: httpx.AsyncClient
) -> None:
    async with await open_ws(stack.gateway.ws_url, keys[Role.VIEWER]) as ws:
        await send(ws, {"action": "subscribe", "scope": "agent", "id": "shell"})
        await receive_until(ws, of_type("subscribed"))
        task_id = await submit(operator, "echo followed", agent="shell")  # not over the socket
        live = await receive_until(ws, of_type("execution_completed", task_id))
    mine = [m for m in live if m.get("task_id") == task_id]
    assert {"execution_started", "agent_event"} <= {m["type"] for m in mine}
    assert "followed" in mine[-1]["output"]

    # Resuming the agent's scope replays its tasks' events too, on either gateway.
    after = min(m["event_id"] for m in live if "event_id" in m) - 1
    async with await open_ws(stack.gateways[1].ws_url, keys[Role.VIEWER]) as ws:
        await send(ws, {"action": "subscribe", "scope": "agent", "id": "shell",
                        "last_event_id": after})  # fmt: skip
        resumed = await receive_until(ws, of_type("subscribed"))
    stored = [m["event_id"] for m in mine if "event_id" in m]
    assert [m["event_id"] for m in resumed if m.get("task_id") == task_id] == stored
