"""Where the `whoosh` command finds its gateway and API key, and where `whoosh up` leaves
the first admin key for local commands.

Key: `--api-key`, else `WHOOSH_API_KEY`, else the CLI config file, else the key file a
local `whoosh up` wrote in its data dir (`admin.key`, readable by its owner only).
Gateway: `--gateway`, else `WHOOSH_GATEWAY_URL`, else the CLI config file, else the URL a
running `whoosh up` recorded in endpoints.json, else `gateway.host:port` of whoosh.yaml.
The CLI config file is `$WHOOSH_CLI_CONFIG`, else `~/.config/whoosh/cli.yaml`, with the
keys `gateway_url` and `api_key` (so commands work from any machine).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import yaml
from pydantic import ValidationError
from whoosh_shared.contract.agents import Strict

from whoosh_cli.errors import UsageError

KEY_FILE = "admin.key"
API_KEY_ENV = "WHOOSH_API_KEY"
GATEWAY_ENV = "WHOOSH_GATEWAY_URL"
CLI_CONFIG_ENV = "WHOOSH_CLI_CONFIG"


class CliConfigFile(Strict):
    gateway_url: str | None = None
    api_key: str | None = None


def cli_config_path(environ: Mapping[str, str]) -> Path:
    chosen = environ.get(CLI_CONFIG_ENV)
    if chosen:
        return Path(chosen).expanduser()
    return Path(environ.get("HOME", "~")).expanduser() / ".config" / "whoosh" / "cli.yaml"


def read_cli_config(environ: Mapping[str, str]) -> CliConfigFile:
    path = cli_config_path(environ)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return CliConfigFile()
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"{path}: cannot read the CLI config: {exc}") from None
    try:
        return CliConfigFile.model_validate(data or {})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise UsageError(f"{path}: {problems}") from None


def write_key_file(data_dir: Path, token: str) -> Path:
    """The admin key for local commands, readable by its owner only (written atomically)."""
    path = data_dir / KEY_FILE
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    tmp.replace(path)
    return path


def read_key_file(data_dir: Path) -> str | None:
    try:
        return (data_dir / KEY_FILE).read_text().strip() or None
    except OSError:
        return None
