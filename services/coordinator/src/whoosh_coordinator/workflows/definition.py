"""The native workflow format (`whoosh: workflow/v1`): its model and every check made
before a definition is stored.

A definition that is stored can run: step references, ports, cycles, input types and
every template are checked here, and each problem is reported with the step and, for
YAML text, the line it is on. Pure: text in, a validated model or `DefinitionError` out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from whoosh_shared.contract.threads import Participant, Protocol

from whoosh_coordinator.workflows.templates import TemplateError, parse

FORMAT = "workflow/v1"
STEP_ID = r"^[A-Za-z][A-Za-z0-9_-]{0,62}$"
MAX_STEPS = 500
UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
TASK_STEPS = ("llm", "cli", "shell")
THREAD_STEPS = ("review",)  # a step run as a thread of agents that vote
TriggerRule = Literal[
    "all_success", "all_done", "one_success", "none_failed_min_one_success", "one_failed"
]
OnError = Literal["fail", "continue", "route"]


class DefinitionError(ValueError):
    """Every problem found in a definition, each naming where it is."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def parse_duration(value: Any) -> Any:
    """'30s', '10m', '6h', '1d', '250ms', '1h30m' or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or text like '30s', '10m', '6h'")
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        raise ValueError("a duration is a number of seconds or text like '30s', '10m', '6h'")
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)", value.strip())
    if not parts or re.sub(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)|\s", "", value):
        raise ValueError(f"'{value}' is not a duration (use e.g. 30s, 10m, 6h, 1d)")
    return float(sum(float(n) * UNITS[u] for n, u in parts))


Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RetrySpec(Spec):
    max_attempts: int = Field(default=1, ge=1, le=20)
    backoff: Duration = 0.0


class InputSpec(Spec):
    type: Literal["string", "number", "integer", "boolean", "object", "array"] = "string"
    required: bool = False
    default: Any = None
    description: str = ""


class Settings(Spec):
    max_parallel: int = Field(default=4, ge=1, le=100)
    deadline: Duration | None = None


class Defaults(Spec):
    timeout: Duration = 1800.0
    retry: RetrySpec = Field(default_factory=RetrySpec)


Operator = Literal[
    "equals",
    "not_equals",
    "contains",
    "not_contains",
    "starts_with",
    "ends_with",
    "gt",
    "gte",
    "lt",
    "lte",
    "is_empty",
    "is_not_empty",
    "is_true",
    "is_false",
    "exists",
    "not_exists",
]


class Condition(Spec):
    left: Any = None
    operator: Operator = "equals"
    right: Any = None


class StepBase(Spec):
    needs: list[str] | dict[str, str | bool] = Field(default_factory=list)
    trigger_rule: TriggerRule | None = None
    on_error: OnError = "fail"
    description: str = ""
    timeout: Duration | None = None
    retry: RetrySpec | None = None


class LlmStep(StepBase):
    type: Literal["llm"]
    prompt: str = Field(min_length=1)
    model: str | None = None
    system: str | None = None
    format: str | dict[str, Any] | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    agent: str | None = None
    capabilities: list[str] = Field(default_factory=list)


class CliStep(StepBase):
    type: Literal["cli"]
    prompt: str = Field(min_length=1)
    capabilities: list[str] = Field(default_factory=list)
    agent: str | None = None
    workdir: str | None = None


class ShellStep(StepBase):
    type: Literal["shell"]
    command: str = Field(min_length=1)
    capabilities: list[str] = Field(default_factory=lambda: ["shell"])
    agent: str | None = None


class IfStep(StepBase):
    type: Literal["if"]
    conditions: list[Condition] = Field(min_length=1)
    combine: Literal["and", "or"] = "and"


class SwitchRule(Spec):
    key: str = Field(pattern=r"^[A-Za-z0-9_-]{1,63}$")
    conditions: list[Condition] = Field(min_length=1)
    combine: Literal["and", "or"] = "and"


class SwitchStep(StepBase):
    type: Literal["switch"]
    rules: list[SwitchRule] = Field(min_length=1)
    fallback: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,63}$")


class FilterStep(StepBase):
    type: Literal["filter"]
    items: str | list[Any] | None = None
    conditions: list[Condition] = Field(min_length=1)
    combine: Literal["and", "or"] = "and"


class MergeStep(StepBase):
    type: Literal["merge"]
    mode: Literal["append", "by_position", "choose"] = "append"
    branch: str | None = None


class SetStep(StepBase):
    type: Literal["set"]
    fields: dict[str, Any] = Field(min_length=1)
    include_input: bool = False


class WaitStep(StepBase):
    type: Literal["wait"]
    duration: Duration | None = None
    until: str | None = None


class ApprovalStep(StepBase):
    type: Literal["approval"]
    message: str = "Approve?"
    timeout: Duration | None = 86400.0
    on_timeout: Literal["reject", "approve"] = "reject"


class FailStep(StepBase):
    type: Literal["fail"]
    message: str = "failed"


class NoopStep(StepBase):
    type: Literal["noop"]


class ReviewStep(StepBase):
    """Agents judge a subject in a thread (kind review): each answers `VERDICT: approve |
    request_changes | abstain`, the coordinator tallies by the protocol. The step
    succeeds when the decision is approve (output `approve`) and fails otherwise, so
    `on_error: route` sends a rejection to its `error` port."""

    type: Literal["review"]
    topic: str = Field(min_length=1)
    subject: str = Field(min_length=1, description="what is judged: a diff, a step's output")
    participants: list[Participant] = Field(default_factory=list, max_length=50)
    address: str | None = Field(default=None, max_length=300, description="instead of a list")
    protocol: Protocol = Field(default_factory=Protocol)
    timeout: Duration | None = Field(default=3600.0, description="each answer's timeout")

    @model_validator(mode="after")
    def _who(self) -> ReviewStep:
        if bool(self.participants) == bool(self.address):
            raise ValueError("give exactly one of 'participants' and 'address'")
        return self


Step = Annotated[
    LlmStep
    | CliStep
    | ShellStep
    | IfStep
    | SwitchStep
    | FilterStep
    | MergeStep
    | SetStep
    | WaitStep
    | ApprovalStep
    | FailStep
    | NoopStep
    | ReviewStep,
    Field(discriminator="type"),
]
STEP_TYPES = (
    "llm", "cli", "shell", "if", "switch", "filter", "merge", "set", "wait", "approval",
    "fail", "noop", "review",
)  # fmt: skip


class Definition(Spec):
    whoosh: Literal["workflow/v1"] = FORMAT
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    description: str = ""
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    settings: Settings = Field(default_factory=Settings)
    defaults: Defaults = Field(default_factory=Defaults)
    steps: dict[str, Step] = Field(min_length=1, max_length=MAX_STEPS)

    # -- the graph ----------------------------------------------------------------------

    def edges(self, step_id: str) -> list[tuple[str, str]]:
        """(upstream, port) pairs of a step; a bare name asks for the upstream's main port."""
        needs = self.steps[step_id].needs
        if isinstance(needs, list):
            return [(up, main_port(self.steps.get(up))) for up in needs]
        return [(up, normal_port(self.steps.get(up), port)) for up, port in needs.items()]

    def upstream(self, step_id: str) -> list[str]:
        return [up for up, _ in self.edges(step_id)]

    def downstream(self, step_id: str) -> list[str]:
        return [s for s in self.steps if step_id in self.upstream(s)]

    def ancestors(self, step_id: str) -> set[str]:
        seen: set[str] = set()
        todo = list(self.upstream(step_id))
        while todo:
            up = todo.pop()
            if up not in seen and up in self.steps:
                seen.add(up)
                todo.extend(self.upstream(up))
        return seen

    def descendants(self, step_id: str) -> set[str]:
        seen: set[str] = set()
        todo = [step_id]
        while todo:
            for down in self.downstream(todo.pop()):
                if down not in seen:
                    seen.add(down)
                    todo.append(down)
        return seen

    def trigger_rule(self, step_id: str) -> str:
        step = self.steps[step_id]
        if step.trigger_rule:
            return step.trigger_rule
        if isinstance(step, MergeStep) and step.mode != "choose":
            return "none_failed_min_one_success"  # a dead branch into a merge: merge the rest
        return "all_success"

    def timeout_of(self, step_id: str) -> float:
        step = self.steps[step_id]
        return step.timeout if step.timeout is not None else self.defaults.timeout

    def retry_of(self, step_id: str) -> RetrySpec:
        return self.steps[step_id].retry or self.defaults.retry


