"""Trigger rules from tables: which upstream ends let a step run, skip it, or make it wait."""

from __future__ import annotations

import pytest
from whoosh_coordinator.workflows.readiness import Ended, edge_state, verdict

OK = Ended("succeeded", "success")
TRUE, FALSE = Ended("succeeded", "true"), Ended("succeeded", "false")
FAILED = Ended("failed", None)
ROUTED = Ended("failed", "error")
CONTINUED = Ended("failed", "success", continued=True)
SKIPPED = Ended("skipped")
RUNNING = Ended("running")


@pytest.mark.parametrize(
    ("upstream", "port", "state"),
    [
        (OK, "success", "satisfied"),
        (OK, "error", "dead"),
        (TRUE, "true", "satisfied"),
        (TRUE, "false", "dead"),
        (FAILED, "success", "dead"),
        (ROUTED, "error", "satisfied"),
        (ROUTED, "success", "dead"),
        (CONTINUED, "success", "satisfied"),
        (CONTINUED, "error", "dead"),
        (SKIPPED, "success", "dead"),
        (RUNNING, "success", "open"),
    ],
)
def test_edges(upstream: Ended, port: str, state: str) -> None:
    assert edge_state(upstream, port) == state


@pytest.mark.parametrize(
    ("rule", "upstreams", "action"),
    [
        ("all_success", [OK, OK], "run"),
        ("all_success", [OK, RUNNING], "wait"),
        ("all_success", [OK, SKIPPED], "skip"),
        ("all_success", [RUNNING, FAILED], "skip"),
        ("one_success", [RUNNING, OK], "run"),
        ("one_success", [RUNNING, SKIPPED], "wait"),
        ("one_success", [SKIPPED, FAILED], "skip"),
        ("all_done", [OK, FAILED, SKIPPED], "run"),
        ("all_done", [OK, RUNNING], "wait"),
        ("none_failed_min_one_success", [OK, SKIPPED], "run"),
        ("none_failed_min_one_success", [SKIPPED, SKIPPED], "skip"),
        ("none_failed_min_one_success", [OK, FAILED], "skip"),
        ("none_failed_min_one_success", [OK, RUNNING], "wait"),
        ("one_failed", [RUNNING, FAILED], "run"),
        ("one_failed", [OK, OK], "skip"),
        ("one_failed", [OK, RUNNING], "wait"),
    ],
)
def test_trigger_rules(rule: str, upstreams: list[Ended], action: str) -> None:
    edges = [(f"u{i}", "success", e) for i, e in enumerate(upstreams)]
    assert verdict(rule, edges).action == action


def test_skip_reasons_say_why() -> None:
    assert verdict("all_success", [("check", "true", FALSE)]).reason == (
        "branch not taken: 'check' took port 'false', not 'true'"
    )
    assert verdict("all_success", [("a", "success", SKIPPED)]).reason == "upstream 'a' skipped"
    assert verdict("all_success", []).action == "run"
