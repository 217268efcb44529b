"""Steps the coordinator runs itself: conditions, if, switch, filter, merge, set.

They only compare and reshape JSON values produced by the template language; nothing
here executes user code. Each returns (port, output value) or raises StepFailure.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from whoosh_coordinator.workflows import definition as d
from whoosh_coordinator.workflows.templates import TemplateError, render

Render = Callable[[Any, Any], Any]  # (template value, item) -> rendered value


class StepFailure(Exception):
    """A step that cannot produce its result; the message is what the user sees."""


def render_deep(value: Any, render_one: Callable[[str], Any]) -> Any:
    if isinstance(value, str):
        return render_one(value)
    if isinstance(value, dict):
        return {k: render_deep(v, render_one) for k, v in value.items()}
    if isinstance(value, list):
        return [render_deep(v, render_one) for v in value]
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1")
    return bool(value)


def compare(left: Any, operator: str, right: Any) -> bool:
    if operator in ("gt", "gte", "lt", "lte"):
        a, b = _number(left), _number(right)
        if a is None or b is None:
            raise StepFailure(f"'{operator}' compares numbers; got {left!r} and {right!r}")
        return {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[operator]
    if operator in ("equals", "not_equals"):
        same = left == right or (_number(left) is not None and _number(left) == _number(right))
        if isinstance(left, str) != isinstance(right, str) and not same:
            same = str(left) == str(right)
        return same if operator == "equals" else not same
    if operator in ("contains", "not_contains"):
        if isinstance(left, list | dict):
            found = right in left
        else:
            found = str(right) in ("" if left is None else str(left))
        return found if operator == "contains" else not found
    if operator == "starts_with":
        return str(left or "").startswith(str(right))
    if operator == "ends_with":
        return str(left or "").endswith(str(right))
    if operator in ("is_empty", "not_exists"):
        return _empty(left)
    if operator in ("is_not_empty", "exists"):
        return not _empty(left)
    if operator == "is_true":
        return _truthy(left)
    if operator == "is_false":
        return not _truthy(left)
    raise StepFailure(f"unknown operator '{operator}'")


def conditions_hold(
    conditions: list[d.Condition], combine: str, render_one: Callable[[Any], Any]
) -> bool:
    results = (compare(render_one(c.left), c.operator, render_one(c.right)) for c in conditions)
    return all(results) if combine == "and" else any(results)


def as_json(text: str) -> Any:
    """A step's output as JSON data: parsed when it is JSON, else the text itself."""
    try:
        return json.loads(text)
    except (ValueError, TypeError):
        return text


def run_merge(step: d.MergeStep, inputs: list[tuple[str, str]]) -> Any:
    """`inputs`: (step id, output) of the upstream steps that reached this merge."""
    if step.mode == "choose":
        for sid, output in inputs:
            if sid == step.branch:
                return as_json(output)
        raise StepFailure(f"branch '{step.branch}' did not produce an output")
    values = [as_json(output) for _, output in inputs]
    if step.mode == "append":
        merged: list[Any] = []
        for value in values:
            merged.extend(value if isinstance(value, list) else [value])
        return merged
    lists = [v if isinstance(v, list) else [v] for v in values]
    rows = []
    for i in range(max((len(x) for x in lists), default=0)):
        row = [x[i] for x in lists if i < len(x)]
        if all(isinstance(v, dict) for v in row):
            combined: dict[str, Any] = {}
            for v in row:
                combined.update(v)
            rows.append(combined)
        else:
            rows.append(row)
    return rows


def render_text(template: str, resolve: Callable[[Any], Any]) -> Any:
    try:
        return render(template, resolve)
    except TemplateError as exc:
        raise StepFailure(str(exc)) from None
