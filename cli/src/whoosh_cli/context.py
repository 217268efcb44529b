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

from whoosh_shared.contract.config import (
    DEFAULT_CONFIG_NAME,
    ConfigError,
    WhooshConfig,
    load_config,
)
from whoosh_shared.runtime import nats_auth

from whoosh_cli.credentials import API_KEY_ENV, GATEWAY_ENV, read_cli_config, read_key_file
from whoosh_cli.endpoints import read_gateway_url, read_nats_url
from whoosh_cli.errors import EXIT_USAGE, CliError


@dataclass(frozen=True)
class CliContext:
    """Configuration plus the options every command shares."""

    config: WhooshConfig
    config_path: Path | None
    nats_override: str | None
    json: bool
    gateway_override: str | None = None
    api_key_override: str | None = None

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

    @property
    def uses_gateway(self) -> bool:
        """Commands go to the gateway, unless `--nats` names a bus or no gateway runs.

        The NATS path is for operators on the cluster's own network (reaching NATS is the
        credential there) and for setups with `gateway.enabled: false`."""
        return self.gateway_override is not None or (
            self.nats_override is None and self.config.gateway.enabled
        )

    def gateway_url(self) -> str:
        """--gateway, $WHOOSH_GATEWAY_URL, the CLI config file, a running `whoosh up`, the
        config's gateway.host:port."""
        chosen = (
            self.gateway_override
            or os.environ.get(GATEWAY_ENV)
            or read_cli_config(os.environ).gateway_url
            or read_gateway_url(self.data_dir)
        )
        if chosen:
            return chosen.rstrip("/")
        settings = self.config.gateway
        if settings.public_url is None and settings.host in ("0.0.0.0", "::"):
            return f"http://127.0.0.1:{settings.port}"
        return settings.url()

    def api_key(self) -> str | None:
        """--api-key, $WHOOSH_API_KEY, the CLI config file, the key a local `up` saved."""
        return (
            self.api_key_override
            or os.environ.get(API_KEY_ENV)
            or read_cli_config(os.environ).api_key
            or read_key_file(self.data_dir)
        )


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
        nats_auth.configure(nats_auth.for_config(config, getattr(args, "nats", None)))
    except (ConfigError, ValueError) as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    return CliContext(
        config=config,
        config_path=path,
        nats_override=getattr(args, "nats", None),
        json=bool(getattr(args, "json", False)),
        gateway_override=getattr(args, "gateway", None),
        api_key_override=getattr(args, "api_key", None),
    )
