"""The template language: paths, filters, errors with positions, and property tests that
it never raises anything but TemplateError, whatever the text or the JSON data."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from whoosh_coordinator.workflows.templates import (
    Missing,
    TemplateError,
    parse,
    render,
    walk,
)

DATA = {
    "inputs": {"goal": "  Build it  ", "n": 3, "tags": ["a", "b", "c"], "obj": {"k": [1, 2]}},
    "steps": {"plan": {"output": '{"frontend": "react"}', "json": {"frontend": "react"}}},
}


def resolve(expr):
    return walk(DATA, expr.path, "")


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ inputs.goal }}", "  Build it  "),
        ("{{ inputs.goal | trim | upper }}", "BUILD IT"),
        ("{{inputs.n}}", 3),
        ("n={{ inputs.n }}", "n=3"),
        ("{{ inputs.tags | join('-') }}", "a-b-c"),
        ("{{ inputs.tags | length }}", 3),
        ("{{ inputs.tags | first }}{{ inputs.tags | last }}", "ac"),
        ("{{ inputs.tags[1] }}", "b"),
        ("{{ inputs.obj.k.1 }}", 2),
        ("{{ inputs.obj | json }}", '{"k": [1, 2]}'),
        ("{{ inputs.goal | trim | head(3) | lower }}", "bui"),
        ("{{ inputs.goal | trim | tail(2) }}", "it"),
        ("{{ inputs.missing | default('none') }}", "none"),
        ("{{ steps.plan.json.frontend }}", "react"),
        ("{{ 'lit' | upper }}", "LIT"),
        ("{{ inputs.tags | tail(2) }}", ["b", "c"]),
        ("plain text", "plain text"),
        ("obj: {{ inputs.obj }}", 'obj: {"k": [1, 2]}'),
    ],
)
def test_render(template: str, expected: Any) -> None:
    assert render(template, resolve) == expected


@pytest.mark.parametrize(
    ("template", "message", "position"),
    [
        ("ab {{ inputs.x", "'{{' is never closed", 3),
        ("{{ }}", "empty expression", 0),
        ("{{ inputs.goal | nope }}", "unknown filter 'nope'", 17),
        ("{{ inputs.goal | head(1, 2) }}", "filter 'head' takes", 17),
        ("{{ inputs.goal + 1 }}", "expected '|'", 15),
        ("x }} y", "'}}' without an opening '{{'", 2),
        ("{{ inputs.goal | default('x }}", "string is never closed", 25),
        ("{{ inputs. }}", "expected a name after '.'", 10),
    ],
)
def test_parse_errors_name_the_position(template: str, message: str, position: int) -> None:
    with pytest.raises(TemplateError) as err:
        parse(template)
    assert message in err.value.message
    assert err.value.position == position
    assert f"at character {position + 1}" in str(err.value)


def test_a_missing_path_names_it() -> None:
    with pytest.raises(TemplateError) as err:
        render("x {{ inputs.obj.nope.deeper }}", resolve)
    assert "'.inputs.obj.nope' does not exist" in err.value.message
    assert err.value.position == 5
    with pytest.raises(TemplateError, match="join needs a list"):
        render("{{ inputs.goal | join }}", resolve)
    with pytest.raises(TemplateError, match="expected a count"):
        render("{{ inputs.goal | head(-1) }}", resolve)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_parse_never_raises_anything_else(text: str) -> None:
    try:
        parse(text)
    except TemplateError as exc:
        assert 0 <= exc.position <= len(text)


ALPHABET = "{}|.()[]'\", inputsteps ajsonoutputtrimdefaultheadtaillength0123456789-_"


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=60), json_values)
def test_rendering_any_text_over_any_json_raises_only_template_errors(
    text: str, value: Any
) -> None:
    data = {"inputs": {"a": value}, "steps": {"a": {"json": value, "output": json.dumps(value)}}}

    def resolve_any(expr):
        try:
            return walk(data, expr.path, "")
        except Missing:
            raise

    try:
        result = render(text, resolve_any)
    except TemplateError as exc:
        assert 0 <= exc.position <= len(text)
    else:
        json.dumps(result)  # the result is JSON data again


@settings(max_examples=200, deadline=None)
@given(json_values, st.sampled_from(
    ["trim", "json", "lower", "upper", "length", "first", "last", "head(2)", "tail(2)",
     "default('x')", "join"]
))  # fmt: skip
def test_every_filter_on_any_json_value(value: Any, flt: str) -> None:
    try:
        render("{{ inputs.a | " + flt + " }}", lambda e: walk({"inputs": {"a": value}}, e.path, ""))
    except TemplateError as exc:
        assert "filter" in exc.message
