"""NATS credentials: how every WHOOSH process (and `whoosh --nats`) authenticates.

NATS is WHOOSH's control plane: whoever can publish there can mint keys and register
agents. So every client presents the credential `nats:` in whoosh.yaml names -- a
user and password, a token (or a file holding one), a `.creds` file or an nkey seed --
and optionally TLS (a CA to check the server, a client certificate and key).

The process's entry point calls `configure` once with its configuration; every `Bus` it
makes then connects with those options. A bundled `whoosh up` generates a token on first
start (`nats.token` in the data dir, 0600) and requires it; its processes find it there.
"""

from __future__ import annotations

import secrets
import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from whoosh_shared.contract.config import WhooshConfig
from whoosh_shared.contract.nats_credentials import TOKEN_FILE_NAME, NatsCredentials, NatsTls

_options: dict[str, Any] = {}


def client_options(
    nats: NatsCredentials, data_dir: Path | None = None, url: str | None = None
) -> dict[str, Any]:
    """Keyword arguments for nats-py's connect (and faststream's broker).

    With no credential configured, the token a bundled `whoosh up` generated in
    `data_dir` is used when there is one -- for a server on this machine only (`url`'s
    hosts all loopback), so the local token is never sent to another server."""
    options: dict[str, Any] = {}
    if nats.user:
        options.update(user=nats.user, password=nats.password or "")
    elif nats.token:
        options["token"] = nats.token
    elif nats.token_file:
        options["token"] = read_token(Path(nats.token_file))
    elif nats.creds_file:
        options["user_credentials"] = nats.creds_file
    elif nats.nkeys_seed:
        options["nkeys_seed"] = nats.nkeys_seed
    elif (
        data_dir is not None
        and (data_dir / TOKEN_FILE_NAME).is_file()
        and (url is None or _all_loopback(url))
    ):
        options["token"] = read_token(data_dir / TOKEN_FILE_NAME)
    if nats.tls is not None:
        options["tls"] = tls_context(nats.tls)
    return options


def _all_loopback(url: str) -> bool:
    hosts = [urlsplit(s.strip() if "://" in s else f"nats://{s.strip()}").hostname
             for s in url.split(",") if s.strip()]  # fmt: skip
    return bool(hosts) and all(h in ("127.0.0.1", "localhost", "::1") for h in hosts)


def tls_context(tls: NatsTls) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=tls.ca)
    if tls.cert and tls.key:
        context.load_cert_chain(tls.cert, tls.key)
    return context


def read_token(path: Path) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"cannot read the NATS token file {path}: {exc.strerror}") from None
    if not token:
        raise ValueError(f"the NATS token file {path} is empty")
    return token


def for_config(config: WhooshConfig, url: str | None = None) -> dict[str, Any]:
    """Connect options for this installation's NATS, or the one at `url`."""
    return client_options(config.nats, config.data_dir, url or config.nats.client_url())


def configure(options: dict[str, Any]) -> None:
    """This process's connect options (from `client_options`), used by every Bus."""
    _options.clear()
    _options.update(options)


def current() -> dict[str, Any]:
    return dict(_options)


def ensure_token(data_dir: Path) -> tuple[Path, str]:
    """The bundled server's token: generated on first start, kept 0600 in the data dir."""
    path = data_dir / TOKEN_FILE_NAME
    if path.is_file():
        path.chmod(0o600)
        return path, read_token(path)
    token = secrets.token_urlsafe(32)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = tmp.open("x", encoding="utf-8")
    tmp.chmod(0o600)
    with fd:
        fd.write(token + "\n")
    tmp.replace(path)
    return path, token
