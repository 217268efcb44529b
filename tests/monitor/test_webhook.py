"""Webhook delivery to a loopback HTTP server: retries bounded, failures final or counted,
and a hanging or failing webhook never holds up whoever submits."""

from __future__ import annotations

import asyncio

import httpx
from monitor.webhook_receiver import WebhookReceiver
from whoosh_monitor.webhook import WebhookSender
from whoosh_shared.contract.alerts import WebhookSettings


async def no_sleep(_: float) -> None:
    pass


def sender(url: str, **settings: float) -> tuple[WebhookSender, list[str], httpx.AsyncClient]:
    outcomes: list[str] = []
    http = httpx.AsyncClient()
    hook = WebhookSettings(url=url, **settings)  # type: ignore[arg-type]
    return WebhookSender(hook, http, outcomes.append, sleep=no_sleep), outcomes, http


async def test_an_alert_is_posted_as_json() -> None:
    with WebhookReceiver() as receiver:
        hook, _, http = sender(receiver.url)
        assert await hook.deliver({"status": "firing", "alert": {"rule": "X"}}) == "delivered"
        await http.aclose()
    assert receiver.received == [{"status": "firing", "alert": {"rule": "X"}}]


async def test_500s_are_retried_a_bounded_number_of_times() -> None:
    with WebhookReceiver([500, 503, 200]) as receiver:
        hook, _, http = sender(receiver.url, retries=3)
        assert await hook.deliver({"n": 1}) == "delivered"
        assert receiver.tries == 3
    with WebhookReceiver([500] * 10) as receiver:
        hook, _, http = sender(receiver.url, retries=2)
        assert await hook.deliver({"n": 2}) == "failed"
        assert receiver.tries == 3  # one try and two retries, then it gives up
        await http.aclose()


async def test_a_4xx_is_final_and_a_429_is_retried() -> None:
    with WebhookReceiver([404, 429, 200]) as receiver:
        hook, _, http = sender(receiver.url)
        assert await hook.deliver({"n": 1}) == "rejected"
        assert await hook.deliver({"n": 2}) == "delivered"
        assert receiver.tries == 3
        await http.aclose()


async def test_a_hanging_webhook_is_cut_off_by_the_timeout() -> None:
    with WebhookReceiver(["hang", "hang"]) as receiver:
        receiver.hang_s = 3
        hook, _, http = sender(receiver.url, timeout_s=0.2, retries=1)
        assert await hook.deliver({"n": 1}) == "failed"
        await http.aclose()


async def test_an_unreachable_webhook_fails_after_its_retries() -> None:
    hook, _, http = sender("http://127.0.0.1:1/hook", retries=2)
    assert await hook.deliver({"n": 1}) == "failed"
    await http.aclose()


async def test_submitting_never_waits_and_a_full_queue_drops_the_oldest() -> None:
    with WebhookReceiver(["hang"] * 3) as receiver:
        receiver.hang_s = 2
        outcomes: list[str] = []
        http = httpx.AsyncClient()
        hook = WebhookSender(
            WebhookSettings(url=receiver.url, timeout_s=0.3, retries=0),
            http,
            outcomes.append,
            sleep=no_sleep,
            queue_size=2,
        )
        worker = asyncio.create_task(hook.run())
        for n in range(5):
            hook.submit({"n": n})  # returns at once, whatever the webhook does
        await asyncio.sleep(0)
        assert outcomes.count("dropped") >= 2
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        await http.aclose()
