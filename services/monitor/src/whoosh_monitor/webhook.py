"""Alert notifications POSTed to a webhook, off the evaluation path.

`submit` only queues (bounded: when full, the oldest waiting notification is dropped and
counted), so a webhook that hangs or fails never delays rule evaluation. One worker
delivers in order: each try is bounded by `timeout_s`; a timeout, a connection error, a
5xx or a 429 is retried up to `retries` times with doubling backoff; any other 4xx is
final (retrying the same body would not help). Outcomes are counted, and logged once
per kind of failure until a delivery succeeds again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from whoosh_shared.contract.alerts import WebhookSettings

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000
Outcome = str  # delivered | rejected | failed | dropped


class WebhookSender:
    def __init__(
        self,
        settings: WebhookSettings,
        http: httpx.AsyncClient,
        on_outcome: Callable[[Outcome], None] = lambda _: None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        self.settings = settings
        self.http = http
        self.on_outcome = on_outcome
        self.sleep = sleep
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=queue_size)
        self._complained = False

    def submit(self, payload: dict[str, Any]) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.on_outcome("dropped")
        self.queue.put_nowait(payload)

    async def run(self) -> None:
        while True:
            payload = await self.queue.get()
            self.on_outcome(await self.deliver(payload))

    async def deliver(self, payload: dict[str, Any]) -> Outcome:
        s = self.settings
        problem = ""
        for attempt in range(s.retries + 1):
            if attempt:
                await self.sleep(s.backoff_s * 2 ** (attempt - 1))
            try:
                async with asyncio.timeout(s.timeout_s):
                    response = await self.http.post(s.url, json=payload, headers=s.headers)
            except TimeoutError:
                problem = f"no answer within {s.timeout_s:g}s"
                continue
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
                continue
            if response.is_success:
                self._complained = False
                return "delivered"
            problem = f"HTTP {response.status_code}"
            if response.status_code < 500 and response.status_code != 429:
                self._complain(f"webhook refused the alert ({problem}); not retried")
                return "rejected"
        self._complain(f"webhook not reached after {s.retries + 1} tries: {problem}")
        return "failed"

    def _complain(self, message: str) -> None:
        if self._complained:
            log.debug(message)
            return
        self._complained = True
        log.warning(message + " (further failures are not logged until one succeeds)")
