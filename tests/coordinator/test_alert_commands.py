"""RaiseAlert / ResolveAlert: alerts are events on an Alert aggregate, de-duplicated while
firing, listed by ListAlerts, and rebuilt by replay."""

from __future__ import annotations

from coordinator.core import Core
from whoosh_coordinator.queries import QueryHandler
from whoosh_coordinator.replay import rebuild
from whoosh_shared.contract import commands as c
from whoosh_shared.contract import queries as q
from whoosh_shared.contract.alerts import Severity, alert_id

CPU = {"host": "gpu-1"}


def raise_cpu(core: Core, value: float = 97.0, labels: dict[str, str] = CPU) -> c.CommandReply:
    return core.send(
        c.RaiseAlert(
            rule="HostCpuHigh",
            labels=labels,
            severity=Severity.WARNING,
            summary=f"cpu_usage {value} > 85 (host=gpu-1)",
            value=value,
            threshold=85,
            actor="monitor",
        )
    )


def listed(core: Core, status: str | None = None) -> list[q.AlertView]:
    body = q.ListAlerts(status=status).model_dump_json().encode()  # type: ignore[arg-type]
    reply = QueryHandler(core.projection).handle_raw(q.ListAlerts.SUBJECT, body)
    assert reply.status == "ok", reply.reason
    return q.AlertList.model_validate(reply.result).alerts


def test_an_alert_is_raised_once_while_firing_and_resolved_once(core: Core) -> None:
    before = core.events()
    first = raise_cpu(core)
    assert first.accepted and first.ids["raised"] == "true"
    assert first.ids["alert_id"] == str(alert_id("HostCpuHigh", CPU))
    assert core.events() == before + 2  # AlertCreated, AlertRaised
    again = raise_cpu(core, value=99.0)
    assert again.accepted and again.ids["raised"] == "false"
    assert core.events() == before + 2  # de-duplicated while firing
    (alert,) = listed(core, "firing")
    assert (alert.fingerprint, alert.severity, alert.value) == (
        "HostCpuHigh{host=gpu-1}",
        Severity.WARNING,
        97.0,
    )
    resolve = c.ResolveAlert(rule="HostCpuHigh", labels=CPU, reason="back to 40", actor="monitor")
    assert core.send(resolve).ids["resolved"] == "true"
    assert core.send(resolve).ids["resolved"] == "false"
    assert core.events() == before + 3
    assert listed(core, "firing") == []
    (done,) = listed(core, "resolved")
    assert (done.status, done.resolved_reason) == ("resolved", "back to 40")


def test_a_second_raise_after_resolving_is_a_new_firing_of_the_same_alert(core: Core) -> None:
    raise_cpu(core)
    core.send(c.ResolveAlert(rule="HostCpuHigh", labels=CPU))
    raise_cpu(core)
    (alert,) = listed(core)
    assert (alert.status, alert.times_raised) == ("firing", 2)


def test_each_labelled_series_is_its_own_alert_and_firing_ones_list_first(core: Core) -> None:
    raise_cpu(core, labels={"host": "a"})
    raise_cpu(core, labels={"host": "b"})
    core.send(c.ResolveAlert(rule="HostCpuHigh", labels={"host": "a"}))
    assert [(a.labels["host"], a.status) for a in listed(core)] == [
        ("b", "firing"),
        ("a", "resolved"),
    ]


def test_resolving_an_alert_that_never_fired_records_nothing(core: Core) -> None:
    before = core.events()
    reply = core.send(c.ResolveAlert(rule="Never", labels={}))
    assert reply.accepted and reply.ids["resolved"] == "false"
    assert core.events() == before


def test_bad_alert_commands_are_rejected_with_the_field_named(core: Core) -> None:
    body = b'{"rule": "has space", "severity": "loud"}'
    reply = core.handler.handle_raw(c.RaiseAlert.SUBJECT, body)
    assert reply.code == "invalid"
    assert "rule" in (reply.reason or "") and "severity" in (reply.reason or "")


def test_replay_rebuilds_the_alerts(core: Core) -> None:
    raise_cpu(core)
    raise_cpu(core, labels={"host": "b"})
    core.send(c.ResolveAlert(rule="HostCpuHigh", labels={"host": "b"}))
    rebuilt = rebuild(core.store)
    assert rebuilt.alerts.alerts == core.projection.alerts.alerts
