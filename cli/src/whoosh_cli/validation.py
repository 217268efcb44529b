"""Building contract models from command-line values, with readable errors.

A bad flag value (priority 42, an upper-case capability) must read like a
usage error, not like a pydantic dump.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from whoosh_cli.errors import UsageError

ModelT = TypeVar("ModelT", bound=BaseModel)


def build(model_cls: type[ModelT], what: str, /, **values: Any) -> ModelT:
    """model_cls(**values), or a UsageError listing each bad field on one line."""
    try:
        return model_cls.model_validate(values)
    except ValidationError as exc:
        raise UsageError(f"invalid {what}: {describe(exc)}") from None


def describe(exc: ValidationError) -> str:
    """'field: problem; other: problem' from a ValidationError."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)
