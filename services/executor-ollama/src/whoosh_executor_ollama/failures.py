"""What went wrong with an LLM call, turned into what the executor should do about it.

The executor must tell apart three cases, because each leads somewhere else:
- the agent cannot run this task at all (model missing): reject it *for this agent*, so
  the scheduler picks another agent and does not try this one again for the model;
- the task itself is bad (400: bad options, missing capability, model error): fail it
  without retry, since any other server would answer the same;
- the server is busy, overloaded, unreachable or died mid-stream: retry elsewhere, and
  count it against the backend's circuit breaker.

Everything here is a pure function of a status code, a message or an exception type, so
it is easy to test and to extend.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum

import aiohttp


class Decision(StrEnum):
    """What to do with the task after a failed call."""

    REJECT_FOR_AGENT = "reject_for_agent"  # this agent can never run it (e.g. model missing)
    FAIL_NO_RETRY = "fail_no_retry"  # the request is at fault: no other server would help
    RETRY_ELSEWHERE = "retry_elsewhere"  # the server is at fault: another agent may succeed


@dataclass(frozen=True, slots=True)
class Failure:
    """A decision with the reason people read, and what it means for the backend's health."""

    decision: Decision
    reason: str
    status: int | None = None
    # Counts toward the circuit breaker: only faults of the server, not of the request.
    backend_fault: bool = False
    # Opens the circuit breaker at once (the server said plainly it is full: 503).
    open_circuit: bool = False
    # The model the server answered 404 for: the agent is marked as lacking it.
    missing_model: str | None = None

    @property
    def retryable(self) -> bool:
        """For FailTask.retryable: a rejected-for-agent task may still run on another agent."""
        return self.decision is not Decision.FAIL_NO_RETRY


class LlmError(Exception):
    """Raised by the protocol clients; carries the classified `Failure`."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.reason)
        self.failure = failure


class StreamCut(Exception):
    """The stream ended without its final chunk (`done: true` / `data: [DONE]`)."""


# Words Ollama and OpenAI-compatible servers use when they are full rather than broken,
# e.g. Ollama's "server busy, please try again.  maximum pending requests exceeded".
_BUSY_WORDS = ("busy", "overload", "try again", "maximum pending", "too many requests")


# Ollama's api.Options.FromMap: 'option "temperature" must be of type float32',
# 'option "stop" must be of an array of strings'.
_BAD_OPTION = re.compile(r'option "[^"]+" must be of ', re.IGNORECASE)


def _is_busy(message: str) -> bool:
    lowered = message.lower()
    return any(word in lowered for word in _BUSY_WORDS)


def error_text(body: str | bytes) -> str:
    """The human message of an error body: Ollama's {"error": "..."}, OpenAI's
    {"error": {"message": "..."}}, or the body itself, shortened."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:500]
    if isinstance(data, dict):
        err = data.get("error", data.get("message"))
        if isinstance(err, dict):
            err = err.get("message", err)
        if err is not None:
            return str(err)[:500]
    return text.strip()[:500]


def classify_status(status: int, body: str | bytes = "", *, model: str | None = None) -> Failure:
    """An HTTP error status (with its body) before any stream began."""
    message = error_text(body) if body else ""
    detail = f": {message}" if message else ""
    if status == 404:
        name = model or "the requested model"
        return Failure(
            Decision.REJECT_FOR_AGENT,
            f"model '{name}' not found on this backend (404){detail}",
            status,
            missing_model=model,
        )
    if _BAD_OPTION.search(message):
        # Ollama answers a wrongly typed option with a 500 (its scheduler's error path),
        # but every server would refuse the same request: the task is at fault.
        return Failure(Decision.FAIL_NO_RETRY, f"the server rejected an option ({status}){detail}")
    if status in (401, 403):
        # A misconfigured agent (wrong key), not a bad task: let another agent take it.
        reason = f"backend refused access ({status}){detail}"
        return Failure(Decision.REJECT_FOR_AGENT, reason, status)
    if status == 503:
        return Failure(
            Decision.RETRY_ELSEWHERE,
            f"backend busy (503){detail}",
            status,
            backend_fault=True,
            open_circuit=True,
        )
    if status in (408, 429) or status >= 500:
        return Failure(
            Decision.RETRY_ELSEWHERE, f"backend unavailable ({status}){detail}", status, True
        )
    if status == 400:
        return Failure(Decision.FAIL_NO_RETRY, f"bad request (400){detail}", status)
    return Failure(Decision.FAIL_NO_RETRY, f"request failed ({status}){detail}", status)


def classify_stream_error(message: str) -> Failure:
    """An `{"error": ...}` line inside a 200 stream: the task fails, unless the server
    only says it is busy or overloaded, which another server may not be."""
    if _is_busy(message):
        return Failure(
            Decision.RETRY_ELSEWHERE, f"backend busy mid-stream: {message}", backend_fault=True
        )
    return Failure(Decision.FAIL_NO_RETRY, f"backend error mid-stream: {message}")


def classify_exception(exc: BaseException, *, model: str | None = None) -> Failure:
    """A transport-level failure (no usable HTTP answer, or an answer cut short).

    The clients never ask aiohttp to raise for a status (they classify the status and the
    error body themselves), so an `aiohttp.ClientResponseError` here is an answer aiohttp
    could not parse: the server's fault, like a cut stream."""
    if isinstance(exc, LlmError):
        return exc.failure
    kind = type(exc).__name__
    if isinstance(
        exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError | ConnectionRefusedError
    ):
        reason = f"cannot connect to backend ({kind}: {exc})"
        return Failure(Decision.RETRY_ELSEWHERE, reason, None, True)
    if isinstance(exc, TimeoutError):  # aiohttp's sock_read: SocketTimeoutError
        return Failure(Decision.RETRY_ELSEWHERE, f"backend timed out ({kind})", None, True)
    if isinstance(
        exc,
        StreamCut
        | aiohttp.ClientPayloadError
        | aiohttp.ServerDisconnectedError
        | aiohttp.ClientResponseError,
    ):
        return Failure(Decision.RETRY_ELSEWHERE, f"stream cut mid-way ({kind}: {exc})", None, True)
    if isinstance(exc, aiohttp.ClientError | ConnectionError):
        return Failure(Decision.RETRY_ELSEWHERE, f"connection lost ({kind}: {exc})", None, True)
    return Failure(Decision.FAIL_NO_RETRY, f"unexpected error ({kind}: {exc})")
