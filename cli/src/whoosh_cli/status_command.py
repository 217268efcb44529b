"""`whoosh status`: is WHOOSH up, and what is it doing, in a few lines.

Over the gateway it is one plain GET (see quick_gateway) read as JSON: no httpx, no
query models, so that it starts within its 300 ms goal (benchmarks/bench_cli_startup.py).
Over NATS (`--nats`, or no gateway) it asks the coordinator as the other commands do.
"""

from __future__ import annotations

import argparse
from typing import Any

from whoosh_shared.contract.enums import TaskStatus

from whoosh_cli.context import CliContext
from whoosh_cli.errors import EXIT_FAILURE, EXIT_OK, CliError
from whoosh_cli.output import print_json, print_line


async def status(ctx: CliContext, args: argparse.Namespace) -> int:
    if ctx.uses_gateway:
        from whoosh_cli.quick_gateway import get_json

        url = ctx.gateway_url()
        stats = _checked(get_json(url, ctx.api_key(), "/stats"))
    else:
        from whoosh_cli.fleet import open_fleet

        async with open_fleet(ctx) as fleet:
            stats = (await fleet.stats()).model_dump(mode="json")
            url = fleet.where
    if ctx.json:
        via = "gateway_url" if ctx.uses_gateway else "nats_url"
        print_json({"cluster": ctx.config.cluster.name, via: url, **stats})
        return EXIT_OK
    by_status = stats["tasks_by_status"]
    counts = ", ".join(
        f"{by_status.get(s.value, 0)} {s.value.replace('_', ' ')}" for s in TaskStatus
    )
    print_line(f"{ctx.config.cluster.name}: up at {url}")
    print_line(f"  agents    {stats['agents_enabled']} enabled of {stats['agents']}")
    print_line(f"  in flight {stats['in_flight']}")
    print_line(f"  tasks     {counts}")
    print_line(f"  position  {stats['position']} (events folded into the projections)")
    for name, why in stats["down"].items():
        print_line(f"  DOWN      {name}: {why}")
    return EXIT_FAILURE if stats["down"] else EXIT_OK


def _checked(answer: Any) -> dict[str, Any]:
    """The fields status prints, present and of the right kind (FleetStats' shape)."""
    ints = ("agents", "agents_enabled", "in_flight", "position")
    if (
        not isinstance(answer, dict)
        or not all(isinstance(answer.get(k), int) for k in ints)
        or not isinstance(answer.get("tasks_by_status"), dict)
    ):
        raise CliError("unexpected answer from the gateway to /stats: not the fleet's stats")
    answer.setdefault("down", {})
    if not isinstance(answer["down"], dict):
        raise CliError("unexpected answer from the gateway to /stats: 'down' is not a map")
    return answer
