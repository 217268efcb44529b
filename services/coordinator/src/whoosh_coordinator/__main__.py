"""`whoosh-coordinator serve | relay | replay | backup FILE | restore FILE`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from eventsourcing.persistence import PersistenceError
from whoosh_shared.contract.config import ConfigError, load_config
from whoosh_shared.runtime import event_loop, nats_auth
from whoosh_shared.runtime.bus import BusError
from whoosh_shared.runtime.logs import setup_logging
from whoosh_shared.runtime.store import StoreUrlError, describe_store

from whoosh_coordinator.backups import store_backup
from whoosh_coordinator.projections import FleetProjection
from whoosh_coordinator.replay import rebuild
from whoosh_coordinator.service import Coordinator, run_relay_only, stop_on_signals
from whoosh_coordinator.store import open_store


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="whoosh-coordinator", description=__doc__)
    parser.add_argument("mode", choices=["serve", "relay", "replay", "backup", "restore"])
    parser.add_argument("file", nargs="?", help="backup / restore: the backup file")
    parser.add_argument("--config", help="whoosh.yaml (default: $WHOOSH_CONFIG, ./whoosh.yaml)")
    parser.add_argument("--nats", help="NATS URL (default: from the config)")
    parser.add_argument("--store", help="store URL (default: from the config)")
    parser.add_argument("--no-relay", action="store_true", help="serve without the relay")
    parser.add_argument("--json", action="store_true", help="replay: print JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = load_config(args.config)
        nats_auth.configure(nats_auth.for_config(config))
        store_url = args.store or config.store_url()
        nats_url = args.nats or config.nats.client_url()
        if args.mode == "replay":
            return replay(store_url, args.json)
        if args.mode in ("backup", "restore"):
            return backup_or_restore(args.mode, args.file, store_url, args.json)
        setup_logging(f"coordinator-{args.mode}")
        return event_loop.run(serve(args.mode, store_url, nats_url, config, not args.no_relay))
    except (ConfigError, StoreUrlError, ValueError) as exc:
        print(f"whoosh-coordinator: {exc}", file=sys.stderr)
        return 2
    except PersistenceError as exc:
        print(
            f"whoosh-coordinator: event store {describe_store(store_url)}: {exc}", file=sys.stderr
        )
        return 1
    except BusError as exc:
        print(f"whoosh-coordinator: {exc}", file=sys.stderr)
        return 1


async def serve(mode: str, store_url: str, nats_url: str, config, with_relay: bool) -> int:
    stop = stop_on_signals()
    settings = config.coordinator
    if mode == "relay":
        await run_relay_only(store_url, nats_url, settings.poll_interval_s, stop, config.limits)
    else:
        coordinator = Coordinator(
            store_url,
            nats_url,
            settings,
            run_relay=with_relay,
            stream_replicas=config.nats.stream_replicas,
            limits=config.limits,
            security=config.security,
            stream_limits=config.nats.streams,
            store_sync=config.store.sync,
        )
        await coordinator.run(stop)
    return 0


def backup_or_restore(mode: str, file: str | None, store_url: str, as_json: bool) -> int:
    if not file:
        print(f"whoosh-coordinator: {mode} needs a FILE", file=sys.stderr)
        return 2
    run = store_backup.backup if mode == "backup" else store_backup.restore
    path = Path(file).expanduser().resolve()
    try:
        verified = run(store_url, path) if mode == "backup" else run(path, store_url)
    except store_backup.BackupError as exc:
        print(f"whoosh-coordinator: {mode}: {exc}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps({"file": str(path), **verified.__dict__}))
    else:
        done = "backed up to" if mode == "backup" else "restored from"
        print(f"{done} {path}: verified by replay: {verified.describe()}")
    return 0


def replay(store_url: str, as_json: bool) -> int:
    store = open_store(store_url)
    try:
        projection = rebuild(store)
    finally:
        store.close()
    stats = projection.stats()
    result = {
        "events": projection.event_count,
        "position": projection.position,
        "agents": stats.agents,
        "in_flight": stats.in_flight,
        "tasks_by_status": stats.tasks_by_status,
        "workflows": len(projection.workflows.workflows),
        "executions_by_status": executions_by_status(projection),
    }
    if as_json:
        print(json.dumps(result))
    else:
        print(f"replayed {result['events']} events up to notification {result['position']}")
        print(
            f"agents: {stats.agents} ({stats.agents_enabled} enabled), in flight: {stats.in_flight}"
        )
        for status, count in stats.tasks_by_status.items():
            print(f"  {status:<10} {count}")
        executions = result["executions_by_status"]
        print(f"workflows: {result['workflows']}, executions: {sum(executions.values())}")
        for status, count in executions.items():
            print(f"  {status:<10} {count}")
    return 0


def executions_by_status(projection: FleetProjection) -> dict[str, int]:
    counts: dict[str, int] = {}
    for view in projection.workflows.executions.values():
        counts[view.status] = counts.get(view.status, 0) + 1
    return dict(sorted(counts.items()))


if __name__ == "__main__":
    sys.exit(main())
