"""When a step may run: edges, ports and trigger rules over the upstream steps' ends.

An edge asks for one port of its upstream step. It is *satisfied* when the upstream
ended on that port, *dead* when the upstream ended any other way, and *open* while the
upstream has not ended. Trigger rules (Airflow's vocabulary) turn a step's edges into
one verdict: run now, skip (with the reason), or wait. Pure and table-tested.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["pending", "running", "waiting", "succeeded", "failed", "skipped", "cancelled"]
ENDED = ("succeeded", "failed", "skipped", "cancelled")


@dataclass(frozen=True)
class Ended:
    """How an upstream step ended, as its edges see it."""

    status: Status
    port: str | None = None  # the port it emitted (success, true/false, a switch key, error)
    continued: bool = False  # failed with on_error: continue (its main port still fires)


@dataclass(frozen=True)
class Verdict:
    action: Literal["run", "skip", "wait"]
    reason: str = ""


RUN, WAIT = Verdict("run"), Verdict("wait")


def edge_state(upstream: Ended, port: str) -> Literal["open", "satisfied", "dead"]:
    if upstream.status not in ENDED:
        return "open"
    if upstream.status == "succeeded":
        return "satisfied" if upstream.port == port else "dead"
    if upstream.status == "failed":
        if upstream.continued:
            return "dead" if port == "error" else "satisfied"
        return "satisfied" if upstream.port == "error" and port == "error" else "dead"
    return "dead"


def verdict(rule: str, edges: list[tuple[str, str, Ended]]) -> Verdict:
    """`edges`: (upstream id, port asked for, how the upstream stands)."""
    if not edges:
        return RUN
    states = [edge_state(ended, port) for _, port, ended in edges]
    open_ = "open" in states
    satisfied = "satisfied" in states
    failed = [up for up, _, ended in edges if ended.status == "failed"]
    if rule == "all_success":
        if "dead" in states:
            return Verdict("skip", _why_dead(edges, states))
        return WAIT if open_ else RUN
    if rule == "one_success":
        if satisfied:
            return RUN
        return WAIT if open_ else Verdict("skip", "no upstream step succeeded")
    if rule == "all_done":
        return WAIT if open_ else RUN
    if rule == "none_failed_min_one_success":
        if open_:
            return WAIT
        unrouted = [
            up for (up, _, ended), s in zip(edges, states, strict=True)
            if ended.status == "failed" and s != "satisfied"
        ]  # fmt: skip
        if unrouted:
            return Verdict("skip", f"upstream '{unrouted[0]}' failed")
        return RUN if satisfied else Verdict("skip", "no upstream step succeeded")
    if rule == "one_failed":
        if failed:
            return RUN
        return WAIT if open_ else Verdict("skip", "no upstream step failed")
    raise ValueError(f"unknown trigger rule {rule!r}")


def _why_dead(edges: list[tuple[str, str, Ended]], states: list[str]) -> str:
    for (up, port, ended), state in zip(edges, states, strict=True):
        if state != "dead":
            continue
        if ended.status == "succeeded" or (ended.status == "failed" and ended.port == "error"):
            return f"branch not taken: '{up}' took port '{ended.port}', not '{port}'"
        return f"upstream '{up}' {ended.status}"
    return "upstream did not succeed"
