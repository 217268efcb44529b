"""/metrics of a real monitor, after real LLM tasks, read with Prometheus' text parser."""

from __future__ import annotations

import httpx
import pytest
from harness import ServiceProcess, eventually
from prometheus_client.parser import text_string_to_metric_families
from system.llm_stack import MODEL, MakeDouble, finished, register, submit
from system.monitor_stack import FAST_HEARTBEATS, metrics_url, start_monitor
from whoosh_shared.contract import metric_names as m
from whoosh_shared.contract.enums import TaskStatus
from whoosh_shared.runtime.bus import Bus


@pytest.fixture
def executor_env() -> dict[str, str]:
    return dict(FAST_HEARTBEATS)


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def one(found, name: str, **labels: str) -> float:
    matching = [v for lab, v in found.get(name, []) if labels.items() <= lab.items()]
    assert len(matching) == 1, f"{name}{labels}: {found.get(name)}"
    return matching[0]


async def test_metrics_show_tasks_tokens_latency_health_and_hosts(
    bus: Bus, spawn, nats_url: str, llm_system: ServiceProcess, make_double: MakeDouble
) -> None:
    double = make_double(ttft_s=0.05)
    await register(bus, "llm", double)
    monitor = await start_monitor(spawn, nats_url)
    url = metrics_url(monitor)
    for _ in range(3):
        assert (await finished(bus, await submit(bus))).status is TaskStatus.COMPLETED

    def counted():
        found = scrape(url)
        done = [v for lab, v in found.get(m.TASKS_FINISHED, []) if lab.get("agent") == "llm"]
        executors = [v for lab, v in found.get(m.EXECUTORS, []) if lab.get("type") == "ollama"]
        completed = [v for lab, v in found.get(m.TASKS, []) if lab == {"status": "completed"}]
        return found if (done, executors, completed) == ([3.0], [1.0], [3.0]) else None

    found = await eventually(counted, timeout=20, what="three tasks and an executor in /metrics")
    labels = {"agent": "llm", "model": MODEL}
    assert one(found, f"{m.TASK_DURATION}_count", **labels) == 3
    assert one(found, f"{m.TASK_DURATION}_bucket", **labels, le="+Inf") == 3
    assert one(found, f"{m.TIME_TO_FIRST_TOKEN}_count", **labels) == 3
    assert one(found, m.OUTPUT_TOKENS, **labels) > 0
    assert one(found, m.INPUT_TOKENS, **labels) > 0
    assert one(found, m.TASKS, status="completed") == 3
    assert one(found, m.QUEUE_DEPTH) == 0
    assert one(found, m.AGENT_HEALTHY, agent="llm", type="ollama") == 1
    assert one(found, m.AGENT_COMPLETED, agent="llm", type="ollama") == 3
    assert one(found, m.AGENT_DECODE_TPS, agent="llm", model=MODEL) > 0
    assert 0 <= one(found, m.HOST_CPU) <= 1
    assert one(found, m.HOST_MEMORY_TOTAL) > 0
    assert m.GPU_UTILIZATION not in found  # this host has no NVIDIA driver: no GPU series
    assert httpx.get(url.replace("/metrics", "/healthz"), timeout=10).text == "ok\n"
    assert httpx.get(url.replace("/metrics", "/nope"), timeout=10).status_code == 404
