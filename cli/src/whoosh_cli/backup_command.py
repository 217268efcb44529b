"""`whoosh backup FILE` and `whoosh restore FILE`: the event store, copied and put back.

The coordinator owns the store, so these run its `backup` / `restore` subcommands (as
`whoosh replay` runs its replay). A restore fills an empty data dir -- or, for a
PostgreSQL store, an empty schema -- and refuses anything else: it never merges into or
overwrites a store that has history of its own. The backup holds every prompt, output
and agent `env` value: keep it like a secret (it is written 0600).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from whoosh_shared.runtime.store import store_env

from whoosh_cli.context import CliContext
from whoosh_cli.errors import CliError

TIMEOUT_S = 3600.0


def backup(ctx: CliContext, args: argparse.Namespace) -> int:
    return _run(ctx, "backup", args.file, args.store)


def restore(ctx: CliContext, args: argparse.Namespace) -> int:
    store_url = args.store or ctx.config.store_url()
    if store_env(store_url)["PERSISTENCE_MODULE"] == "eventsourcing.sqlite":
        _require_empty(ctx.data_dir, Path(store_env(store_url)["SQLITE_DBNAME"]))
    return _run(ctx, "restore", args.file, store_url)


def _require_empty(data_dir: Path, database: Path) -> None:
    """A restore fills an empty data dir: refuse one with anything in it."""
    if database.exists():
        raise CliError(f"{database} exists: restore fills an empty data dir; move it away first")
    if data_dir.is_dir() and any(data_dir.iterdir()):
        entries = sorted(p.name for p in data_dir.iterdir())
        raise CliError(
            f"data dir {data_dir} is not empty ({', '.join(entries[:5])}"
            f"{', ...' if len(entries) > 5 else ''}): restore fills an empty one; move it "
            "away or set WHOOSH_DATA_DIR to a new folder"
        )
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)


def _run(ctx: CliContext, mode: str, file: str, store_url: str | None) -> int:
    argv = [sys.executable, "-m", "whoosh_coordinator", mode, str(Path(file).expanduser()),
            "--store", store_url or ctx.config.store_url()]  # fmt: skip
    if ctx.json:
        argv.append("--json")
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise CliError(f"{mode} did not finish within {TIMEOUT_S:g}s") from None
    except OSError as exc:
        raise CliError(f"cannot run the coordinator's {mode}: {exc}") from None
    return done.returncode
