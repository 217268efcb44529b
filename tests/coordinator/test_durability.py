"""`store.sync`: every connection of the store commits with the chosen durability.

The setting is what the benchmark table states next to its figures, so it must hold for
each connection the store uses, including ones its pool opens later."""

from __future__ import annotations

from typing import Any

import pytest
from whoosh_coordinator.durability import apply_sync
from whoosh_coordinator.store import open_store
from whoosh_shared.contract.config import ConfigError, parse_config_text


def _setting(store: Any, commit: bool) -> str:
    with store.recorder.datastore.transaction(commit=commit) as cursor:
        if store.recorder.datastore.__class__.__module__.endswith("sqlite"):
            cursor.execute("PRAGMA synchronous")
            return {1: "normal", 2: "full"}[cursor.fetchone()[0]]
        cursor.execute("SHOW synchronous_commit")
        return {"off": "normal", "on": "full"}[cursor.fetchone()["synchronous_commit"]]


@pytest.mark.parametrize("sync", ["normal", "full"])
def test_every_connection_commits_with_the_chosen_durability(store_url: str, sync: str) -> None:
    store = open_store(store_url, sync)  # type: ignore[arg-type]
    try:
        seen = {_setting(store, commit) for commit in (True, False) for _ in range(6)}
        assert seen == {sync}
    finally:
        store.close()


def test_an_unknown_sync_is_refused(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    try:
        with pytest.raises(ValueError, match=r"'fast'.*normal.*full"):
            apply_sync(store, "fast")  # type: ignore[arg-type]
    finally:
        store.close()


def test_the_configuration_names_the_bad_sync_value() -> None:
    assert parse_config_text("store:\n  sync: full\n").store.sync == "full"
    assert parse_config_text("").store.sync == "normal"
    with pytest.raises(ConfigError, match="sync"):
        parse_config_text("store:\n  sync: sometimes\n")
