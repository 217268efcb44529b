"""`whoosh agent list|add|enable|disable|remove|weight`: the fleet, through the gateway
(or NATS)."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml
from whoosh_shared.contract.agents import AgentSpec
from whoosh_shared.contract.commands import DisableAgent, EnableAgent, RemoveAgent, SetAgentWeight
from whoosh_shared.contract.config import ConfigError, parse_config_text
from whoosh_shared.contract.inventory import model_key
from whoosh_shared.contract.queries import AgentList, AgentView

from whoosh_cli.context import CliContext
from whoosh_cli.errors import EXIT_FAILURE, EXIT_OK, CliError, UsageError
from whoosh_cli.fleet import Fleet, WriteResult, open_fleet
from whoosh_cli.output import error, print_json, print_line, print_table
from whoosh_cli.validation import build


async def agent_list(ctx: CliContext, args: argparse.Namespace) -> int:
    async with open_fleet(ctx) as fleet:
        agents = AgentList(agents=await fleet.agents())
    if ctx.json:
        print_json(agents)
        return EXIT_OK
    rows = [_agent_row(a) for a in sorted(agents.agents, key=lambda a: a.spec.name)]
    header = (
        "NAME",
        "TYPE",
        "MODEL",
        "CAPABILITIES",
        "ENABLED",
        "HEALTHY",
        "LOAD",
        "SERVER",
        "TOK/S",
    )
    print_table(header, rows)
    return EXIT_OK


def _agent_row(agent: AgentView) -> tuple[Any, ...]:
    spec = agent.spec
    caps = ",".join(
        name if level >= 1.0 else f"{name}={level:g}" for name, level in spec.capabilities.items()
    )
    return (
        spec.name,
        spec.type.value,
        spec.model,
        caps or "-",
        agent.enabled,
        agent.healthy,  # the monitor's verdict; the reason is in --json (health_reason)
        f"{agent.load}/{spec.max_concurrent}",
        _server(agent) + _host_key_warning(agent),
        _decode_speed(agent),
    )


def _server(agent: AgentView) -> str:
    """What the last probe of an LLM agent's server found, in a few words."""
    inventory = agent.inventory
    if inventory is None:
        return "-" if agent.spec.type.value == "cli" else "not probed yet"
    if not inventory.reachable:
        return f"down: {inventory.reason or 'unreachable'}"[:60]
    if agent.spec.type.value == "cli":  # a remote CLI agent's host check
        return f"up ({inventory.version})"[:60] if inventory.version else "up"
    warm = f", {len(inventory.loaded)} loaded" if inventory.loaded else ""
    missing = f", lacks {','.join(agent.missing_models)}" if agent.missing_models else ""
    return f"up ({len(inventory.models)} models{warm}){missing}"


def _host_key_warning(agent: AgentView) -> str:
    """Turning off host key checks is explicit, and the listing never lets it go unseen."""
    ssh = agent.spec.ssh
    return " [host key NOT checked]" if ssh and ssh.insecure_skip_host_key_check else ""


def _decode_speed(agent: AgentView) -> str:
    """Measured decode tokens/s of the agent's own model (moving average)."""
    stats = agent.speeds.get(model_key(agent.spec.model)) if agent.spec.model else None
    return f"{stats.decode_tps:.0f}" if stats else "-"


def parse_capabilities(values: list[str] | None) -> dict[str, float]:
    """`--capability python` (full proficiency) or `--capability python=0.8`."""
    found: dict[str, float] = {}
    for value in values or []:
        name, _, level = value.partition("=")
        try:
            found[name.strip()] = float(level) if level else 1.0
        except ValueError:
            raise UsageError(f"--capability {value!r}: proficiency must be a number 0..1") from None
    return found


