"""Reading a participant's vote from its output: exactly one strict answer line.

Zero or two such lines is unparseable, never a guess: answer extraction alone can
reverse a benchmark's conclusion, so the parser is part of the protocol. Values are
normalised by the answer type so that "1,000" and "1000" are one vote.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from whoosh_shared.contract.threads import AnswerType, ThreadKind, Verdict

ANSWER_LINE = re.compile(r"^\s*ANSWER:\s*(.*?)\s*$", re.IGNORECASE)
VERDICT_LINE = re.compile(r"^\s*VERDICT:\s*(.*?)\s*$", re.IGNORECASE)
INT_TEXT = re.compile(r"^[+-]?\d+$")


@dataclass(frozen=True)
class Parsed:
    """A vote's value (None = abstain) or, when `error` is set, why it is unparseable."""

    value: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def parse_vote(
    output: str, kind: ThreadKind, answer_type: AnswerType, choices: list[str] | None = None
) -> Parsed:
    pattern, keyword = (
        (VERDICT_LINE, "VERDICT") if kind is ThreadKind.REVIEW else (ANSWER_LINE, "ANSWER")
    )
    found = [m.group(1) for line in output.splitlines() if (m := pattern.match(line))]
    if not found:
        found = _from_json(output, keyword.lower())
    if not found:
        return Parsed(error=f"no {keyword} line")
    if len(found) > 1:
        return Parsed(error=f"{len(found)} {keyword} lines")
    if kind is ThreadKind.REVIEW:
        return normalise_verdict(found[0])
    return normalise(found[0], answer_type, choices or [])


def _from_json(output: str, key: str) -> list[str]:
    """An LLM given a JSON schema as its `format` answers {"answer": ..} / {"verdict": ..}:
    the whole output must be that one object."""
    try:
        value = json.loads(output)
    except ValueError:
        return []
    if not isinstance(value, dict) or key not in value:
        return []
    field = value[key]
    if isinstance(field, bool) or not isinstance(field, str | int | float):
        return []
    return [str(field)]


def normalise_verdict(raw: str) -> Parsed:
    value = raw.strip().casefold().replace("-", "_").replace(" ", "_")
    allowed = [v.value for v in Verdict]
    if value not in allowed:
        return Parsed(error=f"{raw!r} not in {'|'.join(allowed)}")
    return Parsed(value=None if value == Verdict.ABSTAIN else value)


def normalise(raw: str, answer_type: AnswerType, choices: list[str]) -> Parsed:
    """The canonical text of an answer, or why it is not one of its type."""
    text = raw.strip()
    if not text:
        return Parsed(error="empty answer")
    if answer_type is AnswerType.INT:
        digits = text.replace(",", "").replace("_", "")
        if not INT_TEXT.match(digits):
            return Parsed(error=f"{raw!r} is not an integer")
        return Parsed(value=str(int(digits)))
    if answer_type is AnswerType.DECIMAL:
        try:
            number = Decimal(text.replace(",", "").replace("_", ""))
        except InvalidOperation:
            return Parsed(error=f"{raw!r} is not a decimal number")
        if not number.is_finite():
            return Parsed(error=f"{raw!r} is not a finite number")
        return Parsed(value=_decimal_text(number))
    if answer_type is AnswerType.CHOICE:
        folded = {_fold(choice): choice for choice in choices}
        chosen = folded.get(_fold(text))
        if chosen is None:
            return Parsed(error=f"{raw!r} is not one of {', '.join(choices)}")
        return Parsed(value=chosen)
    return Parsed(value=_fold(text))


def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _decimal_text(number: Decimal) -> str:
    """1.50 and 1.5 are one value: trailing zeros dropped, never exponent notation."""
    text = format(number.normalize(), "f")
    return "0" if text in ("-0", "+0") else text


def reminder(kind: ThreadKind, answer_type: AnswerType, choices: list[str]) -> str:
    """The answer format a prompt asks for (and the reminder of a re-ask repeats)."""
    if kind is ThreadKind.REVIEW:
        return "End your reply with exactly one line: VERDICT: approve|request_changes|abstain"
    what = {
        AnswerType.INT: "an integer",
        AnswerType.DECIMAL: "a decimal number",
        AnswerType.CHOICE: "one of: " + ", ".join(choices),
        AnswerType.TEXT: "a short text",
    }[answer_type]
    return f"End your reply with exactly one line: ANSWER: <{what}>"
