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


def write_endpoints(data_dir: Path, nats_url: str, gateway_url: str | None = None) -> None:
    """Record the URLs in use (atomically, so a reader never sees half a file)."""
    path = endpoints_path(data_dir)
    tmp = path.with_suffix(".tmp")
    entries: dict[str, Any] = {"nats_url": nats_url, "pid": os.getpid()}
    if gateway_url:
        entries["gateway_url"] = gateway_url
    tmp.write_text(json.dumps(entries, indent=2) + "\n")
    tmp.replace(path)


def read_nats_url(data_dir: Path) -> str | None:
    """The URL a running (or killed) `whoosh up` wrote, or None when there is none."""
    return _read_entry(data_dir, "nats_url")


def read_gateway_url(data_dir: Path) -> str | None:
    """The gateway URL of a running `whoosh up`, or None."""
    return _read_entry(data_dir, "gateway_url")


def _read_entry(data_dir: Path, key: str) -> str | None:
    try:
        data: Any = json.loads(endpoints_path(data_dir).read_text())
    except (OSError, ValueError):
        return None
    url = data.get(key) if isinstance(data, dict) else None
    return url if isinstance(url, str) and url else None


def remove_endpoints(data_dir: Path) -> None:
    """Forget the endpoints on a clean shutdown, so commands fall back to the config."""
    endpoints_path(data_dir).unlink(missing_ok=True)
