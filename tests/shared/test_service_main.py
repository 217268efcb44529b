"""Every service's entry point: its common options, and the exit codes supervisors act on."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path

import pytest
from whoosh_shared.contract.config import WhooshConfig
from whoosh_shared.runtime import service_main
from whoosh_shared.runtime.bus import BusError


class PortTaken(RuntimeError):
    """A service's own start-up error (as the monitor's taken metrics port)."""


class FakeService:
    """Runs until asked to stop; or fails at start with `failure`."""

    def __init__(self, failure: Exception | None = None, signal_self: bool = False) -> None:
        self.failure = failure
        self.signal_self = signal_self
        self.stop_requests = 0
        self._stopped: asyncio.Event | None = None

    def request_stop(self) -> None:
        self.stop_requests += 1
        if self._stopped is not None:
            self._stopped.set()

    async def run(self) -> None:
        if self.failure is not None:
            raise self.failure
        self._stopped = asyncio.Event()
        if self.signal_self:  # as `kill <pid>` would
            os.kill(os.getpid(), signal.SIGTERM)
        else:
            self.request_stop()
        await asyncio.wait_for(self._stopped.wait(), timeout=5)


@pytest.fixture
def logged_as(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names run_service set logging up for; the test run's own logging is left alone."""
    names: list[str] = []
    monkeypatch.setattr(service_main, "setup_logging", names.append)
    return names


@pytest.fixture
def config_file(tmp_path: Path) -> str:
    path = tmp_path / "whoosh.yaml"
    path.write_text("nats:\n  url: nats://127.0.0.1:4999\n")
    return str(path)


def test_every_service_takes_config_and_nats() -> None:
    args = service_main.service_parser("whoosh-x", "X.").parse_args(
        ["--config", "w.yaml", "--nats", "nats://h:1"]
    )
    assert (args.config, args.nats) == ("w.yaml", "nats://h:1")
    with pytest.raises(SystemExit):
        service_main.service_parser("whoosh-x", "X.").parse_args(["--executor-id", "e"])


def test_an_executor_also_takes_its_id_with_its_default_in_the_help() -> None:
    parser = service_main.executor_parser("whoosh-x", "X.", "cli")
    assert parser.parse_args(["--executor-id", "e1"]).executor_id == "e1"
    assert parser.parse_args([]).executor_id is None
    [option] = [a for a in parser._actions if "--executor-id" in a.option_strings]
    assert option.help is not None and option.help.endswith("(default: cli-HOST-PID)")


def test_an_orderly_stop_exits_0_with_the_service_built_from_the_configuration(
    logged_as: list[str], config_file: str
) -> None:
    built: list[WhooshConfig] = []

    def build(config: WhooshConfig) -> FakeService:
        built.append(config)
        return FakeService()

    code = service_main.run_service("svc", config_file, build, log=logging.getLogger("t"))
    assert code == 0
    assert logged_as == ["svc"]
    assert built[0].nats.url == "nats://127.0.0.1:4999"


def test_sigterm_asks_the_service_to_stop(logged_as: list[str], config_file: str) -> None:
    service = FakeService(signal_self=True)
    code = service_main.run_service(
        "svc", config_file, lambda _: service, log=logging.getLogger("t")
    )
    assert code == 0
    assert service.stop_requests == 1


def test_a_configuration_that_cannot_be_read_exits_2_saying_why(
    logged_as: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere.yaml"

    def build(config: WhooshConfig) -> FakeService:
        raise AssertionError("no service is built from a bad configuration")

    code = service_main.run_service("svc", str(missing), build, log=logging.getLogger("t"))
    assert code == 2
    assert f"{missing}: no such configuration file" in capsys.readouterr().err


@pytest.mark.parametrize(
    "failure", [BusError("cannot connect to NATS at nats://h:1"), PortTaken("port 9464 taken")]
)
def test_an_unreachable_bus_or_a_named_start_failure_exits_1_in_one_log_line(
    failure: Exception,
    logged_as: list[str],
    config_file: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("whoosh_svc")
    code = service_main.run_service(
        "svc", config_file, lambda _: FakeService(failure), log=log, fatal=(PortTaken,)
    )
    assert code == 1
    [record] = [r for r in caplog.records if r.name == "whoosh_svc"]
    assert record.levelno == logging.ERROR
    assert record.getMessage() == str(failure)


def test_an_unexpected_failure_is_not_hidden(logged_as: list[str], config_file: str) -> None:
    with pytest.raises(ValueError, match="a bug"):
        service_main.run_service(
            "svc",
            config_file,
            lambda _: FakeService(ValueError("a bug")),
            log=logging.getLogger("t"),
        )


def test_a_service_may_prepare_the_loop_before_serving(
    logged_as: list[str], config_file: str
) -> None:
    prepared: list[bool] = []

    async def serve(service: FakeService) -> None:
        prepared.append(True)
        await service_main.serve(service)

    code = service_main.run_service(
        "svc", config_file, lambda _: FakeService(), log=logging.getLogger("t"), serve=serve
    )
    assert code == 0 and prepared == [True]
