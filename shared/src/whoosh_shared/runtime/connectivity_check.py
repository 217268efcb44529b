"""Asking an executor for the connectivity test (whoosh_shared.contract.connectivity)."""

from __future__ import annotations

import nats.errors
from nats.aio.client import Client
from pydantic import ValidationError

from whoosh_shared.contract import subjects
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.connectivity import ProbeAgent, ProbeReply
from whoosh_shared.contract.enums import WORK_TOKEN, AgentType


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
