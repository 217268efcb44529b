"""The monitor's HTTP endpoint: `/metrics` (Prometheus text format) and `/healthz`.

prometheus_client's WSGI app in a threaded stdlib server on its own daemon thread, so a
slow scraper never holds up the monitor's loop; request logging off (quiet logs).
"""

from __future__ import annotations

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
    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        self._metrics = make_wsgi_app(registry)
        self.host = host
        self.port = port
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def start(self) -> None:
        """Bind (an OSError names a taken port) and serve on a daemon thread."""
        try:
            self._server = make_server(
                self.host, self.port, self._app, ThreadingWSGIServer, handler_class=_Quiet
            )
        except OSError as exc:
            raise MetricsPortError(
                f"cannot serve metrics on {self.host}:{self.port}: {exc.strerror or exc} "
                "(set monitoring.metrics_port, 0 for a free port)"
            ) from None
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-http", daemon=True
        )
        self._thread.start()

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
