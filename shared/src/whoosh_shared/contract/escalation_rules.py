"""Escalation rules for threads: conditions and actions, validated where they are written.

Apart from `threads` because the configuration (`thread_escalation:`) needs them, and every
`whoosh` command loads the configuration: importing the whole thread contract (commands,
queries) cost `whoosh status` about a third of its start-up.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from whoosh_shared.contract.agents import AgentName, Strict
from whoosh_shared.contract.alerts import Severity

LEAVES = {
    "rounds_without_decision": int,
    "same_split": int,
    "messages_over": int,
    "age_over_s": float,
    "idle_over_s": float,
    "unparseable_over": int,
    "budget_share_over": float,
}
ACTIONS = ("notify", "wait_for_human", "add_participant", "reask_with", "close")


def check_condition(node: Any, where: str = "when") -> None:
    """Raise ValueError naming the place of the first thing wrong in a condition tree:
    {"any": [...]}, {"all": [...]}, {"not": {...}} or one leaf such as {"same_split": 2}."""
    if not isinstance(node, dict) or len(node) != 1:
        raise ValueError(f"{where}: a condition is an object with exactly one key")
    ((key, value),) = node.items()
    if key in ("any", "all"):
        if not isinstance(value, list) or not value:
            raise ValueError(f"{where}.{key}: expected a non-empty list of conditions")
        for index, child in enumerate(value):
            check_condition(child, f"{where}.{key}[{index}]")
    elif key == "not":
        check_condition(value, f"{where}.not")
    elif key in LEAVES:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"{where}.{key}: expected a number >= 0, got {value!r}")
    else:
        known = ", ".join(["any", "all", "not", *LEAVES])
        raise ValueError(f"{where}: unknown condition '{key}' (known: {known})")


class Action(Strict):
    """One thing an escalation does; `kind` picks which of the other fields matter."""

    kind: Literal["notify", "wait_for_human", "add_participant", "reask_with", "close"]
    severity: Severity = Severity.WARNING
    address: str | None = Field(default=None, max_length=300, description="add_participant")
    agent: AgentName | None = Field(default=None, description="add_participant / reask_with")
    model: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="reask_with: ask the participants again with this (stronger) model",
    )
    role: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _needs_target(self) -> Action:
        if self.kind == "add_participant" and not (self.address or self.agent):
            raise ValueError("add_participant needs an 'address' or an 'agent'")
        if self.kind == "reask_with" and not (self.agent or self.model):
            raise ValueError("reask_with needs an 'agent' or a 'model' (the stronger one)")
        return self


class EscalationRule(Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    when: dict[str, Any]
    do: list[Action] = Field(min_length=1, max_length=10)

    @field_validator("when")
    @classmethod
    def _valid_condition(cls, value: dict[str, Any]) -> dict[str, Any]:
        check_condition(value)
        return value