def specs_from_args(args: argparse.Namespace) -> list[AgentSpec]:
    """The agents `agent add` should register: from --file, or from NAME and flags."""
    if args.file:
        return specs_from_file(Path(args.file), args.name)
    if not args.name:
        raise UsageError("agent add needs a NAME (or --file spec.yaml)")
    fields: dict[str, Any] = {"name": args.name, "type": args.type}
    optional = {
        "command": args.command,
        "endpoint": args.endpoint,
        "host": args.host,
        "model": args.model,
        "specialization": args.specialization,
        "cli": args.cli,
        "max_concurrent": args.max_concurrent,
    }
    fields.update({key: value for key, value in optional.items() if value is not None})
    if args.capability:
        fields["capabilities"] = parse_capabilities(args.capability)
    if args.disabled:
        fields["enabled"] = False
    return [build(AgentSpec, f"agent {args.name!r}", **fields)]


def specs_from_file(path: Path, name: str | None) -> list[AgentSpec]:
    """A file with one agent spec, or a whoosh.yaml-style file with an `agents:` section."""
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UsageError(f"{path}:{where}: malformed YAML") from None
    if isinstance(data, dict) and ("agents" in data or "whoosh" in data):
        try:
            agents = list(parse_config_text(text, str(path)).agents.values())
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
        return [a for a in agents if name is None or a.name == name]
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected an agent spec (a mapping)")
    fields = {**data, **({"name": name} if name else {})}
    return [build(AgentSpec, f"agent spec in {path}", **fields)]


async def agent_add(ctx: CliContext, args: argparse.Namespace) -> int:
    specs = specs_from_args(args)
    if not specs:
        raise UsageError(f"no agent named {args.name!r} in {args.file}")
    results: list[tuple[AgentSpec, WriteResult]] = []
    async with open_fleet(ctx) as fleet:
        for spec in specs:
            results.append((spec, await fleet.register(spec)))
    if ctx.json:
        print_json([{"agent": s.name, **r.as_json()} for s, r in results])
    failed = 0
    for spec, result in results:
        if result.ok:
            if not ctx.json:
                print_line(f"registered agent {spec.name}")
        else:
            failed += 1
            error(f"agent {spec.name} rejected ({result.code}): {result.reason}")
    return EXIT_FAILURE if failed else EXIT_OK


async def agent_enable(ctx: CliContext, args: argparse.Namespace) -> int:
    name = build(EnableAgent, "agent name", name=args.name).name
    return await _write(ctx, name, "enabled", lambda fleet: fleet.set_enabled(name, True))


async def agent_disable(ctx: CliContext, args: argparse.Namespace) -> int:
    name = build(DisableAgent, "agent name", name=args.name).name
    return await _write(ctx, name, "disabled", lambda fleet: fleet.set_enabled(name, False))


async def agent_remove(ctx: CliContext, args: argparse.Namespace) -> int:
    name = build(RemoveAgent, "agent name", name=args.name).name
    return await _write(ctx, name, "removed", lambda fleet: fleet.remove(name))


async def agent_weight(ctx: CliContext, args: argparse.Namespace) -> int:
    """Its share of new work among free eligible agents; 0 drains it (what runs finishes)."""
    command = build(SetAgentWeight, "agent weight", name=args.name, weight=args.weight)
    async with open_fleet(ctx) as fleet:
        result = await fleet.set_weight(command.name, command.weight)
    if ctx.json:
        print_json(result.as_json())
    if not result.ok:
        raise CliError(f"weight of {command.name} rejected ({result.code}): {result.reason}")
    if not ctx.json:
        drain = " (draining: no new work; running work finishes)" if command.weight == 0 else ""
        print_line(f"agent {command.name}: weight {command.weight}{drain}")
    return EXIT_OK


async def _write(
    ctx: CliContext, name: str, done: str, write: Callable[[Fleet], Awaitable[WriteResult]]
) -> int:
    async with open_fleet(ctx) as fleet:
        result = await write(fleet)
    if ctx.json:
        print_json(result.as_json())
    if not result.ok:
        raise CliError(f"{done.removesuffix('d')} {name} rejected ({result.code}): {result.reason}")
    if not ctx.json:
        print_line(f"{done} agent {name}")
    return EXIT_OK
