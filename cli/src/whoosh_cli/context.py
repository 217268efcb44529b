"""What every command needs: the loaded configuration and where NATS is.

Resolved once per invocation from the global options (`--config`, `--nats`,
`--json`), the environment and the data dir, so each command stays about its
own job.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from whoosh_shared.config import DEFAULT_CONFIG_NAME, ConfigError, WhooshConfig, load_config

from whoosh_cli.endpoints import read_nats_url
from whoosh_cli.errors import EXIT_USAGE, CliError


@dataclass(frozen=True)
class CliContext:
    """Configuration plus the options every command shares."""

    config: WhooshConfig
    config_path: Path | None
    nats_override: str | None
    json: bool

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir.resolve()

    def nats_url(self) -> str:
        """--nats, else WHOOSH_NATS_URL / nats.url, else endpoints.json, else host:port."""
        if self.nats_override:
            return self.nats_override
        if self.config.nats.url:
            return self.config.nats.url
        return read_nats_url(self.data_dir) or self.config.nats.client_url()


def config_path_from(option: str | None) -> Path | None:
    """--config, else $WHOOSH_CONFIG, else ./whoosh.yaml if present (as load_config does)."""
    chosen = option or os.environ.get("WHOOSH_CONFIG")
    if chosen:
        return Path(chosen).expanduser().resolve()
    default = Path(DEFAULT_CONFIG_NAME)
    return default.resolve() if default.is_file() else None


def load_context(args: argparse.Namespace) -> CliContext:
    """Load and validate the configuration; a bad file is a usage error (exit 2)."""
    path = config_path_from(getattr(args, "config", None))
    try:
        config = load_config(path)
    except ConfigError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    return CliContext(
        config=config,
        config_path=path,
        nats_override=getattr(args, "nats", None),
        json=bool(getattr(args, "json", False)),
    )
