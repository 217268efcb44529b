"""Agent commands: register (again, after removal), update, enable, disable, remove, and
the executors' and monitor's reports about an agent (inventory, health).

Functions of the CommandHandler (registered in its dispatch table): load the Agent, let
it decide, save only when something happened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import ValidationError
from whoosh_shared.contract import commands as c
from whoosh_shared.contract.agent_policy import PolicyRefusal, check_definition, merged_spec
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.api_keys import Role
from whoosh_shared.contract.commands import CommandReply, RejectCode
from whoosh_shared.contract.enums import TaskStatus

from whoosh_coordinator.agents.domain import Agent, agent_id
from whoosh_coordinator.rejection import Rejected

if TYPE_CHECKING:
    from whoosh_coordinator.commands import CommandHandler


def check_policy(
    handler: CommandHandler, spec: AgentSpec, role: Role | None, changed: list[str] | None = None
) -> None:
    """Who may define this agent, and where it may point (whoosh_shared.contract.agent_policy)."""
    try:
        check_definition(spec, role, handler.security, changed)
    except PolicyRefusal as refusal:
        raise Rejected(RejectCode.FORBIDDEN, str(refusal)) from None


def register_agent(handler: CommandHandler, cmd: c.RegisterAgent) -> CommandReply:
    spec = cmd.spec
    check_policy(handler, spec, cmd.role)
    if agent_id(spec.name) in handler.store.repository:
        agent = handler.aggregates.get(agent_id(spec.name))
        if not agent.removed:
            raise Rejected(RejectCode.DUPLICATE, f"agent '{spec.name}' already exists")
        if cmd.check_only:
            return CommandReply.accept(name=spec.name, checked="true")
        agent.reregister(spec=spec.model_dump(mode="json"), actor=cmd.actor)
    elif cmd.check_only:
        return CommandReply.accept(name=spec.name, checked="true")
    else:
        agent = Agent(spec=spec.model_dump(mode="json"), actor=cmd.actor)
    handler.save(agent)
    return CommandReply.accept(agent_id=str(agent.id), name=spec.name)


def update_agent(handler: CommandHandler, cmd: c.UpdateAgent) -> CommandReply:
    changes = cmd.changes.changes()
    if not changes:
        raise Rejected(RejectCode.INVALID, "update names no field to change")
    weight = changes.pop("weight", None)
    agent = handler.load_agent(cmd.name)
    if changes:
        try:
            after = merged_spec(agent.spec, changes)
        except ValidationError as exc:
            raise Rejected(RejectCode.INVALID, f"update leaves an invalid agent: {exc}") from None
        check_policy(handler, after, cmd.role, list(changes))
        agent.update(changes=changes, actor=cmd.actor)
    if weight is not None:  # its own event, so every weight change reads the same in history
        agent.set_weight(weight, cmd.actor)
    handler.save(agent)
    return CommandReply.accept(agent_id=str(agent.id), name=cmd.name)


def set_agent_weight(handler: CommandHandler, cmd: c.SetAgentWeight) -> CommandReply:
    agent = handler.load_agent(cmd.name)
    if agent.set_weight(cmd.weight, cmd.actor):
        handler.save(agent)
    return CommandReply.accept(agent_id=str(agent.id), name=cmd.name)


def enable_agent(handler: CommandHandler, cmd: c.EnableAgent) -> CommandReply:
    agent = handler.load_agent(cmd.name)
    agent.enable(actor=cmd.actor)
    handler.save(agent)
    return CommandReply.accept(agent_id=str(agent.id), name=cmd.name)


def disable_agent(handler: CommandHandler, cmd: c.DisableAgent) -> CommandReply:
    agent = handler.load_agent(cmd.name)
    agent.disable(actor=cmd.actor)
    handler.save(agent)
    return CommandReply.accept(agent_id=str(agent.id), name=cmd.name)


def remove_agent(handler: CommandHandler, cmd: c.RemoveAgent) -> CommandReply:
    agent = handler.load_agent(cmd.name)
    pinned = [
        t for t in handler.projection.with_status(TaskStatus.QUEUED) if t.pinned_agent == cmd.name
    ]
    if pinned:
        raise Rejected(
            RejectCode.BAD_STATE,
            f"agent '{cmd.name}' has {len(pinned)} queued task(s) pinned to it "
            f"(e.g. {pinned[0].id}); cancel them first",
        )
    agent.remove(actor=cmd.actor)
    handler.save(agent)
    return CommandReply.accept(agent_id=str(agent.id), name=cmd.name)


def report_inventory(handler: CommandHandler, cmd: c.ReportInventory) -> CommandReply:
    agent = handler.load_agent(cmd.name)
    if agent.report_inventory(cmd.inventory.model_dump(mode="json"), cmd.seen_version):
        handler.save(agent)
    return CommandReply.accept(agent_id=str(agent.id), name=cmd.name)


def report_health(handler: CommandHandler, cmd: c.ReportAgentHealth) -> CommandReply:
    agent = handler.load_agent(cmd.name)
    if agent.report_health(cmd.healthy, cmd.reason, cmd.actor):
        handler.save(agent)
    return CommandReply.accept(agent_id=str(agent.id), name=cmd.name)
