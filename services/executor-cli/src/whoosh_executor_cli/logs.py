"""Logging as every WHOOSH process does it (`whoosh_shared.logs`: JSON lines, $WHOOSH_LOG_LEVEL),
plus the context fields the executor passes as `extra` (task_id, attempt, ...).

An executor runs unattended next to many others; a line that carries the ids it
is about can be filtered by a log shipper without parsing prose.
"""

from __future__ import annotations

import json
import logging

from whoosh_shared.logs import JsonFormatter, setup_logging

SERVICE = "executor-cli"
_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName"}
)


class JsonWithFieldsFormatter(JsonFormatter):
    """The shared JSON line, with the record's `extra` fields added as keys."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS}
        if not fields:
            return line
        entry = json.loads(line)
        entry.update({k: v for k, v in fields.items() if k not in entry})
        return json.dumps(entry, default=str)


def configure_logging() -> None:
    """INFO by default: one line per task start and finish; `WHOOSH_LOG_LEVEL` changes it."""
    setup_logging(SERVICE)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(JsonWithFieldsFormatter(SERVICE))
