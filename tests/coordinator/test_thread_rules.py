"""Pure thread rules from tables: answer lines, normalisation, tallies, escalation trees."""

from __future__ import annotations

import pytest
from whoosh_coordinator.threads.answers import Parsed, parse_vote
from whoosh_coordinator.threads.escalation import Facts, evaluate
from whoosh_coordinator.threads.tally import Ballot, decide
from whoosh_shared.contract.threads import AnswerType, EscalationRule, Rule, ThreadKind

Q, R = ThreadKind.QUESTION, ThreadKind.REVIEW


@pytest.mark.parametrize(
    ("output", "kind", "answer_type", "expected"),
    [
        ("thinking...\nANSWER: 42", Q, AnswerType.INT, Parsed("42")),
        ("answer: 1,000", Q, AnswerType.INT, Parsed("1000")),
        ("ANSWER:  -7 ", Q, AnswerType.INT, Parsed("-7")),
        ("ANSWER: 3.0", Q, AnswerType.INT, Parsed(error="'3.0' is not an integer")),
        ("ANSWER: 1.50", Q, AnswerType.DECIMAL, Parsed("1.5")),
        ("ANSWER: 1e2", Q, AnswerType.DECIMAL, Parsed("100")),
        ("ANSWER: -0.0", Q, AnswerType.DECIMAL, Parsed("0")),
        ("ANSWER: NaN", Q, AnswerType.DECIMAL, Parsed(error="'NaN' is not a finite number")),
        ("ANSWER: abc", Q, AnswerType.DECIMAL, Parsed(error="'abc' is not a decimal number")),
        ("ANSWER: paris", Q, AnswerType.CHOICE, Parsed("Paris")),
        ("ANSWER: Rome", Q, AnswerType.CHOICE, Parsed(error="'Rome' is not one of Paris, Lyon")),
        ("ANSWER:  The   \uff23at ", Q, AnswerType.TEXT, Parsed("the cat")),
        ("no line at all", Q, AnswerType.INT, Parsed(error="no ANSWER line")),
        ("ANSWER: 1\nANSWER: 2", Q, AnswerType.INT, Parsed(error="2 ANSWER lines")),
        ("ANSWER:", Q, AnswerType.TEXT, Parsed(error="empty answer")),
        ("The ANSWER: 4 is inline", Q, AnswerType.INT, Parsed(error="no ANSWER line")),
        ("looks fine\nVERDICT: approve", R, AnswerType.TEXT, Parsed("approve")),
        ("VERDICT: Request-Changes", R, AnswerType.TEXT, Parsed("request_changes")),
        ("VERDICT: abstain", R, AnswerType.TEXT, Parsed(None)),
        (
            "VERDICT: maybe",
            R,
            AnswerType.TEXT,
            Parsed(error="'maybe' not in approve|request_changes|abstain"),
        ),
        ("VERDICT: approve\nVERDICT: approve", R, AnswerType.TEXT, Parsed(error="2 VERDICT lines")),
        ("ANSWER: 4", R, AnswerType.TEXT, Parsed(error="no VERDICT line")),
        ('{"answer": 42, "rationale": "6*7"}', Q, AnswerType.INT, Parsed("42")),
        ('{"verdict": "approve"}', R, AnswerType.TEXT, Parsed("approve")),
        ('{"answer": true}', Q, AnswerType.TEXT, Parsed(error="no ANSWER line")),
        ('{"other": 1}', Q, AnswerType.INT, Parsed(error="no ANSWER line")),
        ("[1, 2]", Q, AnswerType.INT, Parsed(error="no ANSWER line")),
    ],
)
def test_parse_vote(
    output: str, kind: ThreadKind, answer_type: AnswerType, expected: Parsed
) -> None:
    assert parse_vote(output, kind, answer_type, ["Paris", "Lyon"]) == expected


def b(voter: str, value: str | None, weight: float = 1.0, veto: bool = False) -> Ballot:
    return Ballot(voter, value, weight, veto)


