"""Workflow tests on a coordinator core (a real store, command by command)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from coordinator.core import Core
from whoosh_coordinator.assignment import Assigner
from whoosh_coordinator.commands import CommandHandler
from whoosh_coordinator.follower import Follower
from whoosh_coordinator.projections import FleetProjection
from whoosh_coordinator.store import open_store


@pytest.fixture
def core(store_url: str) -> Iterator[Core]:
    store = open_store(store_url)
    projection = FleetProjection()
    handler = CommandHandler(store, projection, on_saved=Follower(store, projection).fold_saved)
    yield Core(store_url, store, projection, handler, Assigner(handler, timeout_grace_s=0))
    store.close()


@pytest.fixture
def sqlite_core(sqlite_url: str) -> Iterator[Core]:
    store = open_store(sqlite_url)
    projection = FleetProjection()
    handler = CommandHandler(store, projection, on_saved=Follower(store, projection).fold_saved)
    yield Core(sqlite_url, store, projection, handler, Assigner(handler, timeout_grace_s=0))
    store.close()
