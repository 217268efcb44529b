"""The `thread`, `budget` and `resolve` commands' arguments, apart from their code so that
`whoosh --help` imports no pydantic contract (tests/cli/test_startup_imports.py keeps the
choices below equal to the contract's enums in whoosh_shared.contract.threads)."""

from __future__ import annotations

import argparse

THREAD_KINDS = ("question", "review")
ANSWER_TYPES = ("int", "decimal", "choice", "text")
RULES = ("plurality", "majority", "supermajority", "unanimous")
THREAD_STATES = ("deliberating", "awaiting_human", "decided", "closed")


def add_arguments(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    thread = commands.add_parser("thread", help="questions and reviews answered by agents' votes")
    sub = thread.add_subparsers(dest="thread_action", metavar="ACTION", required=True)
    start = sub.add_parser("start", parents=[common], help="ask participants; tally their votes")
    start.add_argument("topic", metavar="TOPIC")
    start.add_argument("--kind", choices=list(THREAD_KINDS), default="question")
    start.add_argument("--participants", metavar="A,B,C", help="agents by name")
    start.add_argument("--address", metavar="ADDR", help="whoosh://[agent][:role]@project")
    start.add_argument("--role", default="participant")
    start.add_argument("--veto", metavar="A,B", help="participants whose rejection blocks")
    start.add_argument("--answer-type", choices=list(ANSWER_TYPES), default="text")
    start.add_argument("--choices", metavar="X,Y", help="for --answer-type choice")
    start.add_argument("--rule", choices=list(RULES), default="majority")
    start.add_argument("--rounds", type=int, default=1, metavar="N", help="1 = independent vote")
    start.add_argument("--quorum", type=float, metavar="W", help="minimum cast weight")
    start.add_argument("--subject", metavar="TEXT", help="what a review judges")
    start.add_argument("--subject-task", metavar="ID", help="judge a completed task's output")
    start.add_argument("--project", default="default")
    start.add_argument(
        "--escalation", metavar="RULES", help="escalation rules as YAML/JSON, or @FILE"
    )
    start.add_argument("--budget-tokens", type=int, metavar="N", help="the thread's own budget")
    start.add_argument("--budget-usd", type=float, metavar="X")
    start.add_argument(
        "--budget-stop",
        action="store_true",
        help="cancel the answers still running once the thread's budget is used up",
    )
    start.add_argument("--wait", action="store_true", help="follow; exit 0 only on a decision")
    lst = sub.add_parser("list", parents=[common], help="threads, newest first")
    lst.add_argument("--state", choices=list(THREAD_STATES))
    lst.add_argument("--limit", type=int, default=50, metavar="N")
    for name, text in (("get", "one thread: votes and decision"), ("events", "stored history")):
        p = sub.add_parser(name, parents=[common], help=text)
        p.add_argument("thread_id", metavar="ID")
    post = sub.add_parser("post", parents=[common], help="post a message (operator)")
    post.add_argument("thread_id", metavar="ID")
    post.add_argument("text", metavar="TEXT")
    decide = sub.add_parser("decide", parents=[common], help="decide as a human (operator)")
    decide.add_argument("thread_id", metavar="ID")
    decide.add_argument("decision", metavar="DECISION")
    decide.add_argument("--reason", default="")
    close = sub.add_parser("close", parents=[common], help="close without a decision")
    close.add_argument("thread_id", metavar="ID")
    close.add_argument("--reason", default="closed by user")
    budget = commands.add_parser("budget", help="token and USD budgets")
    bsub = budget.add_subparsers(dest="budget_action", metavar="ACTION", required=True)
    bset = bsub.add_parser("set", parents=[common], help="set a budget (admin)")
    bset.add_argument("scope", metavar="SCOPE", help="global, key:P, agent:N, thread:ID, project:N")
    bset.add_argument("--tokens", type=int, metavar="N")
    bset.add_argument("--usd", type=float, metavar="X")
    bset.add_argument("--period", choices=["none", "day", "30d", "month"], default="none")
    bset.add_argument("--warn-at", type=float, default=0.8, metavar="SHARE")
    bset.add_argument("--on-exhausted", choices=["refuse", "stop"], default="refuse")
    bsub.add_parser("list", parents=[common], help="budgets with use and reservations")
    bsub.add_parser("usage", parents=[common], help="tokens and cost per key, agent and model")
    res = commands.add_parser("resolve", parents=[common], help="agents a semantic address names")
    res.add_argument("address", metavar="ADDRESS")
