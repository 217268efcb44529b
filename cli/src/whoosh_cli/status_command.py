"""`whoosh status`: is WHOOSH up, and what is it doing, in a few lines."""

from __future__ import annotations

import argparse

from whoosh_shared.contract.enums import TaskStatus

from whoosh_cli.context import CliContext
from whoosh_cli.errors import EXIT_FAILURE, EXIT_OK
from whoosh_cli.fleet import open_fleet
from whoosh_cli.output import print_json, print_line


async def status(ctx: CliContext, args: argparse.Namespace) -> int:
    async with open_fleet(ctx) as fleet:
        stats = await fleet.stats()
        url = fleet.where
    if ctx.json:
        via = "gateway_url" if ctx.uses_gateway else "nats_url"
        print_json({"cluster": ctx.config.cluster.name, via: url, **stats.model_dump(mode="json")})
        return EXIT_OK
    counts = ", ".join(
        f"{stats.tasks_by_status.get(s.value, 0)} {s.value.replace('_', ' ')}" for s in TaskStatus
    )
    print_line(f"{ctx.config.cluster.name}: up at {url}")
    print_line(f"  agents    {stats.agents_enabled} enabled of {stats.agents}")
    print_line(f"  in flight {stats.in_flight}")
    print_line(f"  tasks     {counts}")
    print_line(f"  position  {stats.position} (events folded into the projections)")
    for name, why in stats.down.items():
        print_line(f"  DOWN      {name}: {why}")
    return EXIT_FAILURE if stats.down else EXIT_OK
