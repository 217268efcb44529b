"""The Celery side of `bench_noop.py`: one no-op task on Redis (broker and result backend).

The worker is started by the benchmark as `celery -A celery_noop_app worker --pool=solo`
with this folder on PYTHONPATH; the client imports the same module. The Redis URL
(default: database 9 on the local server) comes from BENCH_CELERY_REDIS_URL so the
benchmark can pick a database nobody else uses and flush it.

Celery runs with its defaults apart from JSON-only serialisation: acks before the task
runs (acks_late off) and results kept in Redis without waiting for persistence, i.e.
nothing of a task's progress is durable the way WHOOSH's event store is.
"""

from __future__ import annotations

import os

from celery import Celery

REDIS_URL = os.environ.get("BENCH_CELERY_REDIS_URL", "redis://127.0.0.1:6379/9")

app = Celery("bench_noop", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    result_expires=3600,
)


@app.task(name="bench.noop")
def noop() -> None:
    """Does nothing: the benchmark measures the queue, not the work."""
    return None
