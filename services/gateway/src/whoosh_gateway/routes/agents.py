"""`/api/v1/agents`: the fleet, read from the coordinator's projection, changed by commands."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from whoosh_shared.contract import commands as c
from whoosh_shared.contract.agents import NAME_PATTERN, AgentName, AgentUpdate, Strict, Weight
from whoosh_shared.contract.connectivity import FAILED_TEST_CODE
from whoosh_shared.contract.queries import AgentList, AgentView, GetAgent, ListAgents

from whoosh_gateway.access import Operator, Viewer
from whoosh_gateway.api_models import (
    AgentOut,
    AgentPage,
    AgentRegistration,
    AgentRemoved,
    AgentWritten,
    agent_out,
)
from whoosh_gateway.callers import Caller
from whoosh_gateway.connectivity_probe import probe_connectivity
from whoosh_gateway.errors import ERROR_RESPONSES, ApiError
from whoosh_gateway.gateway_state import state_of

router = APIRouter(prefix="/agents", tags=["agents"], responses=ERROR_RESPONSES)
NamePath = Annotated[str, Path(pattern=NAME_PATTERN, description="the agent's name")]
READ_BACK_TRIES = 20


@router.get("", response_model=AgentPage, summary="Agents with live status and load")
async def list_agents(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[AgentName | None, Query(description="next_cursor of the last page")] = None,
    caller: Caller = Viewer,
) -> AgentPage:
    fleet = await state_of(request).coordinator.ask(ListAgents(), AgentList)
    agents = sorted(fleet.agents, key=lambda a: a.spec.name)
    if cursor is not None:
        agents = [a for a in agents if a.spec.name > cursor]
    page = agents[:limit]
    more = len(agents) > limit
    return AgentPage(
        items=[agent_out(a) for a in page], next_cursor=page[-1].spec.name if more else None
    )


@router.get("/{name}", response_model=AgentOut, summary="One agent")
async def get_agent(request: Request, name: NamePath, caller: Caller = Viewer) -> AgentOut:
    view = await state_of(request).coordinator.ask(GetAgent(name=name), AgentView)
    return agent_out(view)


@router.post("", status_code=201, response_model=AgentWritten, summary="Register an agent")
async def register_agent(
    request: Request, body: AgentRegistration, caller: Caller = Operator
) -> AgentWritten:
    state = state_of(request)
    connectivity = None
    if body.test_connectivity:  # the coordinator's rules first: a refused agent is not tried
        await state.coordinator.send(
            c.RegisterAgent(spec=body.spec, actor=caller.actor, role=caller.role, check_only=True)
        )
        connectivity = await probe_connectivity(state.bus, body.spec)
        if connectivity.ok is False:
            raise ApiError(
                422,
                FAILED_TEST_CODE,
                f"agent '{body.spec.name}' cannot be reached: {connectivity.detail}",
            )
    await state.coordinator.send(
        c.RegisterAgent(spec=body.spec, actor=caller.actor, role=caller.role)
    )
    return AgentWritten(agent=await _read_back(request, body.spec.name), connectivity=connectivity)


@router.patch("/{name}", response_model=AgentWritten, summary="Change an agent's definition")
async def update_agent(
    request: Request, name: NamePath, changes: AgentUpdate, caller: Caller = Operator
) -> AgentWritten:
    await state_of(request).coordinator.send(
        c.UpdateAgent(name=name, changes=changes, actor=caller.actor, role=caller.role)
    )
    return AgentWritten(agent=await _read_back(request, name))


@router.post("/{name}/enable", response_model=AgentWritten, summary="Give an agent work again")
async def enable_agent(request: Request, name: NamePath, caller: Caller = Operator) -> AgentWritten:
    await state_of(request).coordinator.send(c.EnableAgent(name=name, actor=caller.actor))
    return AgentWritten(agent=await _read_back(request, name))


@router.post("/{name}/disable", response_model=AgentWritten, summary="Stop new work at once")
async def disable_agent(
    request: Request, name: NamePath, caller: Caller = Operator
) -> AgentWritten:
    await state_of(request).coordinator.send(c.DisableAgent(name=name, actor=caller.actor))
    return AgentWritten(agent=await _read_back(request, name))


class WeightChange(Strict):
    weight: Weight


@router.put(
    "/{name}/weight",
    response_model=AgentWritten,
    summary="Set an agent's traffic weight (0..100; 0 drains it)",
)
async def set_agent_weight(
    request: Request, name: NamePath, body: WeightChange, caller: Caller = Operator
) -> AgentWritten:
    """Its share of new work among free eligible agents; recorded as AgentWeightChanged."""
    await state_of(request).coordinator.send(
        c.SetAgentWeight(name=name, weight=body.weight, actor=caller.actor)
    )
    return AgentWritten(agent=await _read_back(request, name))


@router.delete("/{name}", response_model=AgentRemoved, summary="Remove an agent (no work held)")
async def remove_agent(request: Request, name: NamePath, caller: Caller = Operator) -> AgentRemoved:
    await state_of(request).coordinator.send(c.RemoveAgent(name=name, actor=caller.actor))
    return AgentRemoved(name=name)


async def _read_back(request: Request, name: str) -> AgentOut:
    """The agent after a write. With several coordinators the one answering may fold the
    write a moment later than the one that decided it, so a miss is retried briefly."""
    coordinator = state_of(request).coordinator
    for _ in range(READ_BACK_TRIES - 1):
        try:
            return agent_out(await coordinator.ask(GetAgent(name=name), AgentView))
        except ApiError as exc:
            if exc.code != "not_found":
                raise
        await asyncio.sleep(0.05)
    return agent_out(await coordinator.ask(GetAgent(name=name), AgentView))
