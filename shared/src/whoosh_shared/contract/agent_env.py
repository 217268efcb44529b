"""An agent's `env`: secret by default, resolvable on the executor, never WHOOSH's own.

Values are secrets until shown otherwise (API keys live there), so every read path
shows them masked; a value that is only a reference, `${NAME}`, is shown as written,
since it holds nothing: the executor resolves it from its own environment when it
starts the command (or calls the LLM server), so secrets need not be stored at all.

The processes an executor starts never inherit WHOOSH's own settings and secrets (the
admin key, NATS credentials, the store URL): every `WHOOSH*` variable is removed from
what they inherit, and a reference to one is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from whoosh_shared.contract.events import EventEnvelope

MASK = "***"
REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
ONLY_A_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")
WHOOSH_PREFIX = "WHOOSH"


class EnvReferenceError(ValueError):
    """A `${NAME}` the executor cannot resolve, or may not."""


def mask_env(env: Mapping[str, str]) -> dict[str, str]:
    """The env as every read path shows it: references as written, other values masked."""
    return {name: value if ONLY_A_REFERENCE.match(value) else MASK for name, value in env.items()}


def mask_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """An agent spec (or an update's changes) as a dict, with its env masked."""
    masked = dict(spec)
    env = masked.get("env")
    if isinstance(env, Mapping):
        masked["env"] = mask_env({str(k): str(v) for k, v in env.items()})
    return masked


SPEC_EVENTS = {"AgentRegistered": "spec", "AgentReregistered": "spec", "AgentUpdated": "changes"}


def mask_envelope(envelope: EventEnvelope) -> EventEnvelope:
    """An event as it leaves the coordinator (relayed, or read back through a query):
    an agent definition's env masked. The store keeps the values, for the work items."""
    field = SPEC_EVENTS.get(envelope.type)
    if field is None or not isinstance(envelope.data.get(field), Mapping):
        return envelope
    data = {**envelope.data, field: mask_spec(envelope.data[field])}
    return envelope.model_copy(update={"data": data})


def is_whoosh_setting(name: str) -> bool:
    return name.upper().startswith(WHOOSH_PREFIX)


def resolve_env(env: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """Each `${NAME}` in the values replaced by NAME from `environ` (the executor's own).

    Raises EnvReferenceError naming the variable and the reference when NAME is not set
    there, or is one of WHOOSH's own settings (those never reach agent code)."""
    resolved = {}
    for name, value in env.items():

        def lookup(match: re.Match[str], name: str = name) -> str:
            wanted = match.group(1)
            if is_whoosh_setting(wanted):
                raise EnvReferenceError(
                    f"env {name}: ${{{wanted}}} names one of WHOOSH's own settings, which "
                    "are never given to agents"
                )
            if wanted not in environ:
                raise EnvReferenceError(
                    f"env {name}: ${{{wanted}}} is not set in the executor's environment"
                )
            return environ[wanted]

        resolved[name] = REFERENCE.sub(lookup, value)
    return resolved


def scrubbed_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """What a started process may inherit: the environment without WHOOSH's settings."""
    return {name: value for name, value in environ.items() if not is_whoosh_setting(name)}


def child_environ(env: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """The whole environment of a local agent command: the executor's, scrubbed, with
    the agent's env (resolved) on top."""
    return {**scrubbed_environ(environ), **resolve_env(env, environ)}


def resolved_value(env: Mapping[str, str], name: str, environ: Mapping[str, str]) -> str | None:
    """One variable of the agent's env, resolved (None when the agent does not set it)."""
    if name not in env:
        return None
    return resolve_env({name: env[name]}, environ)[name]
