"""Thread commands and the task-end listener that turns participants' answers into votes.

Registered in the coordinator's dispatch table (commands.py). Everything one command or
one task end causes -- the thread's events, the tasks of a new round, an alert -- is
returned or saved in one transaction, so a crash never leaves a vote without its round
or a round without its tasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError
from whoosh_shared.contract import commands as c
from whoosh_shared.contract import threads as t
from whoosh_shared.contract.addresses import AddressError, parse_address, resolve
from whoosh_shared.contract.alerts import alert_id
from whoosh_shared.contract.commands import CommandReply, RejectCode
from whoosh_shared.contract.enums import TaskStatus

from whoosh_coordinator.alerts.domain import Alert
from whoosh_coordinator.budgets.commands import refuse_if_exhausted
from whoosh_coordinator.budgets.domain import Budget
from whoosh_coordinator.rejection import Rejected
from whoosh_coordinator.scheduling.admission import admit
from whoosh_coordinator.stopping import stop_tasks
from whoosh_coordinator.tasks.domain import Task
from whoosh_coordinator.threads.domain import Thread
from whoosh_coordinator.threads.escalation import evaluate
from whoosh_coordinator.threads.prompts import render_round_prompt

if TYPE_CHECKING:
    from whoosh_coordinator.commands import CommandHandler

ORIGIN_KIND = "thread"
ALERT_RULE = "ThreadEscalated"


# -- commands ---------------------------------------------------------------------------


def start_thread(handler: CommandHandler, cmd: t.StartThread) -> CommandReply:
    thread, made = create_thread(handler, cmd)
    handler.save(thread, *made)
    return CommandReply.accept(thread_id=str(thread.id))


def create_thread(
    handler: CommandHandler, cmd: t.StartThread, origin: dict[str, str] | None = None
) -> tuple[Thread, list[Aggregate]]:
    """A new thread with its budget and its first round's tasks, to be saved together
    (Rejected when no agent could take part). `origin`: what started it, told when it
    ends (a workflow's review step)."""
    if handler.projection_budgets() != set():  # new work under a used-up budget: refused
        refuse_if_exhausted(handler, cmd.actor, None, {"project": cmd.project})
    participants = [p.model_dump() for p in cmd.participants] or _by_address(handler, cmd)
    for p in participants:
        if handler.projection.agent_by_name(p["agent"]) is None:
            raise Rejected(RejectCode.NOT_FOUND, f"unknown agent '{p['agent']}'")
    thread = Thread(
        topic=cmd.topic,
        kind=cmd.kind.value,
        project=cmd.project,
        answer_type=cmd.answer_type.value,
        choices=list(cmd.choices),
        protocol=cmd.protocol.model_dump(mode="json"),
        participants=participants,
        subject=_subject(handler, cmd),
        escalation=_rules(handler, cmd),
        llm=cmd.llm.model_dump(mode="json") if cmd.llm else None,
        timeout_s=cmd.timeout_s,
        actor=cmd.actor,
        at=handler.clock(),
        origin=origin,
    )
    budget = _own_budget(handler, thread, cmd)
    tasks = _open_round(handler, thread, [p["agent"] for p in participants], check=True)
    return thread, [*budget, *tasks]


def _own_budget(handler: CommandHandler, thread: Thread, cmd: t.StartThread) -> list[Aggregate]:
    """The thread's own budget (scope thread:<id>), saved with the thread and its first
    round, so the round's tasks reserve against it when they are assigned."""
    if cmd.budget_tokens is None and cmd.budget_usd is None:
        return []
    budget = Budget(scope=f"thread:{thread.id}")
    budget.set(cmd.budget_tokens, cmd.budget_usd, "none", 0.8, cmd.budget_on_exhausted, cmd.actor)
    return [budget]


def _rules(handler: CommandHandler, cmd: t.StartThread) -> list[dict[str, Any]]:
    """The thread's own rules, then whoosh.yaml's defaults it does not override by name."""
    own = [r.model_dump(mode="json") for r in cmd.escalation]
    names = {r["name"] for r in own}
    return own + [r for r in handler.default_escalation if r["name"] not in names]


def _by_address(handler: CommandHandler, cmd: t.StartThread) -> list[dict[str, Any]]:
    try:
        address = parse_address(cmd.address or "")
    except AddressError as exc:
        raise Rejected(RejectCode.INVALID, str(exc)) from None
    agents = handler.projection.agents.values()
    enabled = {a.spec.name for a in agents if a.enabled}
    names = resolve(address, [a.spec for a in agents], enabled)
    if not names:
        raise Rejected(RejectCode.NOT_FOUND, f"no agent matches {cmd.address}")
    role = address.role if address.role != "*" else cmd.role
    return [t.Participant(agent=name, role=role).model_dump() for name in names]


def _subject(handler: CommandHandler, cmd: t.StartThread) -> str | None:
    if cmd.subject_task is None:
        return cmd.subject
    view = handler.projection.tasks.get(cmd.subject_task)
    if view is None:
        raise Rejected(RejectCode.NOT_FOUND, f"unknown task {cmd.subject_task}")
    if view.status is not TaskStatus.COMPLETED:
        raise Rejected(
            RejectCode.BAD_STATE, f"task {view.id} is {view.status.value}, not completed"
        )
    return "\n\n".join(part for part in (cmd.subject, view.output) if part)


def post(handler: CommandHandler, cmd: t.PostToThread) -> CommandReply:
    thread = load_thread(handler, cmd.thread_id)
    thread.post(cmd.actor, cmd.body, handler.clock())
    handler.save(thread)
    return CommandReply.accept(thread_id=str(thread.id))


def decide_thread(handler: CommandHandler, cmd: t.DecideThread) -> CommandReply:
    thread = load_thread(handler, cmd.thread_id)
    thread.decide_by_human(cmd.decision, cmd.reason, cmd.actor, handler.clock())
    handler.save(thread, *stop_leftovers(handler, thread), *ended(handler, thread))
    return CommandReply.accept(thread_id=str(thread.id))


def close_thread(handler: CommandHandler, cmd: t.CloseThread) -> CommandReply:
    thread = load_thread(handler, cmd.thread_id)
    thread.close("cancelled", cmd.reason, cmd.actor)
    handler.save(thread, *stop_leftovers(handler, thread), *ended(handler, thread))
    return CommandReply.accept(thread_id=str(thread.id))


def stop_leftovers(
    handler: CommandHandler, thread: Thread, created: Sequence[Aggregate] = ()
) -> list[Aggregate]:
    """A thread that closed while answers were still out (a human's decision, a close,
    an escalation rule's `close`) cancels those tasks in the same transaction: their
    answers would never be read, and they would keep spending tokens and budget.
    `created`: tasks this decision made (a re-ask), not in the store yet."""
    pending = getattr(thread, "leftovers", None)
    if thread.open or not pending:
        return []
    thread.leftovers = []
    reason = f"thread {thread.id} closed ({thread.outcome}) before this answer was needed"
    return stop_tasks(handler, pending, reason, actor=f"thread {thread.id}", fresh=created)


def ended(handler: CommandHandler, thread: Thread) -> list[Aggregate]:
    """A thread that closed in this decision tells what started it (a workflow's review
    step advances its execution), in the same transaction."""
    if thread.open or not getattr(thread, "origin", None):
        return []
    return [a for listener in handler.thread_end_listeners for a in listener(thread)]


def load_thread(handler: CommandHandler, thread_id: UUID) -> Thread:
    try:
        thread = handler.aggregates.get(thread_id)
    except AggregateNotFoundError:
        raise Rejected(RejectCode.NOT_FOUND, f"unknown thread {thread_id}") from None
    if not isinstance(thread, Thread):
        raise Rejected(RejectCode.NOT_FOUND, f"unknown thread {thread_id}")
    return thread


# -- rounds -----------------------------------------------------------------------------


def _open_round(
    handler: CommandHandler, thread: Thread, agents: list[str], check: bool = False
) -> list[Task]:
    """`check`: refuse (Rejected) what no agent could run -- at a command only; a round
    opened by a task's end must not turn that task's report into a rejection."""
    number = thread.round + 1
    tasks = {agent: _ask(handler, thread, agent, number, check=check) for agent in agents}
    thread.open_round({agent: task.id for agent, task in tasks.items()})
    return list(tasks.values())


def _ask(
    handler: CommandHandler,
    thread: Thread,
    agent: str,
    number: int,
    remind: str | None = None,
    check: bool = False,
) -> Task:
    """One participant's task, pinned to its agent (so a round's agents are distinct)."""
    participant = thread.participant(agent) or {"agent": agent, "role": "participant"}
    prompt = render_round_prompt(
        thread.topic,
        thread.kind,
        thread.answer_type,
        thread.choices,
        participant,
        thread.subject,
        thread.history,
        remind,
    )
    llm = c.LlmOptions.model_validate(thread.llm) if thread.llm else None
    model = thread.model_for(agent)
    submit = c.SubmitTask(
        prompt=prompt, agent=agent, model=model, llm=llm, timeout_s=thread.timeout_s
    )
    if check:
        admit(submit, handler.projection)
    return Task(
        prompt=prompt,
        priority=submit.priority,
        capabilities=[],
        agent_type=None,
        model=model,
        agent=agent,
        timeout_s=thread.timeout_s,
        retry={"max_attempts": 1, "backoff_s": 0.0},
        actor=f"thread {thread.id}",
        llm=llm.model_dump(mode="json") if llm else None,
        origin={
            "kind": ORIGIN_KIND,
            "id": str(thread.id),
            "round": str(number),
            "participant": agent,
            "project": thread.project,  # its answers count against project:<name> too
        },
    )


def task_end_listener(handler: CommandHandler):
    """What a participant's task end causes, saved with the task's last event."""

    def on_task_end(task: Task) -> Sequence[Aggregate]:
        origin = task.origin or {}
        if origin.get("kind") != ORIGIN_KIND:
            return []
        try:
            thread = load_thread(handler, UUID(origin["id"]))
        except Rejected:
            return []
        agent = thread.waits_for(task.id)
        if agent is None or not thread.open:
            return []  # a late answer for a closed round or thread: the task keeps it
        created = advance(handler, thread, task, agent)
        stopped = stop_leftovers(handler, thread, created)
        return [thread, *created, *stopped, *ended(handler, thread)]

    return on_task_end


def advance(handler: CommandHandler, thread: Thread, task: Task, agent: str) -> list[Aggregate]:
    now = handler.clock()
    created: list[Aggregate] = []
    if task.status == TaskStatus.COMPLETED.value:
        body = getattr(task, "answer", "")[: t.MAX_BODY]
        if thread.record_answer(agent, body, now):
            reask = _ask(handler, thread, agent, thread.round, remind="see the format below")
            thread.reask(agent, reask.id)
            created.append(reask)
    else:
        thread.record_failure(agent, getattr(task, "end_reason", None) or task.status, now)
    created += fire_due_rules(handler, thread)
    if thread.open and thread.round_complete:
        created += _after_round(handler, thread)
    return created


def _after_round(handler: CommandHandler, thread: Thread) -> list[Aggregate]:
    outcome = thread.close_round()
    if outcome.decided:
        thread.close("consensus" if outcome.result == "decided" else "vetoed", "decided", "system")
        return []
    created = fire_due_rules(handler, thread)
    if not thread.open or thread.state == t.ThreadState.AWAITING_HUMAN.value or thread.asked:
        return created
    if thread.round < int(thread.protocol.get("max_rounds", 1)):
        return created + _open_round(handler, thread, [p["agent"] for p in thread.participants])
    thread.close("no_decision", f"{outcome.result} after {thread.round} round(s)", "system")
    return created


def fire_due_rules(handler: CommandHandler, thread: Thread) -> list[Aggregate]:
    """Fire every rule whose condition now holds and that has not fired on this thread."""
    if not thread.open:
        return []
    created: list[Aggregate] = []
    for rule in _due(handler, thread):
        thread.escalate(rule, handler.clock())
        for action in rule["do"]:
            created += _act(handler, thread, rule["name"], action)
            if not thread.open:
                break
    return created


def _due(handler: CommandHandler, thread: Thread) -> list[dict[str, Any]]:
    facts = thread.facts(handler.clock(), _budget_share(handler, thread))
    return thread.due_rules(lambda rule: evaluate(rule["when"], facts))


def _budget_share(handler: CommandHandler, thread: Thread) -> float:
    """The share used of the thread's own budget (scope thread:<id>), 0 without one."""
    scope = f"thread:{thread.id}"
    if scope not in handler.projection.budgets.scopes:
        return 0.0
    views = handler.projection.budgets.listed()
    return next((v.share_used for v in views if v.scope == scope), 0.0)


def _act(
    handler: CommandHandler, thread: Thread, rule: str, action: dict[str, Any]
) -> list[Aggregate]:
    kind = action["kind"]
    if kind == "notify":
        return [_alert(handler, thread, rule, action.get("severity", "warning"))]
    if kind == "close":
        thread.close("escalated", f"rule {rule}", "system")
        return []
    if kind == "reask_with" and action.get("model") and not action.get("agent"):
        return _reask_with_model(handler, thread, rule, action["model"])
    if kind in ("add_participant", "reask_with"):
        names = _targets(handler, action)
        if not names:
            return [_alert(handler, thread, rule, "warning", "no agent found to add")]
        for name in names:
            role = action.get("role") or ("expert" if kind == "reask_with" else "participant")
            thread.add_participant(
                t.Participant(agent=name, role=role).model_dump(), f"escalation:{rule}"
            )
        if thread.asked:  # mid-round: they join the next round
            return []
        agents = names if kind == "reask_with" else [p["agent"] for p in thread.participants]
        return list(_open_round(handler, thread, agents))
    return []  # wait_for_human: the Escalated event put the thread in awaiting_human


def _reask_with_model(
    handler: CommandHandler, thread: Thread, rule: str, model: str
) -> list[Aggregate]:
    """Ask every participant again, with `model` where its agent's server has it (the
    others keep theirs). No participant able to run it: an alert says so instead."""
    able = {}
    for p in thread.participants:
        try:
            admit(c.SubmitTask(prompt="?", agent=p["agent"], model=model), handler.projection)
        except Rejected:
            continue
        able[p["agent"]] = model
    if not able:
        return [_alert(handler, thread, rule, "warning", f"no participant can run model {model}")]
    thread.use_models(able, f"escalation:{rule}")
    if thread.asked:  # mid-round: the next round uses it
        return []
    return list(_open_round(handler, thread, [p["agent"] for p in thread.participants]))


def _targets(handler: CommandHandler, action: dict[str, Any]) -> list[str]:
    if action.get("agent"):
        return [action["agent"]] if handler.projection.agent_by_name(action["agent"]) else []
    try:
        address = parse_address(action["address"])
    except AddressError:
        return []
    agents = handler.projection.agents.values()
    return resolve(address, [a.spec for a in agents], {a.spec.name for a in agents if a.enabled})[
        :1
    ]


def _alert(
    handler: CommandHandler, thread: Thread, rule: str, severity: str, note: str = ""
) -> Alert:
    """An alert through the existing path (the Alert aggregate; the monitor's webhook and
    the dashboard read its events), labelled with the thread and the rule."""
    labels = {"thread": str(thread.id), "rule": rule}
    try:
        alert = handler.aggregates.get(alert_id(ALERT_RULE, labels))
    except AggregateNotFoundError:
        alert = Alert(rule=ALERT_RULE, labels=labels)
    summary = f"thread '{thread.topic[:100]}': escalation rule {rule} fired" + (
        f"; {note}" if note else ""
    )
    fields = {"severity": severity, "summary": summary, "value": None, "threshold": None}
    alert.raise_(fields, actor="coordinator")  # type: ignore[union-attr]
    return alert  # type: ignore[return-value]


def sweep(handler: CommandHandler) -> int:
    """Time conditions (age, idle) hold without any event: the coordinator's periodic
    sweep checks open threads that have rules left to fire. Each thread is decided on
    its own; a conflict (another coordinator fired first) skips it until the next sweep,
    when the version check has made the other's firing visible."""
    fired = 0
    for view in list(handler.projection.threads.threads.values()):
        if view.state in (t.ThreadState.CLOSED, t.ThreadState.DECIDED):
            continue
        handler.aggregates.begin()
        try:
            thread = load_thread(handler, view.id)
            if not thread.open or not _due(handler, thread):
                continue
            created = fire_due_rules(handler, thread)
            stopped = stop_leftovers(handler, thread, created)
            handler.save(thread, *created, *stopped, *ended(handler, thread))
            fired += 1
        except (Rejected, IntegrityError):
            handler.aggregates.forget_touched()
    return fired
