"""The connectivity test before an agent is registered, asked of an executor.

Only an executor can tell whether it can reach an agent (a remote CLI agent's SSH host,
its CLI): the gateway asks one of the agent's type on `whoosh.probe.<type>` and refuses
the registration with the executor's reason when the test fails.
"""

from __future__ import annotations

import nats.errors
from nats.aio.client import Client
from pydantic import Field, ValidationError

from whoosh_shared.contract import subjects
from whoosh_shared.contract.agents import AgentSpec, Strict
from whoosh_shared.contract.enums import WORK_TOKEN, AgentType

FAILED_TEST_CODE = "connectivity"  # CommandReply.code of a registration refused by the test


class ProbeAgent(Strict):
    spec: AgentSpec


class ProbeReply(Strict):
    ok: bool
    detail: str = Field(default="", max_length=4000, description="what was found, or why not")


async def ask_executor(nc: Client, spec: AgentSpec, timeout: float = 30.0) -> ProbeReply | None:
    """An executor's connectivity test of a remote CLI agent; None when there is nothing to
    test (a local or LLM agent) or no executor answers (the caller decides what then)."""
    if spec.type is not AgentType.CLI or spec.ssh_target() is None:
        return None
    request = ProbeAgent(spec=spec).model_dump_json().encode()
    try:
        msg = await nc.request(subjects.probe(WORK_TOKEN[spec.type]), request, timeout=timeout)
        return ProbeReply.model_validate_json(msg.data)
    except nats.errors.NoRespondersError:
        return None
    except nats.errors.TimeoutError:
        return ProbeReply(ok=False, detail=f"no answer to the connectivity test in {timeout:g}s")
    except ValidationError as exc:
        return ProbeReply(ok=False, detail=f"unreadable connectivity answer: {exc.errors()[0]}")
