"""The dashboard's pure parts: URL filters, the attempt timeline, the sealed cookie, and
the vendored assets matching the checksums their notes promise."""

from __future__ import annotations

import hashlib
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import whoosh_gateway.ui as ui_package
from whoosh_gateway.ui.filters import parse_filters
from whoosh_gateway.ui.session import SessionSeal
from whoosh_gateway.ui.views import timeline
from whoosh_shared.contract.enums import TaskStatus
from whoosh_shared.contract.events import EventEnvelope

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
VENDOR = Path(ui_package.__file__).parent / "static" / "vendor"


def test_filters_keep_good_values_and_name_the_bad_ones() -> None:
    found = parse_filters(
        {"status": "failed", "agent": "gpu-1", "since": "2h", "until": "soon", "cursor": "12"},
        NOW,
    )
    assert found.status is TaskStatus.FAILED and found.agent == "gpu-1"
    query = found.query()
    assert query.submitted_after == NOW - timedelta(hours=2)
    assert query.submitted_before is None and query.after == "12"
    assert found.notices == ["ignored until='soon': use an ISO time or an age like 30m, 2h, 1d"]
    assert found.url_params(status=None) == "agent=gpu-1&since=2h"


def test_malformed_filters_are_all_ignored_with_notices() -> None:
    found = parse_filters(
        {"status": "done", "agent": "no spaces", "capability": "x" * 500, "cursor": "abc"}, NOW
    )
    assert found.query().model_dump(exclude_none=True) == {"limit": 50}
    assert len(found.notices) == 4 and not found.active


def test_iso_times_without_a_zone_are_utc() -> None:
    found = parse_filters({"since": "2026-12-01T10:00"}, NOW)
    assert found.query().submitted_after == datetime(2026, 12, 1, 10, tzinfo=UTC)


def envelope(nid: int, kind: str, at: float, **data: object) -> EventEnvelope:
    return EventEnvelope(
        notification_id=nid,
        aggregate_type="task",
        aggregate_id=uuid4(),
        version=nid,
        type=kind,
        timestamp=NOW + timedelta(seconds=at),
        data=data,
    )


def test_timeline_shows_a_retry_on_another_agent() -> None:
    events = [
        envelope(1, "TaskSubmitted", 0, prompt="p"),
        envelope(2, "TaskAssigned", 1, agent_name="a", attempt=1),
        envelope(3, "TaskStarted", 2, attempt=1),
        envelope(4, "TaskAttemptFailed", 5, attempt=1, reason="exit 3", agent_name="a"),
        envelope(5, "TaskAssigned", 6, agent_name="b", attempt=2),
        envelope(6, "TaskStarted", 6, attempt=2),
        envelope(7, "TaskCompleted", 10, attempt=2),
    ]
    line = timeline(events, NOW + timedelta(seconds=60))
    first, second = line.attempts
    assert (first.agent, first.outcome, first.reason) == ("a", "attempt failed", "exit 3")
    assert (second.agent, second.outcome) == ("b", "completed")
    assert first.bar == {"left": 10.0, "width": 40.0}
    assert second.bar == {"left": 60.0, "width": 40.0}
    assert line.ended_at == NOW + timedelta(seconds=10)


def test_timeline_of_a_running_task_reaches_now() -> None:
    events = [envelope(1, "TaskSubmitted", 0), envelope(2, "TaskAssigned", 5, agent_name="a")]
    line = timeline(events, NOW + timedelta(seconds=10))
    assert line.attempts[0].outcome == "running"
    assert line.attempts[0].bar == {"left": 50.0, "width": 50.0}


def test_sealed_cookie_hides_the_key_and_refuses_tampering() -> None:
    seal = SessionSeal(b"s" * 32)
    cookie = seal.seal("whk_0123456789ab_secret")
    assert "secret" not in cookie and seal.open(cookie) == "whk_0123456789ab_secret"
    assert seal.open(cookie[:-4] + "AAAA") is None
    assert SessionSeal(b"t" * 32).open(cookie) is None, "another cluster's secret"
    assert seal.open(None) is None and seal.open("junk") is None
    assert seal.csrf_ok(cookie, seal.csrf_token(cookie))
    assert not seal.csrf_ok(cookie, seal.csrf_token(seal.seal("whk_0123456789ab_secret")))


def test_sealed_cookie_expires(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    seal = SessionSeal(b"s" * 32)
    cookie = seal.seal("whk_0123456789ab_secret")
    later = time.time() + 13 * 3600
    monkeypatch.setattr(time, "time", lambda: later)
    assert seal.open(cookie) is None


def test_vendored_assets_match_their_noted_checksums() -> None:
    notes = (VENDOR / "VENDORED.md").read_text()
    folder = ""
    checked = 0
    for line in notes.splitlines():
        match = re.match(r"\| `([a-z0-9.-]+/)`", line)
        if match:
            folder = match.group(1)
        for name, digest in re.findall(r"`([^`/]+\.[a-z]+)` \| `([0-9a-f]{64})`", line):
            path = VENDOR / folder / name
            assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, path
            checked += 1
    assert checked == 5
    for folder in ("uplot-1.6.32", "swagger-ui-5.35.0"):
        assert (VENDOR / folder / "LICENSE").exists()


def test_templates_reference_no_other_host() -> None:
    templates = Path(ui_package.__file__).parent / "templates"
    for template in templates.glob("*.html"):
        text = template.read_text()
        assert not re.search(r"""(src|href|action)=["'](https?:)?//""", text), template.name


H200 = 'modelName="NVIDIA H200",Hostname="gpu-1"'
METRICS = f"""\
# HELP whoosh_gpu_utilization_ratio GPU utilisation
# TYPE whoosh_gpu_utilization_ratio gauge
whoosh_gpu_utilization_ratio{{gpu="0",UUID="GPU-a",{H200}}} 0.75
whoosh_gpu_utilization_ratio{{gpu="1",UUID="GPU-b",{H200}}} 0.0
whoosh_gpu_memory_used_bytes{{gpu="0",UUID="GPU-a",{H200}}} 2147483648
whoosh_gpu_memory_total_bytes{{gpu="0",UUID="GPU-a",{H200}}} 8589934592
whoosh_gpu_temperature_celsius{{gpu="0",UUID="GPU-a",{H200}}} 61
whoosh_executor_running_attempts{{executor="x",Hostname="gpu-1"}} 3
"""


def test_gpus_are_read_from_the_monitors_gauges() -> None:
    from whoosh_shared.contract.gpu_readings import parse_gpus

    first, second = parse_gpus(METRICS)
    assert (first.host, first.index, first.model) == ("gpu-1", "0", "NVIDIA H200")
    assert first.utilization_pct == 75.0 and first.memory_gib == (2.0, 8.0)
    assert first.values["temperature"] == 61.0
    assert second.utilization_pct == 0.0 and second.memory_gib is None
    assert parse_gpus("garbage\n{}\n") == []
