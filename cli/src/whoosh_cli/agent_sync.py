"""Make the coordinator's agents match the specs in `whoosh.yaml`.

`whoosh up` runs this on every start: a new agent is registered, an existing
one is updated to the file's values and enabled or disabled as the file says,
so editing whoosh.yaml and restarting is how a local fleet is reconfigured.
"""

from __future__ import annotations

from dataclasses import dataclass

from whoosh_shared.contract.agents import AgentSpec, AgentUpdate
from whoosh_shared.contract.commands import (
    CommandReply,
    DisableAgent,
    EnableAgent,
    RegisterAgent,
    RejectCode,
    UpdateAgent,
)
from whoosh_shared.contract.connectivity import FAILED_TEST_CODE
from whoosh_shared.contract.queries import AgentView, GetAgent
from whoosh_shared.runtime.bus import Bus
from whoosh_shared.runtime.connectivity_check import ask_executor

from whoosh_cli.bus_session import ask, send


@dataclass(frozen=True)
class SyncOutcome:
    """What happened to one agent: registered, updated, or rejected (with why)."""

    name: str
    action: str
    ok: bool
    detail: str = ""

    def describe(self) -> str:
        text = f"{self.name}: {self.action}"
        return f"{text} ({self.detail})" if self.detail else text


def update_from_spec(spec: AgentSpec, current: AgentSpec | None = None) -> AgentUpdate:
    """The AgentUpdate that sets each updatable field to the spec's value.

    With `current`, only the fields that differ are included, so restarting `up`
    with an unchanged whoosh.yaml records no new events.
    """
    wanted = spec.model_dump(mode="json", include=set(AgentUpdate.model_fields))
    if current is not None:
        have = current.model_dump(mode="json", include=set(AgentUpdate.model_fields))
        wanted = {key: value for key, value in wanted.items() if have.get(key) != value}
    return AgentUpdate.model_validate(wanted)


async def register_tested(bus: Bus, spec: AgentSpec, actor: str) -> CommandReply:
    """Register an agent once an executor could reach it: a remote CLI agent whose host,
    key, host key or CLI is wrong is refused with that cause instead of registered dead.
    With no executor running to ask, it is registered untested (its periodic check will
    take it out of rotation if it is unreachable)."""
    if spec.ssh_target() is not None:  # the coordinator's rules first: a refused host is not tried
        checked = await send(bus, RegisterAgent(spec=spec, actor=actor, check_only=True))
        if not checked.accepted:
            return checked
    tested = await ask_executor(bus.nc, spec)
    if tested is not None and not tested.ok:
        return CommandReply(
            status="rejected",
            code=FAILED_TEST_CODE,
            reason=f"connectivity test failed: {tested.detail}",
        )
    return await send(bus, RegisterAgent(spec=spec, actor=actor))


async def sync_agent(bus: Bus, spec: AgentSpec, actor: str = "whoosh up") -> SyncOutcome:
    """Register the agent, or bring an existing one in line with the spec."""
    reply = await register_tested(bus, spec, actor)
    if reply.accepted:
        return SyncOutcome(spec.name, "registered", True, _state(spec))
    if reply.code != RejectCode.DUPLICATE.value:
        return SyncOutcome(spec.name, "rejected", False, _why(reply))
    current = await ask(bus, GetAgent(name=spec.name, with_env=True), AgentView)
    update = update_from_spec(spec, current.spec)
    action = "unchanged"
    if update.changes():
        updated = await send(bus, UpdateAgent(name=spec.name, changes=update, actor=actor))
        if not updated.accepted:
            return SyncOutcome(spec.name, "update rejected", False, _why(updated))
        action = "updated"
    if current.enabled != spec.enabled:
        toggle = await set_enabled(bus, spec.name, spec.enabled, actor)
        if not toggle.accepted:
            return SyncOutcome(spec.name, f"{action}, enable/disable rejected", False, _why(toggle))
        action = "updated"
    return SyncOutcome(spec.name, action, True, _detail(spec, current.spec))


def _detail(spec: AgentSpec, current: AgentSpec) -> str:
    """State, plus a warning when the file asks for what an update cannot change."""
    fixed = [f for f in ("type", "cli") if getattr(spec, f) != getattr(current, f)]
    if fixed:
        kept = ", ".join(f"{f} stays {getattr(current, f)}" for f in fixed)
        return f"{_state(spec)}; cannot change in place: {kept}"
    return _state(spec)


async def set_enabled(bus: Bus, name: str, enabled: bool, actor: str) -> CommandReply:
    """Enable or disable; already being in that state counts as success."""
    command = (
        EnableAgent(name=name, actor=actor) if enabled else DisableAgent(name=name, actor=actor)
    )
    reply = await send(bus, command)
    if reply.code == RejectCode.BAD_STATE.value:
        return CommandReply.accept()
    return reply


def _state(spec: AgentSpec) -> str:
    return "enabled" if spec.enabled else "disabled"


def _why(reply: CommandReply) -> str:
    return f"{reply.code}: {reply.reason}"
