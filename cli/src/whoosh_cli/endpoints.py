"""`<data_dir>/endpoints.json`: where a running `whoosh up` can be reached.

`whoosh up` may run NATS on a port chosen at start (port 0), so other `whoosh`
commands on the same data dir read the URL actually in use from here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ENDPOINTS_FILE = "endpoints.json"


def endpoints_path(data_dir: Path) -> Path:
    return data_dir / ENDPOINTS_FILE


def write_endpoints(data_dir: Path, nats_url: str) -> None:
    """Record the NATS URL in use (atomically, so a reader never sees half a file)."""
    path = endpoints_path(data_dir)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"nats_url": nats_url, "pid": os.getpid()}, indent=2) + "\n")
    tmp.replace(path)


def read_nats_url(data_dir: Path) -> str | None:
    """The URL a running (or killed) `whoosh up` wrote, or None when there is none."""
    try:
        data: Any = json.loads(endpoints_path(data_dir).read_text())
    except (OSError, ValueError):
        return None
    url = data.get("nats_url") if isinstance(data, dict) else None
    return url if isinstance(url, str) and url else None


def remove_endpoints(data_dir: Path) -> None:
    """Forget the endpoints on a clean shutdown, so commands fall back to the config."""
    endpoints_path(data_dir).unlink(missing_ok=True)
