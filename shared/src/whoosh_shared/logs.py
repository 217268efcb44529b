"""Structured, quiet logging for every WHOOSH process: one JSON object per line on stderr.

Level from $WHOOSH_LOG_LEVEL (default INFO; services log milestones, not messages).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime

QUIET_LIBRARIES = ("faststream", "nats", "eventsourcing", "asyncio", "psycopg")


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
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(service: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(os.environ.get("WHOOSH_LOG_LEVEL", "INFO").upper())
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
