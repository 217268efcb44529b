"""`<data_dir>/children.json`: the processes the current `whoosh up` started.

After a kill -9 of `up` its children normally die of their death signal, but
one may still be shutting down (holding the NATS port or the store) when the
next `up` starts, and a non-Linux system has no death signal at all. The next
`up` reads this file and stops any recorded process that is still the one we
started (same /proc cmdline), before it checks ports or starts anything.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from whoosh_cli.child_process import is_same_process

CHILDREN_FILE = "children.json"


@dataclass(frozen=True)
class ChildRecord:
    name: str
    pid: int
    argv: list[str]


class ChildRegistry:
    """The recorded children of one data dir, rewritten whenever one starts or stops."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / CHILDREN_FILE
        self._records: dict[str, ChildRecord] = {}

    def record(self, name: str, pid: int, argv: list[str]) -> None:
        self._records[name] = ChildRecord(name, pid, list(argv))
        self._save()

    def forget(self, name: str) -> None:
        if self._records.pop(name, None) is not None:
            self._save()

    def clear(self) -> None:
        self._records.clear()
        self.path.unlink(missing_ok=True)

    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps([asdict(r) for r in self._records.values()], indent=2) + "\n")
        tmp.replace(self.path)

    def load_stale(self) -> list[ChildRecord]:
        """Records left by a previous `up` (call only while holding the data-dir lock)."""
        try:
            data: Any = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return []
        records = []
        for item in data if isinstance(data, list) else []:
            try:
                records.append(ChildRecord(str(item["name"]), int(item["pid"]), list(item["argv"])))
            except (KeyError, TypeError, ValueError):
                continue
        return records


def stop_stale_children(registry: ChildRegistry, grace_s: float = 10.0) -> list[ChildRecord]:
    """Stop every recorded child still alive from an earlier `up`; returns those stopped."""
    alive = [r for r in registry.load_stale() if is_same_process(r.pid, r.argv)]
    for record in alive:
        _signal(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_alive(r) for r in alive):
        time.sleep(0.05)
    for record in alive:
        if _alive(record):
            _signal(record.pid, signal.SIGKILL)
    kill_deadline = time.monotonic() + 5.0
    while time.monotonic() < kill_deadline and any(_alive(r) for r in alive):
        time.sleep(0.05)
    registry.clear()
    return alive


def _alive(record: ChildRecord) -> bool:
    return is_same_process(record.pid, record.argv)


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)
