"""Logging as every WHOOSH process does it (`whoosh_shared.logs`: JSON lines, $WHOOSH_LOG_LEVEL),
plus the context fields the executor passes as `extra` (task_id, attempt, ...).

An executor runs unattended next to many others; a line that carries the ids it
is about can be filtered by a log shipper without parsing prose.
"""

from __future__ import annotations

import json
import logging
import os
import sys

from whoosh_shared.logs import QUIET_LIBRARIES, JsonFormatter, setup_logging

SERVICE = "executor-cli"
LEVEL_ENV = "WHOOSH_LOG_LEVEL"
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
    try:
        setup_logging(SERVICE)
    except ValueError:  # an unknown level: a typo must not keep the executor down
        logging.getLogger().setLevel(logging.INFO)
        for name in QUIET_LIBRARIES:
            logging.getLogger(name).setLevel(logging.WARNING)
        level = os.environ.get(LEVEL_ENV, "")
        print(f"whoosh-executor-cli: unknown {LEVEL_ENV} {level!r}; using INFO", file=sys.stderr)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(JsonWithFieldsFormatter(SERVICE))
