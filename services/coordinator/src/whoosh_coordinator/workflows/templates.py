"""The workflow template language: `{{ path | filter(arg) }}` over JSON values.

A small language of our own, parsed here and evaluated by walking plain JSON data: no
code of the user's runs in the coordinator (n8n's JavaScript expressions and Jinja's
sandbox have both had escapes). What it can do:

    {{ inputs.goal }}                 a workflow input
    {{ steps.plan.output }}           a step's output text
    {{ steps.plan.json.frontend }}    a field of a step's output read as JSON
    {{ steps.test.stderr | tail(4000) }}
    {{ item.json.x }}                 the current item (filter steps)
    {{ steps.review.output | default("none") | upper }}

Every failure is a `TemplateError` with the character position in the template, so a
refusal can point at the problem. Parsing never raises anything else, whatever the text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

OPEN, CLOSE = "{{", "}}"
MAX_TEMPLATE_CHARS = 200_000
MAX_RENDERED_CHARS = 1_000_000


class TemplateError(ValueError):
    """A template that cannot be parsed or evaluated; `position` is a 0-based offset."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} (at character {position + 1})")
        self.message = message
        self.position = position


@dataclass(frozen=True)
class Filter:
    name: str
    args: tuple[Any, ...]
    position: int


@dataclass(frozen=True)
class Expression:
    """A path (`steps.a.json.k`) or a literal, then filters."""

    path: tuple[str | int, ...]
    literal: Any
    is_literal: bool
    filters: tuple[Filter, ...]
    position: int
    source: str = ""

    @property
    def dotted(self) -> str:
        return ".".join(str(p) for p in self.path)


@dataclass(frozen=True)
class Template:
    """Parsed text: literal strings and expressions, in order."""

    parts: tuple[str | Expression, ...]
    expressions: tuple[Expression, ...] = field(default=())

    @property
    def single(self) -> Expression | None:
        """The expression when the text is exactly one `{{ ... }}` (its value keeps its type)."""
        if len(self.parts) == 1 and isinstance(self.parts[0], Expression):
            return self.parts[0]
        return None


# -- parsing ----------------------------------------------------------------------------


def parse(text: str) -> Template:
    if not isinstance(text, str):
        raise TemplateError("a template must be text", 0)
    if len(text) > MAX_TEMPLATE_CHARS:
        raise TemplateError(f"template longer than {MAX_TEMPLATE_CHARS} characters", 0)
    parts: list[str | Expression] = []
    i = 0
    while i < len(text):
        start = text.find(OPEN, i)
        if start < 0:
            parts.append(text[i:])
            break
        if start > i:
            parts.append(text[i:start])
        end = text.find(CLOSE, start + 2)
        if end < 0:
            raise TemplateError("'{{' is never closed with '}}'", start)
        parts.append(_Parser(text, start + 2, end).expression())
        i = end + 2
    stray = text.find(CLOSE)
    if stray >= 0 and not _inside_expression(text, stray):
        raise TemplateError("'}}' without an opening '{{'", stray)
    exprs = tuple(p for p in parts if isinstance(p, Expression))
    return Template(tuple(parts), exprs)


def _inside_expression(text: str, pos: int) -> bool:
    i = 0
    while (start := text.find(OPEN, i)) >= 0:
        end = text.find(CLOSE, start + 2)
        if end < 0:
            return False
        if start < pos <= end:
            return True
        i = end + 2
    return False


