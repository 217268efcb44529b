"""The monitor's HTTP endpoint: `/metrics` (Prometheus text format) and `/healthz`.

prometheus_client's WSGI app in a threaded stdlib server on its own daemon thread, so a
slow scraper never holds up the monitor's loop; request logging off (quiet logs). It binds
its host and port, or serves on a listening socket it inherited (`whoosh up` binds the
port once and hands the socket to every monitor it starts, as systemd's socket activation
does, so a restart never finds the port taken).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

StartResponse = Callable[..., Any]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class MetricsPortError(RuntimeError):
    """The metrics endpoint cannot listen where it is configured to."""


class MetricsServer:
    def __init__(
        self, registry: CollectorRegistry, host: str, port: int, fd: int | None = None
    ) -> None:
        self._metrics = make_wsgi_app(registry)
        self.host = host
        self.port = port
        self.fd = fd
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def start(self) -> None:
        """Bind (an OSError names a taken port), or take the inherited socket, and serve on a
        daemon thread."""
        if self.fd is None:
            self._server = self._bind()
        else:
            self._server = _on_inherited(self.fd, self._app)
            self.host = self._server.server_name
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-http", daemon=True
        )
        self._thread.start()

    def _bind(self) -> WSGIServer:
        try:
            return make_server(
                self.host, self.port, self._app, ThreadingWSGIServer, handler_class=_Quiet
            )
        except OSError as exc:
            raise MetricsPortError(
                f"cannot serve metrics on {self.host}:{self.port}: {exc.strerror or exc} "
                "(set monitoring.metrics_port, 0 for a free port)"
            ) from None

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return self._metrics(environ, start_response)
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /metrics\n"]


def _on_inherited(fd: int, app: Callable[..., Iterable[bytes]]) -> WSGIServer:
    """A server on a socket some parent bound and listens on (descriptor `fd`)."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise MetricsPortError(
            f"cannot serve metrics on inherited descriptor {fd}: {exc.strerror or exc}"
        ) from None
    server = ThreadingWSGIServer(("", 0), _Quiet, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    server.server_address = sock.getsockname()
    server.server_name, server.server_port = server.server_address[:2]
    server.setup_environ()
    server.set_app(app)
    return server