def main_port(step: Any) -> str:
    return "true" if isinstance(step, IfStep) else "success"


def normal_port(step: Any, port: str | bool) -> str:
    """`true` means the main port (the success port, or an if step's true branch)."""
    if port is True:
        return main_port(step)
    if port is False:
        return "false"
    if port in ("success", "ok") and not isinstance(step, IfStep):
        return "success"
    return str(port)


def ports_of(step: Any) -> set[str]:
    ports = {"error"} if step.on_error == "route" else set()
    if isinstance(step, IfStep):
        return ports | {"true", "false"}
    if isinstance(step, SwitchStep):
        keys = {r.key for r in step.rules}
        return ports | keys | ({step.fallback} if step.fallback else set())
    return ports | {"success"}


# -- loading ----------------------------------------------------------------------------


def load_text(text: str, source: str = "workflow", name: str | None = None) -> Definition:
    """Parse YAML (or JSON) text into a checked Definition, or raise DefinitionError;
    `name` replaces the name the text gives."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise DefinitionError([f"{source}{where}: not valid YAML: {problem}"]) from None
    lines = _line_index(node) if node is not None else {}
    duplicates = list(_duplicates(node, (), source)) if node is not None else []
    if duplicates:
        raise DefinitionError(duplicates)
    if name is not None and isinstance(data, dict):
        data["name"] = name
    return load_data(data, source, lines)


def load_data(
    data: Any, source: str = "workflow", lines: dict[tuple[Any, ...], int] | None = None
) -> Definition:
    lines = lines or {}
    if not isinstance(data, dict):
        raise DefinitionError([f"{source}: a workflow is a mapping with 'whoosh: {FORMAT}'"])
    if data.get("whoosh") != FORMAT:
        got = data.get("whoosh")
        raise DefinitionError([f"{source}: expected 'whoosh: {FORMAT}' at the top, found {got!r}"])
    problems = _unknown_types(data, source, lines)
    if problems:
        raise DefinitionError(problems)
    try:
        definition = Definition.model_validate(data)
    except ValidationError as exc:
        raise DefinitionError(_describe(exc, source, lines)) from None
    problems = check(definition, source, lines)
    if problems:
        raise DefinitionError(problems)
    return definition


def _unknown_types(data: dict[str, Any], source: str, lines: dict[tuple[Any, ...], int]) -> list:
    steps = data.get("steps")
    if not isinstance(steps, dict):
        return []
    problems = []
    for sid, step in steps.items():
        if isinstance(step, dict) and step.get("type") not in STEP_TYPES:
            where = _where(source, lines, ("steps", sid, "type"), ("steps", sid))
            problems.append(
                f"{where}: step '{sid}' has unknown type {step.get('type')!r} "
                f"(known: {', '.join(STEP_TYPES)})"
            )
    return problems


def _duplicates(node: yaml.Node, path: tuple[Any, ...], source: str) -> Iterator[str]:
    """YAML keeps the last of two equal keys; a workflow must not (two steps named alike)."""
    if isinstance(node, yaml.MappingNode):
        first: dict[Any, int] = {}
        for key, value in node.value:
            line = key.start_mark.line + 1
            if key.value in first:
                what = "step id" if path == ("steps",) else "key"
                yield (
                    f"{source} line {line}: duplicate {what} '{key.value}' "
                    f"(first on line {first[key.value]})"
                )
            else:
                first[key.value] = line
            yield from _duplicates(value, (*path, key.value), source)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicates(item, (*path, i), source)


def _line_index(node: yaml.Node, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], int]:
    """Line (1-based) of every mapping key and sequence item, by its path."""
    index = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, key.value)
            index[child] = key.start_mark.line + 1
            for sub, line in _line_index(value, child).items():
                index.setdefault(sub, line)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            index.update(_line_index(item, (*path, i)))
    return index


def _where(source: str, lines: dict[tuple[Any, ...], int], *paths: tuple[Any, ...]) -> str:
    for path in paths:
        for cut in range(len(path), 0, -1):
            if path[:cut] in lines:
                return f"{source} line {lines[path[:cut]]}"
    return source


def _describe(exc: ValidationError, source: str, lines: dict[tuple[Any, ...], int]) -> list:
    problems = []
    for error in exc.errors():
        loc = tuple(p for p in error["loc"] if p not in STEP_TYPES or error["loc"][0] != "steps")
        if loc[:1] == ("steps",) and len(error["loc"]) > 2:
            loc = (*error["loc"][:2], *error["loc"][3:])  # drop the union's type tag
        dotted = ".".join(str(p) for p in loc)
        msg = error["msg"]
        if error["type"] == "extra_forbidden":
            msg = "unknown field"
        problems.append(f"{_where(source, lines, loc)}: {dotted}: {msg}")
    return sorted(problems, key=_line_of)


def _line_of(problem: str) -> int:
    found = re.search(r" line (\d+):", problem)
    return int(found.group(1)) if found else 0


# -- semantic checks --------------------------------------------------------------------

JSON_TYPES = {
    "string": str,
    "number": (int, float),
    "integer": int,
    "boolean": bool,
    "object": dict,
    "array": list,
}
STEP_FIELDS = ("output", "json", "stderr", "error", "exit_code", "status", "port")
NOT_TEMPLATED = {"type", "needs", "trigger_rule", "on_error", "operator", "mode", "key"}


def check(definition: Definition, source: str = "workflow", lines: dict | None = None) -> list:
    lines = lines or {}
    problems: list[str] = []
    for sid, step in definition.steps.items():
        at = _where(source, lines, ("steps", sid))
        if not re.match(STEP_ID, sid):
            problems.append(f"{at}: step id '{sid}' must match {STEP_ID}")
        problems += _check_needs(definition, sid, step, source, lines)
        chooses = isinstance(step, MergeStep) and step.mode == "choose"
        if chooses and step.branch not in definition.upstream(sid):
            problems.append(f"{at}: merge '{sid}' chooses '{step.branch}', not one of its needs")
        if isinstance(step, SwitchStep):
            keys = [r.key for r in step.rules]
            if len(set(keys)) != len(keys) or step.fallback in keys:
                problems.append(f"{at}: switch '{sid}' has duplicate rule keys")
        if isinstance(step, LlmStep) and not (step.model or step.agent):
            problems.append(f"{at}: llm step '{sid}' needs a 'model' (or an 'agent')")
        if isinstance(step, WaitStep) and (step.duration is None) == (step.until is None):
            problems.append(f"{at}: wait '{sid}' needs exactly one of 'duration' or 'until'")
    cycle = find_cycle(definition)
    if cycle:
        problems.append(f"{source}: the steps form a cycle: {' -> '.join(cycle)}")
    else:
        problems += _check_templates(definition, source, lines)
    for name, spec in definition.inputs.items():
        if spec.default is not None and not type_ok(spec.default, spec.type):
            at = _where(source, lines, ("inputs", name, "default"))
            problems.append(f"{at}: input '{name}': default {spec.default!r} is not a {spec.type}")
    return problems


def _check_needs(definition: Definition, sid: str, step: Any, source: str, lines: dict) -> list:
    problems = []
    for up, port in definition.edges(sid):
        at = _where(source, lines, ("steps", sid, "needs", up), ("steps", sid, "needs"))
        if up == sid:
            problems.append(f"{at}: step '{sid}' needs itself")
        elif up not in definition.steps:
            problems.append(f"{at}: step '{sid}' needs '{up}', which is not a step")
        elif port not in ports_of(definition.steps[up]):
            upstream = definition.steps[up]
            known = ", ".join(sorted(ports_of(upstream)))
            hint = " (set on_error: route on it)" if port == "error" else ""
            problems.append(
                f"{at}: step '{sid}' needs port '{port}' of '{up}', which has ports: {known}{hint}"
            )
    return problems


def find_cycle(definition: Definition) -> list[str] | None:
    """A cycle as a list of step ids, first repeated last; None when the graph is a DAG."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(sid: str) -> list[str] | None:
        state[sid] = 1
        stack.append(sid)
        for up in definition.upstream(sid):
            if up not in definition.steps:
                continue
            if state.get(up) == 1:
                return [*stack[stack.index(up) :], up][::-1]
            if up not in state and (found := visit(up)):
                return found
        stack.pop()
        state[sid] = 2
        return None

    for sid in definition.steps:
        if sid not in state and (found := visit(sid)):
            return found
    return None


