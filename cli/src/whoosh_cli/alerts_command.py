"""`whoosh alerts`: the alerts firing now, then the most recently resolved ones."""

from __future__ import annotations

import argparse
from datetime import datetime

from whoosh_shared.contract.alerts import AlertView
from whoosh_shared.contract.queries import ListAlerts

from whoosh_cli.context import CliContext
from whoosh_cli.errors import EXIT_OK
from whoosh_cli.fleet import open_fleet
from whoosh_cli.output import print_json, print_line, print_table, truncate
from whoosh_cli.validation import build

SUMMARY_WIDTH = 70


async def alerts(ctx: CliContext, args: argparse.Namespace) -> int:
    status = "firing" if args.firing else None
    query = build(ListAlerts, "alerts query", status=status, limit=args.limit)
    async with open_fleet(ctx) as fleet:
        found = await fleet.alerts(query)
    if ctx.json:
        print_json(found)
        return EXIT_OK
    if not found.alerts:
        print_line("no alerts firing" if args.firing else "no alerts yet")
        return EXIT_OK
    rows = [_row(alert) for alert in found.alerts]
    print_table(("STATUS", "SEVERITY", "ALERT", "SINCE", "SUMMARY"), rows)
    return EXIT_OK


def _row(alert: AlertView) -> tuple[str, str, str, str, str]:
    if alert.status == "firing":
        when = _when(alert.raised_at)
    else:
        when = f"{_when(alert.raised_at)} - {_when(alert.resolved_at)}"
    return (
        alert.status,
        alert.severity.value,
        alert.fingerprint,
        when,
        truncate(alert.summary, SUMMARY_WIDTH),
    )


def _when(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else "-"
