"""Local ports for the services `whoosh up` starts: is one free, or pick a free one."""

from __future__ import annotations

import socket


def family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def port_free(host: str, port: int) -> bool:
    """Bind as a server would (with SO_REUSEADDR, as Go and uvicorn set it, so a port in
    TIME_WAIT counts as free)."""
    with socket.socket(family(host), socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str) -> int:
    with socket.socket(family(host), socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def listening(host: str, port: int) -> socket.socket:
    """A socket listening on `port`, or on a free port when that one is taken or 0; the
    caller keeps it, so nothing can take the port between this and its use."""
    sock = socket.socket(family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.bind((host, 0))
    sock.listen(128)
    return sock
