"""One GET to the gateway with the standard library, for commands that must start fast.

`whoosh status` is what people type to see whether WHOOSH is up, often in scripts and
prompts; importing httpx and the contract's query models cost it more than its whole
300 ms goal on a quiet machine. `urllib` is already loaded by the standard library's
own imports, honours the same proxy variables as httpx, and one request needs nothing
more. Errors read exactly as `gateway_session`'s (same words, same exit codes).
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from typing import Any

from whoosh_cli.errors import NOT_RUNNING_HINT, CliError, UnreachableError

TIMEOUT_S = 30.0
API = "/api/v1"


def get_json(url: str, api_key: str | None, path: str, timeout: float = TIMEOUT_S) -> Any:
    """The decoded JSON answer of `GET url/api/v1/path`; a CliError in words otherwise."""
    request = urllib.request.Request(f"{url}{API}{path}", headers=_headers(api_key))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        code, message = _error_of(exc.code, exc.read(), exc.reason)
        raise CliError(f"{code}: {message}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ConnectionRefusedError | socket.gaierror | FileNotFoundError):
            raise UnreachableError(
                f"cannot reach the gateway at {url}: {NOT_RUNNING_HINT}"
            ) from None
        raise UnreachableError(f"the gateway at {url} did not answer: {exc.reason}") from None
    except (TimeoutError, ConnectionError) as exc:
        raise UnreachableError(f"the gateway at {url} did not answer: {exc}") from None
    try:
        return json.loads(body)
    except ValueError:
        raise CliError(f"unexpected answer from the gateway to {path}: not JSON") from None


def _headers(api_key: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json", "User-Agent": "whoosh-cli"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def _error_of(status: int, body: bytes, reason: object) -> tuple[str, str]:
    """The gateway's error shape `{"error": {"code", "message"}}`, or the status line."""
    try:
        error = json.loads(body)["error"]
        return str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        text = body.decode("utf-8", errors="replace")[:200]
        return f"http_{status}", text or str(reason)
