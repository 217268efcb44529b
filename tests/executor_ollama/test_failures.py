"""Failure classification: pure functions over status codes, messages and exceptions."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey, RequestInfo
from multidict import CIMultiDict, CIMultiDictProxy
from whoosh_executor_ollama.failures import (
    Decision,
    LlmError,
    StreamCut,
    classify_exception,
    classify_status,
    classify_stream_error,
    error_text,
)
from yarl import URL

URL_ = URL("http://127.0.0.1:1/api/chat")
REQUEST = RequestInfo(URL_, "POST", CIMultiDictProxy(CIMultiDict()), URL_)
KEY = ConnectionKey("127.0.0.1", 1, False, True, None, None, None)


@pytest.mark.parametrize(
    ("status", "decision"),
    [
        (404, Decision.REJECT_FOR_AGENT),
        (401, Decision.REJECT_FOR_AGENT),
        (400, Decision.FAIL_NO_RETRY),
        (422, Decision.FAIL_NO_RETRY),
        (429, Decision.RETRY_ELSEWHERE),
        (500, Decision.RETRY_ELSEWHERE),
        (502, Decision.RETRY_ELSEWHERE),
        (503, Decision.RETRY_ELSEWHERE),
    ],
)
def test_status_decisions(status: int, decision: Decision) -> None:
    assert classify_status(status).decision is decision


def test_404_names_the_model_and_503_opens_the_circuit() -> None:
    failure = classify_status(404, b'{"error": "model \'x\' not found"}', model="phi3:mini")
    assert "phi3:mini" in failure.reason and "not found" in failure.reason
    assert not failure.backend_fault and failure.retryable
    busy = classify_status(503, '{"error": "server busy"}')
    assert busy.open_circuit and busy.backend_fault
    assert not classify_status(429).open_circuit and classify_status(429).backend_fault
    assert not classify_status(400).retryable


def test_error_text_shapes() -> None:
    assert error_text('{"error": "boom"}') == "boom"
    assert error_text('{"error": {"message": "deep", "type": "x"}}') == "deep"
    assert error_text("plain text\n") == "plain text"


@pytest.mark.parametrize(
    ("message", "decision"),
    [
        ("an error was encountered while running the model", Decision.FAIL_NO_RETRY),
        ("invalid format", Decision.FAIL_NO_RETRY),
        ("server busy, please try again.", Decision.RETRY_ELSEWHERE),
        ("Server overloaded", Decision.RETRY_ELSEWHERE),
    ],
)
def test_stream_error_lines(message: str, decision: Decision) -> None:
    assert classify_stream_error(message).decision is decision


@pytest.mark.parametrize(
    ("exc", "reason"),
    [  # what aiohttp raises (the clients' tests against the double raise them for real)
        (
            aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(111, "refused")),
            "cannot connect",
        ),
        (aiohttp.ConnectionTimeoutError("slow"), "cannot connect"),
        (ConnectionRefusedError(111, "refused"), "cannot connect"),
        (aiohttp.SocketTimeoutError("Timeout on reading data from socket"), "backend timed out"),
        (TimeoutError(), "backend timed out"),
        (aiohttp.ClientPayloadError("Response payload is not completed"), "stream cut mid-way"),
        (aiohttp.ServerDisconnectedError(), "stream cut mid-way"),
        (StreamCut("no done chunk"), "stream cut mid-way"),
        (aiohttp.ClientOSError(104, "Connection reset by peer"), "connection lost"),
        (ConnectionResetError("reset"), "connection lost"),
    ],
)
def test_transport_failures_retry_elsewhere(exc: BaseException, reason: str) -> None:
    failure = classify_exception(exc)
    assert failure.decision is Decision.RETRY_ELSEWHERE and failure.backend_fault
    assert failure.reason.startswith(reason)


def test_other_exceptions() -> None:
    # The clients never let aiohttp raise for a status (they classify it with the body):
    # a ClientResponseError is an answer aiohttp could not parse, whatever code it names.
    unparsable = aiohttp.ClientResponseError(
        REQUEST, (), status=400, message="Invalid response status"
    )
    failure = classify_exception(unparsable, model="m")
    assert failure.decision is Decision.RETRY_ELSEWHERE and failure.backend_fault
    assert failure.reason.startswith("stream cut mid-way") and failure.status is None
    failure = classify_status(400)
    assert classify_exception(LlmError(failure)) is failure
    assert classify_exception(ValueError("bug")).decision is Decision.FAIL_NO_RETRY


def test_a_404_names_the_missing_model_for_the_coordinator() -> None:
    failure = classify_status(404, b'{"error": "model \'qwen3:8b\' not found"}', model="qwen3:8b")
    assert failure.missing_model == "qwen3:8b"
    assert classify_status(503, b"busy", model="qwen3:8b").missing_model is None


@pytest.mark.parametrize(
    "message",
    ['option "temperature" must be of type float32', 'option "stop" must be of type array'],
)
def test_a_wrongly_typed_option_fails_the_task_and_spares_the_backend(message: str) -> None:
    # Ollama answers these with a 500; another server would refuse the same request.
    failure = classify_status(500, f'{{"error": "{message.replace(chr(34), chr(92) + chr(34))}"}}')
    assert failure.decision is Decision.FAIL_NO_RETRY
    assert not failure.backend_fault and message in failure.reason
