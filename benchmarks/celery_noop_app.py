"""The Celery side of `bench_noop.py`: a no-op task, and a task that runs a command the way
WHOOSH's CLI executor does, on Redis (broker and result backend).

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
import subprocess

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


@app.task(name="bench.run_command")
def run_command(argv: list[str], prompt: str = "") -> dict[str, object]:
    """Runs `argv` as a Celery user would for a CLI agent, i.e. the work of one WHOOSH CLI
    task: a child process with the prompt on stdin and its output captured."""
    done = subprocess.run(argv, input=prompt.encode(), capture_output=True, check=False)
    return {"exit_code": done.returncode, "stdout": done.stdout.decode(errors="replace")}
