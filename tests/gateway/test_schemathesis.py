"""Generated requests against the OpenAPI document: valid and deliberately invalid data for
every operation; no answer may be a 5xx, and every answer must match the document.

Its own small stack (NATS, coordinator, gateway; no executor, no agent), so generated
prompts are never run anywhere and generated deletes touch nothing other tests use.
Auth is off on this gateway (its roles are covered by test_auth's table).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from harness import NatsServer, ServiceProcess, free_port, wait_for_port
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS

CHECK_NAMES = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
)
EXAMPLES = 25
CHECK_FUNCTIONS = [check for check in CHECKS.get_all() if check.__name__ in CHECK_NAMES]


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("fuzz")
    nats = NatsServer(root / "nats")
    nats.start()
    env = {"WHOOSH_CONFIG": os.devnull}
    store = f"sqlite:///{root / 'events.sqlite'}"
    port = free_port()
    processes = [
        ServiceProcess(
            "whoosh_coordinator", ["serve", "--nats", nats.url, "--store", store], env,
            root / "coordinator.log",
        ).start(),
        ServiceProcess(
            "whoosh_gateway", ["--nats", nats.url, "--port", str(port), "--insecure-no-auth"],
            env, root / "gateway.log",
        ).start(),
    ]  # fmt: skip
    try:
        wait_for_port(port, timeout=30)
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            if httpx.get(f"{url}/readyz").status_code == 200:
                break
        yield url
    finally:
        for proc in reversed(processes):
            proc.stop()
        nats.stop()


@pytest.fixture(scope="module")
def api_schema(gateway_url: str) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_url(f"{gateway_url}/openapi.json")
    schema.config.update(base_url=gateway_url, request_timeout=10)
    return schema


def operation_cases() -> list[tuple[str, GenerationMode]]:
    """Every operation of the document (read without a gateway) with valid data, and those
    that take any input with invalid data too."""
    from whoosh_gateway.app import create_app
    from whoosh_shared.contract.gateway_settings import GatewaySettings

    document = create_app(GatewaySettings(), "nats://127.0.0.1:1").openapi()
    cases = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            label = f"{method.upper()} {path}"
            cases.append((label, GenerationMode.POSITIVE))
            if operation.get("parameters") or operation.get("requestBody"):
                cases.append((label, GenerationMode.NEGATIVE))
    return cases


@pytest.mark.parametrize(("label", "mode"), operation_cases(), ids=lambda v: str(v))
def test_no_server_errors_and_answers_match_the_document(
    api_schema: schemathesis.BaseSchema, label: str, mode: GenerationMode
) -> None:
    """Driven through Hypothesis directly: schemathesis's own pytest plugin does not run on
    this pytest version."""
    operation = api_schema.find_operation_by_label(label)
    assert operation is not None, label

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
        database=None, derandomize=True,
    )  # fmt: skip
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=CHECK_FUNCTIONS)

    run()