class _Parser:
    """Recursive descent over one `{{ ... }}` body, text[start:end]."""

    def __init__(self, text: str, start: int, end: int) -> None:
        self.text, self.pos, self.end, self.start = text, start, end, start

    def expression(self) -> Expression:
        self._space()
        if self.pos >= self.end:
            raise TemplateError("empty expression", self.start - 2)
        begin = self.pos
        literal, is_literal, path = None, False, ()
        if self._peek() in "\"'-0123456789" or self._word_ahead() in ("true", "false", "null"):
            literal, is_literal = self._literal(), True
        else:
            path = self._path()
        filters = []
        self._space()
        while self.pos < self.end:
            if self._peek() != "|":
                raise TemplateError(f"expected '|' or '}}}}', found {self._peek()!r}", self.pos)
            self.pos += 1
            self._space()
            filters.append(self._filter())
            self._space()
        source = self.text[begin : self.end].strip()
        return Expression(path, literal, is_literal, tuple(filters), begin, source)

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < self.end else ""

    def _space(self) -> None:
        while self.pos < self.end and self.text[self.pos].isspace():
            self.pos += 1

    def _word_ahead(self) -> str:
        j = self.pos
        while j < self.end and (self.text[j].isalnum() or self.text[j] == "_"):
            j += 1
        return self.text[self.pos : j]

    def _name(self, what: str) -> str:
        word = self._word_ahead()
        if not word or not (word[0].isalpha() or word[0] == "_") or not word.isascii():
            found = self._peek() or "end of expression"
            raise TemplateError(f"expected {what}, found {found!r}", self.pos)
        self.pos += len(word)
        return word

    def _path(self) -> tuple[str | int, ...]:
        parts: list[str | int] = [self._name("a name (inputs, steps, item)")]
        while self.pos < self.end:
            ch = self._peek()
            if ch == ".":
                self.pos += 1
                word = self._word_ahead()
                if word.isdigit():
                    self.pos += len(word)
                    parts.append(int(word))
                else:
                    parts.append(self._name_or_dashed())
            elif ch == "[":
                self.pos += 1
                self._space()
                key = self._literal()
                if not isinstance(key, str | int) or isinstance(key, bool):
                    raise TemplateError("an index is a number or a quoted key", self.pos)
                self._space()
                if self._peek() != "]":
                    raise TemplateError("expected ']'", self.pos)
                self.pos += 1
                parts.append(key)
            else:
                break
        return tuple(parts)

    def _name_or_dashed(self) -> str:
        """Step ids may contain '-' (`steps.run-tests.output`)."""
        j = self.pos
        while j < self.end and (self.text[j].isalnum() or self.text[j] in "_-"):
            j += 1
        word = self.text[self.pos : j]
        if not word or not word.isascii() or word[0] == "-":
            raise TemplateError(f"expected a name after '.', found {self._peek()!r}", self.pos)
        self.pos = j
        return word

    def _filter(self) -> Filter:
        begin = self.pos
        name = self._name("a filter name")
        if name not in FILTERS:
            known = ", ".join(sorted(FILTERS))
            raise TemplateError(f"unknown filter '{name}' (known: {known})", begin)
        args: list[Any] = []
        self._space()
        if self._peek() == "(":
            self.pos += 1
            self._space()
            while self._peek() != ")":
                if self.pos >= self.end:
                    raise TemplateError("expected ')'", self.pos)
                args.append(self._literal())
                self._space()
                if self._peek() == ",":
                    self.pos += 1
                    self._space()
                elif self._peek() != ")":
                    raise TemplateError("expected ',' or ')'", self.pos)
            self.pos += 1
        low, high = FILTER_ARITY[name]
        if not low <= len(args) <= high:
            raise TemplateError(f"filter '{name}' takes {_arity(low, high)}", begin)
        return Filter(name, tuple(args), begin)

    def _literal(self) -> Any:
        ch = self._peek()
        if ch in "\"'":
            return self._string(ch)
        word = self._word_ahead()
        if word in ("true", "false", "null"):
            self.pos += len(word)
            return {"true": True, "false": False, "null": None}[word]
        return self._number()

    def _string(self, quote: str) -> str:
        begin = self.pos
        self.pos += 1
        out: list[str] = []
        while self.pos < self.end:
            ch = self.text[self.pos]
            if ch == "\\" and self.pos + 1 < self.end:
                nxt = self.text[self.pos + 1]
                out.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
                self.pos += 2
                continue
            if ch == quote:
                self.pos += 1
                return "".join(out)
            out.append(ch)
            self.pos += 1
        raise TemplateError("string is never closed", begin)

    def _number(self) -> int | float:
        begin = self.pos
        if self._peek() == "-":
            self.pos += 1
        while self.pos < self.end and (self.text[self.pos].isdigit() or self.text[self.pos] == "."):
            self.pos += 1
        token = self.text[begin : self.pos]
        try:
            return int(token) if token.lstrip("-").isdigit() else float(token)
        except ValueError:
            found = self.text[begin] if begin < self.end else "end of expression"
            raise TemplateError(f"expected a value, found {found!r}", begin) from None


