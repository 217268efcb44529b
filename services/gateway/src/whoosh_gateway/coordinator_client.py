"""The gateway's only way to the coordinator: commands and queries over the bus.

A rejection becomes an ApiError with the coordinator's code and reason; a coordinator
that does not answer becomes 503 `unavailable`, so a client can tell "you asked for
something wrong" from "try again later".
"""

from __future__ import annotations

from typing import TypeVar

import nats.errors
from pydantic import BaseModel, ValidationError
from whoosh_shared.contract.commands import Command, CommandReply, SubmitTask
from whoosh_shared.contract.limits import LimitSettings
from whoosh_shared.contract.queries import Query
from whoosh_shared.runtime.bus import Bus, BusError

from whoosh_gateway.errors import ApiError
from whoosh_gateway.submit_size import by_reference

ResultT = TypeVar("ResultT", bound=BaseModel)


class CoordinatorClient:
    def __init__(self, bus: Bus, timeout_s: float, limits: LimitSettings | None = None) -> None:
        self.bus = bus
        self.timeout_s = timeout_s
        self.limits = limits or LimitSettings()

    async def send(self, command: Command) -> CommandReply:
        """The accepted reply; a rejection raises ApiError. A task's prompt is held to the
        size policy here, the one door every submit of this gateway passes."""
        if isinstance(command, SubmitTask):
            command = await by_reference(command, self.bus, self.limits)
        try:
            reply = await self.bus.send(command, timeout=self.timeout_s)
        except (BusError, nats.errors.Error) as exc:
            raise ApiError(503, "unavailable", f"the coordinator did not answer: {exc}") from None
        if not reply.accepted:
            raise ApiError.from_code(reply.code, reply.reason)
        return reply

    async def ask(self, query: Query, result_model: type[ResultT]) -> ResultT:
        try:
            reply = await self.bus.ask(query, timeout=self.timeout_s)
        except (BusError, nats.errors.Error) as exc:
            raise ApiError(503, "unavailable", f"the coordinator did not answer: {exc}") from None
        if reply.status != "ok" or reply.result is None:
            raise ApiError.from_code(reply.code, reply.reason)
        try:
            return result_model.model_validate(reply.result)
        except ValidationError as exc:
            raise ApiError(
                502, "bad_gateway", f"unexpected answer to {type(query).__name__}: {exc}"
            ) from None
