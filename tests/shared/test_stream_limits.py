"""The streams' byte and age limits come from whoosh.yaml (`nats.streams`), on a real
nats-server: created with them, and brought in line by the coordinator's update."""

from __future__ import annotations

from pathlib import Path

from harness import NatsServer
from nats.js.api import DiscardPolicy
from whoosh_shared.contract import subjects
from whoosh_shared.contract.config import parse_config_text
from whoosh_shared.runtime.bus import Bus, ensure_streams

CONFIG = """
nats:
  streams:
    events_max_bytes: 2097152
    events_max_age_s: 3600
    work_max_bytes: 1048576
"""


async def test_stream_limits_from_the_configuration(tmp_path: Path) -> None:
    limits = parse_config_text(CONFIG).nats.streams
    server = NatsServer(tmp_path / "nats")
    server.start()
    bus = Bus(server.url, "test-limits")
    try:
        await bus.connect()
        await ensure_streams(bus.js)  # created with the defaults (an executor first)
        await ensure_streams(bus.js, update=True, limits=limits)  # then the coordinator
        events = (await bus.js.stream_info(subjects.EVENTS_STREAM)).config
        work = (await bus.js.stream_info(subjects.WORK_STREAM)).config
        assert (events.max_bytes, events.max_age, events.discard) == (
            2097152, 3600, DiscardPolicy.OLD)  # fmt: skip
        assert (work.max_bytes, work.discard) == (1048576, DiscardPolicy.NEW)
    finally:
        await bus.close()
        server.stop()
