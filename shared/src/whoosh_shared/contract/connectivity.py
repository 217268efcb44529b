"""The connectivity test before an agent is registered, asked of an executor.

Only an executor can tell whether it can reach an agent (a remote CLI agent's SSH host,
its CLI): the gateway asks one of the agent's type on `whoosh.probe.<type>` and refuses
the registration with the executor's reason when the test fails.
"""

from __future__ import annotations

from pydantic import Field

from whoosh_shared.contract.agents import AgentSpec, Strict

FAILED_TEST_CODE = "connectivity"  # CommandReply.code of a registration refused by the test


class ProbeAgent(Strict):
    spec: AgentSpec


class ProbeReply(Strict):
    ok: bool
    detail: str = Field(default="", max_length=4000, description="what was found, or why not")
