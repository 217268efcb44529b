"""Structured, quiet logging for every WHOOSH process: one JSON object per line on stderr.

Level from $WHOOSH_LOG_LEVEL (default INFO; services log milestones, not messages).
Fields passed as `extra=` (task_id, attempt, ...) become keys of the line, so a log
shipper can filter by the ids a line is about without parsing prose.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime

LEVEL_ENV = "WHOOSH_LOG_LEVEL"
QUIET_LIBRARIES = ("faststream", "nats", "eventsourcing", "asyncio", "psycopg")
_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName"}
)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(service: str) -> None:
    """An unknown level is reported and replaced by INFO: a typo must not keep a service down."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    level = os.environ.get(LEVEL_ENV, "INFO").upper()
    try:
        root.setLevel(level)
    except ValueError:
        root.setLevel(logging.INFO)
        print(f"{service}: unknown {LEVEL_ENV} {level!r}; using INFO", file=sys.stderr)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
