"""The native format: what is refused (naming the problem and its line) and what is kept;
the shipped templates all check."""

from __future__ import annotations

import pytest
from whoosh_coordinator.workflows.definition import (
    DefinitionError,
    bind_inputs,
    load_text,
    parse_duration,
    to_yaml,
)
from whoosh_shared.contract.workflow_templates import list_templates, template_names, template_text

HEAD = "whoosh: workflow/v1\nname: t\n"


def problems(text: str) -> list[str]:
    with pytest.raises(DefinitionError) as err:
        load_text(text, "f.yaml")
    return err.value.problems


def test_a_cycle_is_named() -> None:
    got = problems(
        HEAD
        + """steps:
  a: {type: shell, command: x, needs: [c]}
  b: {type: shell, command: x, needs: [a]}
  c: {type: shell, command: x, needs: [b]}
  d: {type: shell, command: x, needs: [c]}
"""
    )
    assert got == ["f.yaml: the steps form a cycle: a -> b -> c -> a"]


def test_duplicate_step_id_is_refused_with_its_line() -> None:
    got = problems(
        HEAD + "steps:\n  a: {type: shell, command: x}\n  a: {type: shell, command: y}\n"
    )
    assert got == ["f.yaml line 5: duplicate step id 'a' (first on line 4)"]


def test_unknown_type_port_and_reference_are_listed_together() -> None:
    got = problems(
        HEAD
        + """steps:
  a: {type: shel, command: x}
"""
    )
    assert got == [
        "f.yaml line 4: step 'a' has unknown type 'shel' (known: llm, cli, shell, if, switch, "
        "filter, merge, set, wait, approval, fail, noop, review)"
    ]
    got = problems(
        HEAD
        + """inputs:
  goal: {type: string}
steps:
  a: {type: shell, command: "echo {{ inputs.gaol }}"}
  b: {type: shell, command: x, needs: {a: error}}
  c: {type: shell, command: "{{ steps.zz.output }}", needs: [nope]}
  d: {type: shell, command: "{{ steps.b.outptu }}", needs: [b]}
  e: {type: shell, command: "{{ steps.a.output }}"}
"""
    )
    assert got == [
        "f.yaml line 7: step 'b' needs port 'error' of 'a', which has ports: success "
        "(set on_error: route on it)",
        "f.yaml line 8: step 'c' needs 'nope', which is not a step",
        "f.yaml line 6: step 'a' command: {{ inputs.gaol }}: no input named 'gaol' is declared",
        "f.yaml line 8: step 'c' command: {{ steps.zz.output }}: there is no step 'zz'",
        "f.yaml line 9: step 'd' command: {{ steps.b.outptu }}: unknown step field 'outptu' "
        "(known: output, json, stderr, error, exit_code, status, port)",
        "f.yaml line 10: step 'e' command: {{ steps.a.output }}: step 'a' is not upstream of "
        "'e' (add it to needs)",
    ]


def test_field_errors_carry_lines() -> None:
    got = problems(
        HEAD
        + """settings: {max_parallel: 0}
steps:
  a:
    type: shell
    command: x
    colour: red
    timeout: soon
"""
    )
    assert got == [
        "f.yaml line 3: settings.max_parallel: Input should be greater than or equal to 1",
        "f.yaml line 8: steps.a.colour: unknown field",
        "f.yaml line 9: steps.a.timeout: Value error, 'soon' is not a duration "
        "(use e.g. 30s, 10m, 6h, 1d)",
    ]


def test_not_yaml_and_not_a_workflow() -> None:
    assert problems("a: [1,\n")[0].startswith("f.yaml line 2: not valid YAML")
    assert problems("name: x\n") == [
        "f.yaml: expected 'whoosh: workflow/v1' at the top, found None"
    ]
    assert "bad template" not in problems(HEAD + "steps:\n  a: {type: shell, command: '{{ x'}\n")[0]
    assert (
        "'{{' is never closed"
        in problems(HEAD + "steps:\n  a: {type: shell, command: '{{ x'}\n")[0]
    )


def test_inputs_are_typed() -> None:
    spec = load_text(
        HEAD
        + """inputs:
  n: {type: integer, required: true}
  flag: {type: boolean, default: false}
  name: {type: string, default: x}
steps:
  a: {type: shell, command: x}
"""
    )
    assert bind_inputs(spec, {"n": "4"}) == {"n": 4, "flag": False, "name": "x"}
    with pytest.raises(DefinitionError) as err:
        bind_inputs(spec, {"flag": "maybe"})
    assert err.value.problems == [
        "input 'n' is required",
        "input 'flag' must be a boolean, got 'maybe'",
    ]
    assert problems(
        HEAD + "inputs:\n  n: {type: integer, default: x}\nsteps:\n  a: {type: noop}\n"
    ) == ["f.yaml line 4: input 'n': default 'x' is not a integer"]


def test_durations() -> None:
    assert parse_duration("1h30m") == 5400
    assert parse_duration(12) == 12.0
    assert parse_duration("250ms") == 0.25
    with pytest.raises(ValueError):
        parse_duration("5 parsecs")


@pytest.mark.parametrize("name", ["web-development", "infrastructure", "code-review", "bugfix"])
def test_shipped_templates_check(name: str) -> None:
    spec = load_text(template_text(name) or "", name)
    assert spec.name == name
    again = load_text(to_yaml(spec), "round trip")
    assert again.model_dump() == spec.model_dump()


def test_template_catalog() -> None:
    assert template_names() == ["bugfix", "code-review", "infrastructure", "web-development"]
    infos = {t.name: t for t in list_templates()}
    assert infos["web-development"].steps[:3] == ["planning", "frontend", "backend"]
    assert template_text("../etc/passwd") is None
