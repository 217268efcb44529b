"""Before registering an agent, ask an executor of its type whether it can reach it.

Only remote CLI agents (a `host`) have something to test before their first task: an
SSH host, a key, a CLI on the path. A local CLI agent runs where the executor runs, and
LLM servers are probed by executor-ollama every few seconds after registration anyway.
When no executor answers probes, the registration goes ahead and says it was untested.
"""

from __future__ import annotations

from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.enums import AgentType
from whoosh_shared.runtime.bus import Bus
from whoosh_shared.runtime.connectivity_check import ask_executor

from whoosh_gateway.api_models import ConnectivityResult

PROBE_TIMEOUT_S = 30.0


async def probe_connectivity(bus: Bus, spec: AgentSpec) -> ConnectivityResult:
    if spec.type is not AgentType.CLI:
        return ConnectivityResult(
            tested=False, detail="LLM servers are probed by executor-ollama once registered"
        )
    if not spec.host:
        return ConnectivityResult(tested=False, detail="a local agent: nothing to reach")
    tested = await ask_executor(bus.nc, spec, timeout=PROBE_TIMEOUT_S)
    if tested is None:
        return ConnectivityResult(tested=False, detail="no executor answers connectivity tests")
    return ConnectivityResult(tested=True, ok=tested.ok, detail=tested.detail)
