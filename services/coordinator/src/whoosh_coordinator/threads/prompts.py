"""The prompt of one participant in one round: pure text from the thread's state.

Earlier rounds are shown as their tally and each voter's value only (not full peer
outputs): lower-bandwidth exchange keeps answers diverse, which is where the gain of
voting comes from.
"""

from __future__ import annotations

from typing import Any

from whoosh_shared.contract.threads import AnswerType, ThreadKind

from whoosh_coordinator.threads.answers import reminder

SUBJECT_CHARS = 20_000


def render_round_prompt(
    topic: str,
    kind: str,
    answer_type: str,
    choices: list[str],
    participant: dict[str, Any],
    subject: str | None,
    history: list[dict[str, Any]],
    remind: str | None = None,
) -> str:
    lines = [f"You are taking part in a {kind} as '{participant['role']}'."]
    lines += ["", f"Topic: {topic}"]
    if subject:
        lines += ["", "Subject:", subject[:SUBJECT_CHARS]]
    for past in history:
        tally = ", ".join(f"{value}: {weight:g}" for value, weight in past["tally"].items())
        lines += ["", f"Round {past['round']} ended {past['result']} ({tally or 'no votes'})."]
        for voter, value in sorted(past["ballots"].items()):
            lines.append(f"- {voter}: {value if value is not None else 'abstained'}")
    if remind:
        lines += ["", f"Your previous reply could not be read as a vote ({remind})."]
    lines += ["", reminder(ThreadKind(kind), AnswerType(answer_type), choices)]
    return "\n".join(lines)
