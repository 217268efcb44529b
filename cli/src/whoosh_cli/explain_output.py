"""`whoosh task get ID --explain`: the scheduler's verdict per agent, as a table."""

from __future__ import annotations

from whoosh_shared.contract.explain import TaskExplanation

from whoosh_cli.output import print_line, print_table


def print_explanation(found: TaskExplanation) -> None:
    """What decides first (one line), then every agent: candidate or the rule that excludes
    it, with load, weight and the estimate the scheduler compares."""
    needs = {k: v for k, v in found.needs.items() if v not in (None, [], 0)}
    print_line("")
    print_line(f"scheduling: {found.decision}")
    if needs:
        print_line("needs: " + ", ".join(f"{k}={v}" for k, v in needs.items()))
    rows = [
        (
            ("* " if a.chosen else "  ") + a.agent,
            "yes" if a.free else ("busy" if a.eligible else "no"),
            f"{a.load}/{a.capacity}",
            a.weight,
            "-" if a.estimate_s is None else f"{a.estimate_s:.2f}s",
            "-" if a.warm is None else ("warm" if a.warm else "cold"),
            a.reason or "candidate",
        )
        for a in found.agents
    ]
    print_table(("AGENT", "ELIGIBLE", "LOAD", "WEIGHT", "ESTIMATE", "MODEL", "WHY"), rows)
