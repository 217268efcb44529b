"""Container healthcheck for WHOOSH services, until they serve health endpoints of their own.

    python /app/healthcheck.py coordinator [NATS_URL]   a coordinator answers a stats query
    python /app/healthcheck.py bus [NATS_URL]           the NATS server answers (executors)
    python /app/healthcheck.py monitor [HEALTH_URL]     the monitor's /healthz answers
    python /app/healthcheck.py gateway [READY_URL]      the gateway's /readyz answers (it
                                                        reaches NATS and a coordinator)

The NATS URL defaults to the service's own configuration (whoosh.yaml, WHOOSH_NATS_URL);
the monitor's to http://127.0.0.1:<monitoring.metrics_port>/healthz, the gateway's to
http://127.0.0.1:<gateway.port>/readyz.
Exit status 0: healthy; 1: not, with the reason on stderr. Coordinators answer queries as
one queue group, so `coordinator` proves that the group serves, not which replica did.
"""

from __future__ import annotations

import asyncio
import sys
import urllib.error
import urllib.request

import nats
import nats.errors
from whoosh_shared.contract.config import load_config
from whoosh_shared.contract.queries import GetStats, QueryReply
from whoosh_shared.runtime.nats_auth import client_options

MODES = ("coordinator", "bus", "monitor", "gateway")
TIMEOUT_S = 3.0


class Unhealthy(RuntimeError):
    """The reason the service is not healthy, in one line."""


async def check(mode: str, url: str) -> None:
    errors: list[Exception] = []

    async def keep_error(exc: Exception) -> None:  # instead of nats-py logging every try
        errors.append(exc)

    try:
        nc = await nats.connect(
            url,
            name=f"whoosh-healthcheck-{mode}",
            connect_timeout=TIMEOUT_S,
            allow_reconnect=False,
            max_reconnect_attempts=1,  # one try per server (0 would mean: for ever)
            reconnect_time_wait=0.1,
            error_cb=keep_error,
            **credentials(),
        )
    except Exception as exc:
        reason = errors[-1] if errors else exc
        raise Unhealthy(f"cannot connect to NATS at {url}: {reason}") from None
    try:
        if mode == "bus":
            await nc.flush(TIMEOUT_S)
            return
        payload = GetStats().model_dump_json().encode()
        try:
            msg = await nc.request(GetStats.SUBJECT, payload, TIMEOUT_S)
        except nats.errors.NoRespondersError:
            raise Unhealthy(f"no coordinator answers on {GetStats.SUBJECT}") from None
        except nats.errors.TimeoutError:
            raise Unhealthy(f"no answer on {GetStats.SUBJECT} within {TIMEOUT_S:g}s") from None
        reply = QueryReply.model_validate_json(msg.data)
        if reply.status != "ok":
            raise Unhealthy(f"stats query answered {reply.code}: {reply.reason}")
    finally:
        await nc.close()


def credentials() -> dict:
    """The service's NATS credential and TLS (nats.* settings, e.g. WHOOSH__NATS__USER)."""
    config = load_config()
    return client_options(config.nats, config.data_dir)


def check_http(url: str) -> None:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            if response.status != 200:
                raise Unhealthy(f"{url} answered HTTP {response.status}")
    except urllib.error.URLError as exc:
        raise Unhealthy(f"{url}: {exc.reason}") from None


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in MODES or len(argv) > 2:
        print(f"usage: healthcheck.py {{{'|'.join(MODES)}}} [NATS_URL|HEALTH_URL]", file=sys.stderr)
        return 2
    try:
        if argv[0] == "monitor":
            port = load_config().monitoring.metrics_port if len(argv) == 1 else 0
            check_http(argv[1] if len(argv) == 2 else f"http://127.0.0.1:{port}/healthz")
            return 0
        if argv[0] == "gateway":
            port = load_config().gateway.port if len(argv) == 1 else 0
            check_http(argv[1] if len(argv) == 2 else f"http://127.0.0.1:{port}/readyz")
            return 0
        url = argv[1] if len(argv) == 2 else load_config().nats.client_url()
        asyncio.run(asyncio.wait_for(check(argv[0], url), 3 * TIMEOUT_S))
    except Unhealthy as exc:
        print(f"unhealthy ({argv[0]}): {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a broken config, a garbled reply, the overall timeout
        print(f"unhealthy ({argv[0]}): {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
