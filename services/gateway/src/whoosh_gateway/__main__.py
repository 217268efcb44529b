"""`whoosh-gateway`: serve the REST API and WebSocket on NATS, until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import logging
import socket
import sys

import uvicorn
from whoosh_shared.contract.config import ConfigError, load_config
from whoosh_shared.contract.gateway_settings import GatewaySettings
from whoosh_shared.contract.limits import LimitSettings
from whoosh_shared.runtime import event_loop, nats_auth
from whoosh_shared.runtime.bus import BusError
from whoosh_shared.runtime.logs import setup_logging

from whoosh_gateway.app import create_app
from whoosh_gateway.submit_size import body_limit

log = logging.getLogger("whoosh_gateway")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="whoosh-gateway", description=__doc__)
    parser.add_argument("--config", help="whoosh.yaml (default: $WHOOSH_CONFIG, ./whoosh.yaml)")
    parser.add_argument("--nats", help="NATS URL (default: from the config)")
    parser.add_argument("--host", help="listen address (default: gateway.host)")
    parser.add_argument("--port", type=int, help="listen port (default: gateway.port; 0: free)")
    parser.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="local development only: no API keys, every caller is admin (loopback only)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = load_config(args.config)
        nats_auth.configure(nats_auth.for_config(config))
        overrides = {
            key: value
            for key, value in (("host", args.host), ("port", args.port))
            if value is not None
        }
        if args.insecure_no_auth:
            overrides["insecure_no_auth"] = True
        settings = GatewaySettings.model_validate({**config.gateway.model_dump(), **overrides})
    except (ConfigError, ValueError) as exc:
        print(f"whoosh-gateway: {exc}", file=sys.stderr)
        return 2
    setup_logging("gateway")
    try:
        nats_url = args.nats or config.nats.client_url()
        return event_loop.run(serve(settings, nats_url, config.limits))
    except BusError as exc:
        print(f"whoosh-gateway: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"whoosh-gateway: cannot listen on {settings.host}:{settings.port}: {exc}",
              file=sys.stderr)  # fmt: skip
        return 1


async def serve(
    settings: GatewaySettings, nats_url: str, limits: LimitSettings | None = None
) -> int:
    limits = limits or LimitSettings()
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio turns Nagle off only on sockets whose proto says TCP,
    # and without that every keep-alive response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if settings.socket_send_buffer_bytes:  # accepted connections inherit it
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, settings.socket_send_buffer_bytes)
    sock.bind((settings.host, settings.port))
    port = sock.getsockname()[1]
    settings = settings.model_copy(update={"port": port})
    app = create_app(settings, nats_url, limits=limits)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, ws="websockets-sansio",
                       lifespan="on", ws_max_size=body_limit(4 * 1024 * 1024, limits))
    )  # fmt: skip
    auth = "DISABLED (insecure_no_auth: local development)" if settings.insecure_no_auth else "on"
    log.info(
        "gateway ready at %s (docs %s/docs), auth %s",
        settings.url(),
        settings.url(),
        auth,
        extra={"port": port},
    )
    await server.serve(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
