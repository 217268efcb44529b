"""Import of n8n workflow exports (placeholder until the translator lands)."""

from __future__ import annotations

import json
from typing import Any

from whoosh_coordinator.workflows.definition import DefinitionError


def looks_like_n8n(text: str) -> bool:
    if not text.lstrip().startswith("{"):
        return False
    try:
        data = json.loads(text)
    except ValueError:
        return False
    return isinstance(data, dict) and "nodes" in data


def translate(text: str, source: str, name: str | None) -> dict[str, Any]:
    raise DefinitionError([f"{source}: n8n import is not available yet"])
