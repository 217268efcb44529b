"""The layout's promises, checked on the source: the contract needs no runtime, no
service imports another service, and the shared package imports no service."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / "shared" / "src" / "whoosh_shared"
SERVICES = {
    path.name: next((path / "src").glob("whoosh_*"))
    for path in sorted((ROOT / "services").iterdir())
    if (path / "src").is_dir()
}


def imported_modules(package: Path) -> set[tuple[Path, str]]:
    """(file, dotted module) for every absolute import in the package's files."""
    found = set()
    for file in package.rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text(), str(file))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add((file, node.module))
                found |= {(file, f"{node.module}.{alias.name}") for alias in node.names}
            elif isinstance(node, ast.Import):
                found |= {(file, alias.name) for alias in node.names}
    return found


def offenders(package: Path, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{file.relative_to(ROOT)} imports {module}"
        for file, module in imported_modules(package)
        if module.startswith(forbidden)
    )


def test_the_contract_imports_nothing_from_the_runtime() -> None:
    assert offenders(SHARED / "contract", ("whoosh_shared.runtime",)) == []


def test_the_contract_opens_no_connection() -> None:
    """Plain data and pure rules: no bus client, database driver or HTTP library."""
    io_libraries = (
        "nats",
        "faststream",
        "psycopg",
        "sqlite3",
        "httpx",
        "aiohttp",
        "socket",
        "eventsourcing",
    )
    assert offenders(SHARED / "contract", io_libraries) == []


def test_the_shared_package_imports_no_service() -> None:
    services = (*(package.name for package in SERVICES.values()), "whoosh_cli")
    assert offenders(SHARED, services) == []


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_a_service_never_imports_another_service(service: str) -> None:
    others = tuple(pkg.name for name, pkg in SERVICES.items() if name != service)
    assert offenders(SERVICES[service], (*others, "whoosh_cli")) == []
