"""Event-store factory: one store URL in, an `eventsourcing` environment out.

`sqlite:///PATH` is the embedded default; `postgresql://USER[:PASS]@HOST[:PORT]/DB`
(optionally `?schema=NAME`) is the production store, where several coordinators
share one database and optimistic concurrency keeps them honest.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse


class StoreUrlError(ValueError):
    """The store URL cannot be understood."""


def store_env(url: str) -> dict[str, str]:
    """The `eventsourcing` environment variables that select and open this store."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = unquote(parsed.path)
        if parsed.netloc:  # sqlite://relative/path
            path = parsed.netloc + path
        elif path.startswith("//"):  # sqlite:////abs/path
            path = path[1:]
        if not path or path == "/":
            raise StoreUrlError(f"store URL {url!r}: no SQLite file path (sqlite:///PATH)")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": path,
            "SQLITE_LOCK_TIMEOUT": "10",
        }
    if parsed.scheme in ("postgres", "postgresql", "postgresql+psycopg"):
        dbname = parsed.path.lstrip("/")
        if not dbname:
            raise StoreUrlError(f"store URL {url!r}: no database name (postgresql://HOST/DB)")
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": dbname,
            "POSTGRES_HOST": parsed.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parsed.port or 5432),
            "POSTGRES_USER": unquote(parsed.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parsed.password or ""),
            "POSTGRES_CONNECT_TIMEOUT": "5",
            "POSTGRES_LOCK_TIMEOUT": "5",
            "POSTGRES_POOL_SIZE": "4",
        }
        schema = parse_qs(parsed.query).get("schema")
        if schema:
            env["POSTGRES_SCHEMA"] = schema[0]
        return env
    raise StoreUrlError(
        f"store URL {url!r}: unsupported scheme {parsed.scheme!r} (use sqlite:/// or postgresql://)"
    )


def describe_store(url: str) -> str:
    """The URL without its password, for banners and logs."""
    parsed = urlparse(url)
    if parsed.password:
        netloc = parsed.netloc.replace(f":{parsed.password}@", ":***@")
        return parsed._replace(netloc=netloc).geturl()
    return url