def _check_templates(definition: Definition, source: str, lines: dict) -> list:
    problems = []
    for sid, step in definition.steps.items():
        ancestors = definition.ancestors(sid)
        allow_item = isinstance(step, FilterStep)
        for path, text in strings_of(step.model_dump(exclude_none=True)):
            at = _where(source, lines, ("steps", sid, *path))
            field = ".".join(str(p) for p in path)
            try:
                template = parse(text)
            except TemplateError as exc:
                problems.append(f"{at}: step '{sid}' {field}: {exc}")
                continue
            for expr in template.expressions:
                why = reference_problem(expr.path, definition, ancestors, allow_item, sid)
                if why and not expr.is_literal:
                    problems.append(f"{at}: step '{sid}' {field}: {{{{ {expr.source} }}}}: {why}")
    return problems


def strings_of(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, sub in value.items():
            if not path and key in NOT_TEMPLATED:
                continue
            yield from strings_of(sub, (*path, key))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            yield from strings_of(sub, (*path, i))


def reference_problem(
    path: tuple[Any, ...], definition: Definition, ancestors: set[str], allow_item: bool, sid: str
) -> str | None:
    root = path[0] if path else None
    if root == "inputs":
        if len(path) < 2 or path[1] not in definition.inputs:
            name = path[1] if len(path) > 1 else ""
            return f"no input named '{name}' is declared"
        return None
    if root == "steps":
        if len(path) < 3:
            return "name a step and a field: steps.<step>.output (or .json, .stderr, ...)"
        ref, field = path[1], path[2]
        if ref not in definition.steps:
            return f"there is no step '{ref}'"
        if ref not in ancestors:
            return f"step '{ref}' is not upstream of '{sid}' (add it to needs)"
        if field not in STEP_FIELDS:
            return f"unknown step field '{field}' (known: {', '.join(STEP_FIELDS)})"
        return None
    if root == "item":
        return None if allow_item else "'item' exists only in a filter step's conditions"
    if root == "execution":
        return (
            None
            if len(path) == 2 and path[1] in ("id", "workflow", "version")
            else ("execution has id, workflow, version")
        )
    return f"unknown name '{root}' (use inputs, steps, item or execution)"


def type_ok(value: Any, kind: str) -> bool:
    expected = JSON_TYPES[kind]
    if kind in ("number", "integer") and isinstance(value, bool):
        return False
    return isinstance(value, expected)


def coerce_input(value: Any, kind: str) -> Any:
    """Inputs given as text (`--input n=3`) become the declared type when they read as it."""
    if type_ok(value, kind) or not isinstance(value, str):
        return value
    try:
        parsed = TypeAdapter(Any).validate_json(value) if kind != "string" else value
    except ValidationError:
        return value
    return parsed


def bind_inputs(definition: Definition, given: dict[str, Any]) -> dict[str, Any]:
    """The inputs an execution runs with; DefinitionError names every wrong or missing one."""
    problems = []
    bound: dict[str, Any] = {}
    for name in given:
        if name not in definition.inputs:
            known = ", ".join(definition.inputs) or "none"
            problems.append(f"unknown input '{name}' (declared: {known})")
    for name, spec in definition.inputs.items():
        if name in given:
            value = coerce_input(given[name], spec.type)
            if not type_ok(value, spec.type):
                problems.append(f"input '{name}' must be a {spec.type}, got {given[name]!r}")
            bound[name] = value
        elif spec.required:
            problems.append(f"input '{name}' is required")
        else:
            bound[name] = spec.default
    if problems:
        raise DefinitionError(problems)
    return bound


def parse_until(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"'{text}' is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise ValueError(f"'{text}' has no time zone (add Z or +00:00)")
    return moment


def to_yaml(definition: Definition) -> str:
    data = definition.model_dump(mode="json", exclude_defaults=True)
    data = {"whoosh": FORMAT, **data}
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
