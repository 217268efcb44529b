"""Fixtures for the CLI tests: an installation per test, or one running WHOOSH per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cli.whoosh_processes import WhooshEnv, make_installation


@pytest.fixture
def whoosh_env(tmp_path: Path) -> Iterator[WhooshEnv]:
    """A fresh installation; every `whoosh up` it started is stopped afterwards."""
    installation = make_installation(tmp_path)
    yield installation
    for up in installation.started:
        up.cleanup()


@pytest.fixture(scope="module")
def running_whoosh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WhooshEnv]:
    """One `whoosh up` shared by the read/write tests of a module."""
    installation = make_installation(tmp_path_factory.mktemp("whoosh"))
    try:
        installation.up()
        yield installation
    finally:
        for up in installation.started:
            up.cleanup()
