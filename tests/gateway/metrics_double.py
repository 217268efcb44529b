"""A stand-in for the monitor's /metrics on a loopback port, for the gateway's proxy tests.

Its healthy answer is real: a prometheus_client registry rendered by prometheus_client's
own content negotiation (classic text, or OpenMetrics when the Accept header asks), as
the monitor's endpoint does. It can also fail on demand: answer HTTP 500, or stall
longer than the gateway waits. Runs on daemon threads so a stalled answer never holds
up the test's teardown.
"""

from __future__ import annotations

import threading
import time
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.exposition import choose_encoder

SERIES = "whoosh_proxy_test_scrapes_total"


class Mode(Enum):
    OK = "ok"
    ERROR = "error"  # HTTP 500
    SLOW = "slow"  # stalls for `stall_s` before answering


class MetricsDouble:
    """`url` serves /metrics in the current `mode`; `stop()` leaves the port refusing."""

    def __init__(self, stall_s: float = 3.0) -> None:
        self.mode = Mode.OK
        self.stall_s = stall_s
        self.registry = CollectorRegistry()
        self.scrapes = Counter("whoosh_proxy_test_scrapes", "scrapes", registry=self.registry)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/metrics"

    def start(self) -> MetricsDouble:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                double.answer(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def answer(self, request: BaseHTTPRequestHandler) -> None:
        if self.mode is Mode.SLOW:
            time.sleep(self.stall_s)
        if self.mode is Mode.ERROR:
            self._send(request, 500, b"boom\n", "text/plain")
            return
        self.scrapes.inc()
        encoder, content_type = choose_encoder(request.headers.get("Accept"))
        self._send(request, 200, encoder(self.registry), content_type)

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str) -> None:
        try:
            request.send_response(status)
            request.send_header("Content-Type", ctype)
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            request.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the gateway gave up on a stall
            pass
