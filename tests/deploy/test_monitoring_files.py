"""Prometheus and Grafana files in deploy/ agree with the monitor and with each other.

promtool (Debian's prometheus package; ./test installs it, CI requires it) checks the
scrape config and the rules and runs the rules' unit tests; the rules mirror the
monitor's default alert rules; every series the rules and the dashboard read is one
the monitor serves; the scrape target, datasource and dashboard folder match the
compose file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from monitor.test_metrics import fleet_snapshot
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from whoosh_monitor.metrics_server import MetricsServer
from whoosh_monitor.service import MonitorService
from whoosh_shared.contract import metric_names as m
from whoosh_shared.contract.alerts import DEFAULT_RULES, PERCENT_METRICS, parse_duration
from whoosh_shared.contract.config import WhooshConfig

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = REPO / "deploy" / "prometheus"
GRAFANA = REPO / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
COMPOSE = REPO / "docker-compose.yml"
PROMETHEUS_OWN = {"up", "ALERTS"}  # series Prometheus makes itself
ONLY_IN_PROMETHEUS = {"WhooshMonitorDown"}
SERIES = re.compile(r"\b(whoosh_[a-z0-9_]+|up|ALERTS)\b")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which(os.environ.get("WHOOSH_PROMTOOL", "promtool"))
    if binary is None:
        if os.environ.get("WHOOSH_REQUIRE_PROMTOOL"):
            pytest.fail("promtool is required here (scripts/ensure_promtool.sh installs it)")
        pytest.skip("no promtool (scripts/ensure_promtool.sh installs it)")
    return subprocess.run(
        [binary, *args], capture_output=True, text=True, timeout=120, cwd=PROMETHEUS
    )


def rules() -> dict[str, dict[str, Any]]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"]}


def compose_services() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def served_names() -> set[str]:
    """Every series name a monitor serves, from its own registry with every kind of series
    present (families without samples yet still count: their names are fixed)."""
    service = MonitorService(WhooshConfig(), "nats://127.0.0.1:1")  # never connected here
    service.fleet_metrics.snapshot = fleet_snapshot()
    names = set()
    for family in text_string_to_metric_families(generate_latest(service.registry).decode()):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.add(f"{family.name}_total")
        if family.type == "histogram":
            names |= {f"{family.name}_{suffix}" for suffix in ("bucket", "sum", "count")}
    return names


def used_series(text: str) -> set[str]:
    return set(SERIES.findall(text))


# -- promtool --------------------------------------------------------------------------


def test_promtool_accepts_the_scrape_config() -> None:
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_rules() -> None:
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_unit_tests_pass() -> None:
    result = promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


# -- the rules mirror the monitor's ---------------------------------------------------------


def test_prometheus_rules_mirror_the_monitors_default_rules() -> None:
    found = rules()
    assert set(found) == {r.name for r in DEFAULT_RULES} | ONLY_IN_PROMETHEUS
    for rule in DEFAULT_RULES:
        mirror = found[rule.name]
        assert mirror["labels"]["severity"] == rule.severity.value, rule.name
        assert parse_duration(mirror["for"]) == rule.for_s, rule.name
        expected = rule.threshold / 100 if rule.metric in PERCENT_METRICS else rule.threshold
        comparison = re.findall(r"(==|>=|<=|>|<)\s*([0-9.]+)", mirror["expr"])
        assert comparison, rule.name
        op, value = comparison[0]
        if rule.metric.value == "agent_unhealthy":  # healthy == 0 is unhealthy > 0
            assert (op, float(value)) == ("==", 0.0)
            continue
        assert (op, float(value)) == (rule.op, expected), rule.name


def test_rules_and_dashboards_read_only_series_the_monitor_serves() -> None:
    served = served_names() | PROMETHEUS_OWN
    texts = {"alerts.yml": " ".join(rule["expr"] for rule in rules().values())}
    texts.update({p.name: p.read_text() for p in DASHBOARDS})
    for name, text in texts.items():
        unknown = used_series(text) - served
        assert not unknown, f"{name} reads series the monitor does not serve: {unknown}"


def test_every_declared_metric_name_is_served() -> None:
    declared = {
        value
        for key, value in vars(m).items()
        if key.isupper() and isinstance(value, str) and value.startswith("whoosh_")
    }
    assert declared - served_names() == set()


# -- scrape target, datasource, dashboards against the compose file ------------------------


def test_prometheus_scrapes_the_compose_monitor_on_its_port() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    ((host, port),) = [t.split(":") for t in job["static_configs"][0]["targets"]]
    monitor = compose_services()[host]
    assert monitor["command"][:3] == ["python", "-m", "whoosh_monitor"]
    env = monitor["environment"]
    assert env["WHOOSH__MONITORING__METRICS_PORT"] == port
    assert env["WHOOSH__MONITORING__METRICS_HOST"] == "0.0.0.0"  # reachable in the network
    assert "alerts.yml" in config["rule_files"]


def test_prometheus_container_mounts_config_and_rules_where_the_config_says() -> None:
    service = compose_services()["prometheus"]
    mounts = dict(v.split(":")[:2][::-1] for v in service["volumes"] if v.startswith("./"))
    config_at = next(a[len("--config.file=") :] for a in service["command"] if "config.file" in a)
    assert mounts[config_at] == "./deploy/prometheus/prometheus.yml"
    rules_at = str(Path(config_at).parent / "alerts.yml")
    assert mounts[rules_at] == "./deploy/prometheus/alerts.yml"


def test_grafana_provisions_the_datasource_the_dashboards_use() -> None:
    service = compose_services()["grafana"]
    mounts = dict(v.split(":")[:2][::-1] for v in service["volumes"] if v.startswith("./"))
    assert mounts["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/whoosh.yml").read_text())
    assert mounts[provider["providers"][0]["options"]["path"]] == "./deploy/grafana/dashboards"
    (source,) = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())[
        "datasources"
    ]
    assert source["url"] == "http://prometheus:9090"
    assert "prometheus" in compose_services()
    assert DASHBOARDS
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        uids = {
            target["datasource"]["uid"]
            for panel in dashboard["panels"]
            for target in panel.get("targets", [])
        }
        assert uids == {source["uid"]}, path.name
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids)), f"{path.name}: panel ids repeat"


def test_the_dashboard_covers_fleet_agents_gpus_and_alerts() -> None:
    (dashboard,) = [json.loads(p.read_text()) for p in DASHBOARDS]
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    for section in ("Fleet overview", "Agents", "GPUs", "Alerts"):
        assert any(section in row for row in rows), section
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p.get("targets", []))
    for series in (m.QUEUE_DEPTH, m.TASK_DURATION, m.TIME_TO_FIRST_TOKEN, m.OUTPUT_TOKENS):
        assert series in exprs, series
    for series in (m.GPU_UTILIZATION, m.GPU_MEMORY_USED, m.GPU_TEMPERATURE, m.GPU_POWER):
        assert series in exprs, series
    assert m.ALERTS_FIRING in exprs


# -- the monitor's container healthcheck --------------------------------------------------


def test_the_monitor_healthcheck_mode_reads_healthz() -> None:
    from prometheus_client import CollectorRegistry

    server = MetricsServer(CollectorRegistry(), "127.0.0.1", 0)
    server.start()
    try:
        healthz = server.url.replace("/metrics", "/healthz")
        ok = subprocess.run(
            [sys.executable, str(REPO / "deploy/healthcheck.py"), "monitor", healthz],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert ok.returncode == 0, ok.stderr
    finally:
        server.stop()
    down = subprocess.run(
        [sys.executable, str(REPO / "deploy/healthcheck.py"), "monitor", healthz],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert down.returncode == 1 and "unhealthy (monitor)" in down.stderr