def _arity(low: int, high: int) -> str:
    if low == high:
        return f"{low} argument(s)"
    return f"{low} to {high} arguments"


# -- evaluation -------------------------------------------------------------------------


class Missing(LookupError):
    """A path that names nothing at run time."""


Resolver = Callable[[Expression], Any]


def render(template: Template | str, resolve: Resolver) -> Any:
    """The value: a single `{{ expr }}` keeps its JSON type; mixed text is a string."""
    parsed = parse(template) if isinstance(template, str) else template
    single = parsed.single
    if single is not None:
        return evaluate(single, resolve)
    out: list[str] = []
    size = 0
    for part in parsed.parts:
        piece = part if isinstance(part, str) else as_text(evaluate(part, resolve))
        size += len(piece)
        if size > MAX_RENDERED_CHARS:
            raise TemplateError(f"rendered text over {MAX_RENDERED_CHARS} characters", 0)
        out.append(piece)
    return "".join(out)


def evaluate(expr: Expression, resolve: Resolver) -> Any:
    if expr.is_literal:
        value = expr.literal
    else:
        try:
            value = resolve(expr)
        except Missing as missing:
            if not any(f.name == "default" for f in expr.filters):
                raise TemplateError(str(missing), expr.position) from None
            value = None
    for flt in expr.filters:
        try:
            value = FILTERS[flt.name](value, *flt.args)
        except (TypeError, ValueError) as exc:
            raise TemplateError(f"filter '{flt.name}': {exc}", flt.position) from None
    return value


def walk(value: Any, path: tuple[str | int, ...], shown: str) -> Any:
    """Follow `path` through JSON data; Missing names the first part that is absent."""
    for i, key in enumerate(path):
        where = shown + "".join(f".{p}" for p in path[: i + 1])
        if isinstance(value, Mapping) and isinstance(key, str) and key in value:
            value = value[key]
        elif isinstance(value, Mapping) and isinstance(key, int) and str(key) in value:
            value = value[str(key)]
        elif isinstance(value, list) and isinstance(key, int) and -len(value) <= key < len(value):
            value = value[key]
        else:
            raise Missing(f"'{where}' does not exist")
    return value


def as_text(value: Any) -> str:
    """How a value appears inside text: strings as they are, the rest as JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, sort_keys=False)


# -- filters ----------------------------------------------------------------------------


def _sized(value: Any) -> str | list[Any]:
    if isinstance(value, str | list):
        return value
    if value is None:
        return ""
    return as_text(value)


def _count(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"expected a count (a whole number >= 0), got {n!r}")
    return n


def _head(value: Any, n: Any = 1000) -> Any:
    return _sized(value)[: _count(n)]


def _tail(value: Any, n: Any = 1000) -> Any:
    n = _count(n)
    sized = _sized(value)
    return sized[len(sized) - n :] if n else sized[:0]


def _join(value: Any, sep: Any = ", ") -> str:
    if not isinstance(value, list):
        raise ValueError(f"join needs a list, got {type(value).__name__}")
    return str(sep).join(as_text(v) for v in value)


def _length(value: Any) -> int:
    if isinstance(value, dict | list | str):
        return len(value)
    return 0 if value is None else len(as_text(value))


def _first(value: Any) -> Any:
    sized = _sized(value)
    return sized[0] if sized else None


def _last(value: Any) -> Any:
    sized = _sized(value)
    return sized[-1] if sized else None


def _default(value: Any, fallback: Any = "") -> Any:
    return fallback if value is None or value == "" else value


FILTERS: dict[str, Callable[..., Any]] = {
    "trim": lambda v: as_text(v).strip(),
    "default": _default,
    "json": lambda v: json.dumps(v, ensure_ascii=False),
    "head": _head,
    "tail": _tail,
    "lower": lambda v: as_text(v).lower(),
    "upper": lambda v: as_text(v).upper(),
    "join": _join,
    "length": _length,
    "first": _first,
    "last": _last,
}
FILTER_ARITY: dict[str, tuple[int, int]] = {
    "trim": (0, 0),
    "default": (0, 1),
    "json": (0, 0),
    "head": (0, 1),
    "tail": (0, 1),
    "lower": (0, 0),
    "upper": (0, 0),
    "join": (0, 1),
    "length": (0, 0),
    "first": (0, 0),
    "last": (0, 0),
}
