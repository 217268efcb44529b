"""`whoosh up`'s ports: a listening socket on the configured port, or on a free one."""

from __future__ import annotations

import socket

from whoosh_cli.ports import listening


def test_the_configured_port_when_free_and_another_when_taken() -> None:
    first = listening("127.0.0.1", 0)
    try:
        port = first.getsockname()[1]
        assert port != 0
        second = listening("127.0.0.1", port)  # taken by `first`: a free one instead
        try:
            assert second.getsockname()[1] not in (0, port)
        finally:
            second.close()
    finally:
        first.close()
    again = listening("127.0.0.1", port)  # free again: that very port
    try:
        assert again.getsockname()[1] == port
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass  # it listens already: a connection is accepted by the kernel
    finally:
        again.close()
