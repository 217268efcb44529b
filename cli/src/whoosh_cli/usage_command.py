"""`whoosh budget usage`: tokens, cost and agent time per key, agent and model since the
store began (the report the dashboard's budgets page and `GET /api/v1/usage` show)."""

from __future__ import annotations

import argparse

from whoosh_shared.contract.usage import UsageRow

from whoosh_cli.collab_client import open_collab
from whoosh_cli.context import CliContext
from whoosh_cli.errors import EXIT_OK
from whoosh_cli.output import print_json, print_line, print_table

COLUMNS = ("TASKS", "TOKENS IN", "TOKENS OUT", "USD", "AGENT TIME")


async def budget_usage(ctx: CliContext, args: argparse.Namespace) -> int:
    async with open_collab(ctx) as collab:
        report = await collab.usage()
    if ctx.json:
        print_json(report)
        return EXIT_OK
    total = report.total
    since = report.since.isoformat(timespec="seconds") if report.since else "the start"
    print_line(
        f"since {since}: {total.tasks} tasks, {total.tokens_in} tokens in, "
        f"{total.tokens_out} out, ${total.cost_usd:.4f}, {total.duration_s:.1f} s"
    )
    for title, rows in (("KEY", report.by_key), ("AGENT", report.by_agent),
                        ("MODEL", report.by_model)):  # fmt: skip
        print_line("")
        print_table((title, *COLUMNS), [_cells(r) for r in rows])
    return EXIT_OK


def _cells(row: UsageRow) -> tuple[str, ...]:
    return (
        row.name, str(row.tasks), str(row.tokens_in), str(row.tokens_out),
        f"{row.cost_usd:.4f}", f"{row.duration_s:.1f}s",
    )  # fmt: skip
