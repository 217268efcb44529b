"""Workflow templates shipped with WHOOSH (native `whoosh: workflow/v1` YAML files here).

Read by the coordinator (`CreateWorkflow(template=...)`), the gateway and the CLI
(`whoosh workflow templates`); every one is checked by the test suite.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from whoosh_shared.contract.workflows import TemplateInfo

HERE = Path(__file__).parent


def template_names() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.yaml"))


def template_text(name: str) -> str | None:
    path = HERE / f"{name}.yaml"
    if name not in template_names():
        return None
    return path.read_text(encoding="utf-8")


def list_templates() -> list[TemplateInfo]:
    infos = []
    for name in template_names():
        data = yaml.safe_load(template_text(name) or "") or {}
        infos.append(
            TemplateInfo(
                name=name,
                description=str(data.get("description", "")).strip(),
                steps=list((data.get("steps") or {}).keys()),
            )
        )
    return infos