@pytest.mark.parametrize(
    ("ballots", "rule", "quorum", "result", "decision"),
    [
        ([b("a", "4"), b("b", "4"), b("c", "5")], Rule.MAJORITY, None, "decided", "4"),
        ([b("a", "4"), b("b", "5"), b("c", "6")], Rule.MAJORITY, None, "tie", None),
        (
            [b("a", "4"), b("b", "4"), b("c", "5"), b("d", "6"), b("e", "7")],
            Rule.MAJORITY,
            None,
            "split",
            None,
        ),
        ([b("a", "4"), b("b", "5"), b("c", "6")], Rule.PLURALITY, None, "tie", None),
        (
            [b("a", "4"), b("b", "4"), b("c", "5"), b("d", "6")],
            Rule.PLURALITY,
            None,
            "decided",
            "4",
        ),
        ([b("a", "4"), b("b", "4"), b("c", "5"), b("d", "5")], Rule.MAJORITY, None, "tie", None),
        # exactly half is not a majority
        ([b("a", "4", 2), b("b", "5"), b("c", "6")], Rule.MAJORITY, None, "split", None),
        ([b("a", "4", 2.1), b("b", "5"), b("c", "6")], Rule.MAJORITY, None, "decided", "4"),
        # two thirds is a supermajority, just under is not
        ([b("a", "x"), b("b", "x"), b("c", "y")], Rule.SUPERMAJORITY, None, "decided", "x"),
        (
            [b("a", "x", 0.66), b("b", "x", 1.34), b("c", "y", 1.0001)],
            Rule.SUPERMAJORITY,
            None,
            "split",
            None,
        ),
        ([b("a", "x"), b("b", "x"), b("c", None)], Rule.UNANIMOUS, None, "decided", "x"),
        ([b("a", "x"), b("b", "x"), b("c", "y")], Rule.UNANIMOUS, None, "split", None),
        # weights: exact arithmetic, 0.1 + 0.2 ties 0.3
        ([b("a", "x", 0.1), b("b", "x", 0.2), b("c", "y", 0.3)], Rule.PLURALITY, None, "tie", None),
        # quorum over cast (non-abstaining) weight
        ([b("a", "x"), b("b", None), b("c", None)], Rule.MAJORITY, None, "no_quorum", None),
        ([b("a", "x"), b("b", None), b("c", None)], Rule.MAJORITY, 1.0, "decided", "x"),
        ([b("a", "x"), b("b", "x"), b("c", None)], Rule.MAJORITY, 3.0, "no_quorum", None),
        ([b("a", None), b("b", None)], Rule.PLURALITY, 0.0, "no_quorum", None),
        # a veto holder's request_changes blocks approve, whatever the weights
        (
            [b("a", "approve", 5), b("b", "approve", 5), b("v", "request_changes", 0.1, True)],
            Rule.MAJORITY,
            None,
            "vetoed",
            "request_changes",
        ),
        (
            [b("a", "approve"), b("b", "request_changes"), b("v", "approve", 1, True)],
            Rule.MAJORITY,
            None,
            "decided",
            "approve",
        ),
        (
            [b("a", "approve"), b("b", "approve"), b("v", None, 1, True)],
            Rule.MAJORITY,
            None,
            "decided",
            "approve",
        ),
    ],
)
def test_decide(ballots, rule, quorum, result, decision) -> None:
    outcome = decide(ballots, rule, quorum)
    assert (outcome.result, outcome.decision) == (result, decision)
    assert decide(list(reversed(ballots)), rule, quorum) == outcome  # order never matters


def test_adding_a_vote_for_the_winner_never_undecides() -> None:
    ballots = [b("a", "4"), b("b", "4"), b("c", "5")]
    for rule in Rule:
        before = decide(ballots, rule)
        after = decide([*ballots, b("d", "4")], rule)
        assert not before.decided or (after.decided and after.decision == "4")


F = Facts(
    rounds_without_decision=2,
    splits=((2.0, 1.0), (2.0, 1.0)),
    messages=7,
    age_s=100,
    idle_s=40,
    unparseable=1,
    budget_share=0.85,
)


@pytest.mark.parametrize(
    ("condition", "holds"),
    [
        ({"rounds_without_decision": 2}, True),
        ({"rounds_without_decision": 3}, False),
        ({"same_split": 2}, True),
        ({"same_split": 3}, False),
        ({"messages_over": 6}, True),
        ({"messages_over": 7}, False),
        ({"age_over_s": 99}, True),
        ({"idle_over_s": 60}, False),
        ({"unparseable_over": 0}, True),
        ({"budget_share_over": 0.8}, True),
        ({"any": [{"messages_over": 100}, {"idle_over_s": 30}]}, True),
        ({"all": [{"messages_over": 100}, {"idle_over_s": 30}]}, False),
        ({"not": {"all": [{"messages_over": 100}, {"idle_over_s": 30}]}}, True),
        ({"all": [{"same_split": 2}, {"not": {"budget_share_over": 0.9}}]}, True),
    ],
)
def test_conditions(condition, holds) -> None:
    assert evaluate(condition, F) is holds


def test_same_split_needs_a_real_split() -> None:
    assert not evaluate({"same_split": 1}, Facts(splits=((3.0,),)))  # no_quorum / one value
    assert evaluate({"same_split": 2}, Facts(splits=((1.0, 1.0), (2.0, 1.0), (2.0, 1.0))))
    assert not evaluate({"same_split": 2}, Facts(splits=((2.0, 1.0), (1.0, 1.0))))


@pytest.mark.parametrize(
    ("when", "words"),
    [
        ({"sometimes": 1}, "unknown condition 'sometimes'"),
        ({"any": []}, "when.any: expected a non-empty list"),
        ({"all": [{"messages_over": -1}]}, "when.all[0].messages_over: expected a number >= 0"),
        ({"not": {"same_split": "two"}}, "when.not.same_split"),
        ({"same_split": 1, "messages_over": 2}, "exactly one key"),
    ],
)
def test_bad_conditions_are_refused_naming_the_place(when, words) -> None:
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        EscalationRule(name="r", when=when, do=[{"kind": "notify"}])
