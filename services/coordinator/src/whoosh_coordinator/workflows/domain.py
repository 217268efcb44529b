"""The workflow aggregates: WorkflowDefinition (versioned) and Execution (a process manager).

An Execution pins the definition it started with (carried in its first event), so a
new version never changes a run in flight. It decides which steps are ready, runs the
control steps itself, and hands the agent steps (llm, cli, shell) to the caller as
`Launch`es, which become Tasks saved in the same transaction as the step's
`StepScheduled`. A step's end arrives as the end of its task, again in one
transaction, so a crash between two events can neither lose a step nor run it twice.
No I/O here.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event
from whoosh_shared.contract.commands import RejectCode

from whoosh_coordinator.rejection import Rejected
from whoosh_coordinator.workflows import control
from whoosh_coordinator.workflows import definition as d
from whoosh_coordinator.workflows.readiness import ENDED, Ended, verdict
from whoosh_coordinator.workflows.templates import Expression, Missing, walk

WORKFLOW_NAMESPACE = uuid.UUID("6f1c2a8e-4d8b-4b0e-9c57-1f0e3b9a7d21")
MAX_STEP_OUTPUT = 65_536
FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n(.*)\n\s*```\s*$", re.DOTALL)


def workflow_id(name: str) -> UUID:
    return uuid.uuid5(WORKFLOW_NAMESPACE, f"workflow:{name}")


class Workflow(Aggregate):
    """A named workflow and every version of it; id = uuid5 of the name."""

    @event("Defined")
    def __init__(self, name: str, definition: dict[str, Any], source: str, origin: str,
                 actor: str) -> None:  # fmt: skip
        self.name = name
        self.versions: list[dict[str, Any]] = [definition]

    @classmethod
    def create_id(cls, name: str, **_: Any) -> UUID:  # type: ignore[override]
        return workflow_id(name)

    @property
    def latest(self) -> int:
        return len(self.versions)

    def add_version(self, definition: dict[str, Any], source: str, origin: str, actor: str) -> bool:
        """A new version, or False when it equals the latest (importing twice adds nothing)."""
        if definition == self.versions[-1]:
            return False
        self._version_added(definition=definition, source=source, origin=origin, actor=actor)
        return True

    @event("VersionAdded")
    def _version_added(self, definition: dict[str, Any], source: str, origin: str,
                       actor: str) -> None:  # fmt: skip
        self.versions.append(definition)

    def at(self, version: int | None) -> dict[str, Any]:
        if version is None:
            return self.versions[-1]
        if not 1 <= version <= len(self.versions):
            raise Rejected(
                RejectCode.NOT_FOUND,
                f"workflow '{self.name}' has no version {version} (it has 1..{len(self.versions)})",
            )
        return self.versions[version - 1]


@dataclass
class Launch:
    """An agent step ready to become a Task (rendered, with its requirements), or, with
    `review` set, a thread of agents (its StartThread fields, rendered)."""

    step: str
    prompt: str
    agent_type: str | None = None
    model: str | None = None
    agent: str | None = None
    capabilities: list[str] = field(default_factory=list)
    llm: dict[str, Any] | None = None
    timeout_s: float = 1800.0
    retry: dict[str, Any] = field(default_factory=dict)
    review: dict[str, Any] | None = None


def _fresh_state() -> dict[str, Any]:
    return {
        "status": "pending",
        "port": None,
        "output": "",
        "error": None,
        "stderr": "",
        "exit_code": None,
        "task_id": None,
        "wake_at": None,
        "kind": None,
        "continued": False,
        "round": 0,
    }


class Execution(Aggregate):
    """One run of one pinned definition version."""

    @event("Started")
    def __init__(
        self,
        workflow: str,
        version: int,
        definition: dict[str, Any],
        inputs: dict[str, Any],
        actor: str,
        deadline_at: datetime | None,
    ) -> None:
        self.workflow = workflow
        self.version_of_workflow = version
        self.definition_data = definition
        self.inputs = inputs
        self.deadline_at = deadline_at
        self.status = "running"
        self.reason: str | None = None
        self.round = 0
        self.steps: dict[str, dict[str, Any]] = {sid: _fresh_state() for sid in definition["steps"]}

    # -- reading ------------------------------------------------------------------------

    @property
    def spec(self) -> d.Definition:
        cached = self.__dict__.get("_spec")
        if cached is None:
            cached = d.Definition.model_validate(self.definition_data)
            self.__dict__["_spec"] = cached
        return cached

    @property
    def finished(self) -> bool:
        return self.status != "running"

    def running_tasks(self) -> list[UUID]:
        return [UUID(s["task_id"]) for s in self.steps.values() if s["status"] == "running"]

    def take_cancellations(self) -> list[UUID]:
        """Tasks of steps this decision stopped (a failed or cancelled run): the caller
        cancels them in the same save."""
        tasks = self.__dict__.pop("_cancel", [])
        return list(tasks)

    def step_of_task(self, task_id: UUID) -> str | None:
        for sid, state in self.steps.items():
            if state["task_id"] == str(task_id) and state["status"] == "running":
                return sid
        return None

    def _ended(self, sid: str) -> Ended:
        s = self.steps[sid]
        return Ended(status=s["status"], port=s["port"], continued=s["continued"])

    # -- events -------------------------------------------------------------------------

    @event("StepScheduled")
    def _scheduled(self, step: str, task_id: str, round: int) -> None:
        self.steps[step].update(status="running", task_id=task_id, round=round)

    @event("StepWaiting")
    def _waiting(self, step: str, kind: str, wake_at: datetime | None, message: str) -> None:
        self.steps[step].update(status="waiting", kind=kind, wake_at=wake_at, round=self.round)

    @event("StepEnded")
    def _step_ended(
        self,
        step: str,
        status: str,
        port: str | None,
        output: str,
        error: str | None,
        exit_code: int | None,
        continued: bool,
        actor: str,
        stderr: str = "",  # absent from events stored before it existed
    ) -> None:
        self.steps[step].update(
            status=status,
            port=port,
            output=output,
            error=error,
            stderr=stderr,
            exit_code=exit_code,
            continued=continued,
            wake_at=None,
        )

    @event("Finished")
    def _finished(self, status: str, reason: str | None, actor: str) -> None:
        self.status = status
        self.reason = reason

    @event("Retried")
    def _retried(
        self, round: int, steps: list[str], actor: str, deadline_at: datetime | None
    ) -> None:
        self.round = round
        self.status = "running"
        self.reason = None
        self.deadline_at = deadline_at
        for sid in steps:
            self.steps[sid] = {**_fresh_state(), "round": round}

    # -- step ends ----------------------------------------------------------------------

    def _end(self, sid: str, status: str, **fields: Any) -> None:
        output = fields.get("output", "") or ""
        if len(output) > MAX_STEP_OUTPUT:
            output = output[-MAX_STEP_OUTPUT:]
        self._step_ended(
            step=sid,
            status=status,
            port=fields.get("port"),
            output=output,
            error=fields.get("error"),
            exit_code=fields.get("exit_code"),
            continued=fields.get("continued", False),
            actor=fields.get("actor", "system"),
            stderr=fields.get("stderr", ""),
        )

    def succeed_step(self, sid: str, output: str, port: str = "success", **fields: Any) -> None:
        self._end(sid, "succeeded", port=port, output=output, **fields)

    def fail_step(self, sid: str, error: str, output: str = "", **fields: Any) -> None:
        """A step failed: its on_error decides whether the run fails, continues or routes."""
        on_error = self.spec.steps[sid].on_error
        if on_error == "route":
            self._end(sid, "failed", port="error", output=output, error=error, **fields)
        elif on_error == "continue":
            self._end(sid, "failed", port="success", output=output, error=error, continued=True,
                      **fields)  # fmt: skip
        else:
            self._end(sid, "failed", output=output, error=error, **fields)
            self._stop("failed", f"step '{sid}' failed: {error}", "system")

    def _stop(self, status: str, reason: str, actor: str) -> None:
        """End the run: running steps are cancelled (their tasks too), the rest skipped."""
        cancel = self.__dict__.setdefault("_cancel", [])
        for sid, state in self.steps.items():
            if state["status"] == "running":
                cancel.append(UUID(state["task_id"]))
                self._end(sid, "cancelled", error=reason, actor=actor)
            elif state["status"] == "waiting":
                self._end(sid, "cancelled", error=reason, actor=actor)
            elif state["status"] == "pending":
                self._end(sid, "skipped", error=reason, actor=actor)
        self._finished(status=status, reason=reason, actor=actor)

    # -- commands -----------------------------------------------------------------------

    def task_ended(
        self,
        task_id: UUID,
        status: str,
        output: str,
        error: str | None,
        exit_code: int | None,
        *,
        stderr: str = "",
    ) -> bool:
        """The task of a step ended; False when it no longer belongs to a running step."""
        if self.finished:
            return False
        sid = self.step_of_task(task_id)
        if sid is None:
            return False
        if status == "completed":
            self.succeed_step(sid, output, exit_code=exit_code, stderr=stderr)
        else:
            self.fail_step(sid, error or f"task {status}", output=output, exit_code=exit_code,
                           stderr=stderr)  # fmt: skip
        return True

    def scheduled(self, sid: str, task_id: UUID) -> None:
        self._scheduled(step=sid, task_id=str(task_id), round=self.round)

    def cancel(self, reason: str, actor: str) -> None:
        if self.finished:
            raise Rejected(RejectCode.BAD_STATE, f"execution {self.id} is already {self.status}")
        self._stop("cancelled", reason, actor)

    def decide(self, sid: str, approve: bool, actor: str, comment: str) -> None:
        state = self.steps.get(sid)
        if state is None:
            raise Rejected(RejectCode.NOT_FOUND, f"execution {self.id} has no step '{sid}'")
        if self.finished or state["status"] != "waiting" or state["kind"] != "approval":
            raise Rejected(
                RejectCode.BAD_STATE,
                f"step '{sid}' is {state['status']}, not waiting for approval",
            )
        if approve:
            out = json.dumps({"approved": True, "by": actor, "comment": comment})
            self.succeed_step(sid, out, actor=actor)
        else:
            out = json.dumps({"approved": False, "by": actor, "comment": comment})
            why = f"rejected by {actor}" + (f": {comment}" if comment else "")
            self.fail_step(sid, why, output=out, actor=actor)

    def wake(self, now: datetime) -> bool:
        """Timers that are due: waits end, approvals time out, the deadline passes."""
        if self.finished:
            return False
        if self.deadline_at is not None and now >= self.deadline_at:
            self._stop("timed_out", "the execution's deadline passed", "system")
            return True
        woke = False
        for sid, state in self.steps.items():
            if state["status"] != "waiting" or state["wake_at"] is None or now < state["wake_at"]:
                continue
            woke = True
            if state["kind"] == "wait":
                self.succeed_step(sid, self._passthrough(sid))
                continue
            step = self.spec.steps[sid]
            if isinstance(step, d.ApprovalStep) and step.on_timeout == "approve":
                self.succeed_step(sid, json.dumps({"approved": True, "by": "timeout"}))
            else:
                self.fail_step(sid, "approval timed out")
            if self.finished:
                break
        return woke

    def next_wake(self) -> datetime | None:
        times = [s["wake_at"] for s in self.steps.values() if s["wake_at"] is not None]
        if self.deadline_at is not None and not self.finished:
            times.append(self.deadline_at)
        return min(times) if times else None

    def retry(self, from_step: str | None, actor: str, now: datetime) -> list[str]:
        if not self.finished:
            raise Rejected(
                RejectCode.BAD_STATE,
                f"execution {self.id} is still running; cancel it before retrying",
            )
        spec = self.spec
        again = {sid for sid, s in self.steps.items() if s["status"] != "succeeded"}
        if from_step is not None:
            if from_step not in spec.steps:
                raise Rejected(
                    RejectCode.NOT_FOUND, f"execution {self.id} has no step '{from_step}'"
                )
            again |= {from_step} | spec.descendants(from_step)
        if not again:
            raise Rejected(RejectCode.BAD_STATE, "every step succeeded; name one with --from")
        ordered = [sid for sid in spec.steps if sid in again]
        deadline = None
        if spec.settings.deadline:
            deadline = now + timedelta(seconds=spec.settings.deadline)
        self._retried(round=self.round + 1, steps=ordered, actor=actor, deadline_at=deadline)
        return ordered

    # -- advancing ----------------------------------------------------------------------

    def advance(self, now: datetime) -> list[Launch]:
        """Settle every step that can be settled now; return the agent steps to launch.

        The caller turns each launch into a Task and calls `scheduled`, then asks again
        until nothing is returned (a launch can free others only through its task)."""
        spec = self.spec
        while not self.finished:
            progressed = False
            ready: list[str] = []
            for sid in spec.steps:
                if self.steps[sid]["status"] != "pending":
                    continue
                edges = [(up, port, self._ended(up)) for up, port in spec.edges(sid)]
                found = verdict(spec.trigger_rule(sid), edges)
                if found.action == "wait":
                    continue
                if found.action == "skip":
                    self._end(sid, "skipped", error=found.reason)
                    progressed = True
                elif spec.steps[sid].type in d.TASK_STEPS + d.THREAD_STEPS:
                    ready.append(sid)
                else:
                    self._run_control(sid, now)
                    progressed = True
                if self.finished:
                    return []
            if progressed:
                continue
            launches, failed = self._launches(ready)
            if self.finished:
                return []
            if launches:
                return launches
            if failed:
                continue
            self._maybe_finish()
            return []
        return []

    def _launches(self, ready: list[str]) -> tuple[list[Launch], bool]:
        running = sum(1 for s in self.steps.values() if s["status"] == "running")
        free = max(0, self.spec.settings.max_parallel - running)
        launches, failed = [], False
        for sid in ready[:free]:
            try:
                launches.append(self._launch(sid))
            except control.StepFailure as failure:
                self.fail_step(sid, str(failure))
                failed = True
                if self.finished:
                    return [], True
        return launches, failed

    def _maybe_finish(self) -> None:
        if all(s["status"] in ENDED for s in self.steps.values()):
            self._finished(status="succeeded", reason=None, actor="system")

    # -- rendering ----------------------------------------------------------------------

    def resolver(self, item: Any = None) -> Any:
        def resolve(expr: Expression) -> Any:
            path = expr.path
            root = path[0]
            if root == "inputs":
                return walk(self.inputs, path[1:], "inputs")
            if root == "item":
                return walk(item, path[1:], "item")
            if root == "execution":
                info = {"id": str(self.id), "workflow": self.workflow,
                        "version": self.version_of_workflow}  # fmt: skip
                return walk(info, path[1:], "execution")
            if root == "steps":
                return self._step_value(str(path[1]), str(path[2]), path[3:])
            raise Missing(f"unknown name '{root}'")

        return resolve

    def _step_value(self, sid: str, fld: str, rest: tuple[Any, ...]) -> Any:
        state = self.steps.get(sid)
        shown = f"steps.{sid}.{fld}"
        if state is None:
            raise Missing(f"'steps.{sid}' does not exist")
        if state["status"] not in ("succeeded", "failed"):
            raise Missing(f"'{shown}': step '{sid}' {state['status']}, it has no result")
        if fld == "json":
            data = parse_json_output(state["output"])
            if data is _NOT_JSON:
                raise Missing(f"'{shown}': the output of step '{sid}' is not JSON")
            return walk(data, rest, shown)
        value = {
            "output": state["output"],
            "stderr": state["stderr"],
            "error": state["error"] or "",
            "exit_code": state["exit_code"],
            "status": state["status"],
            "port": state["port"],
        }[fld]
        return walk(value, rest, shown)

    def _render(self, value: Any, item: Any = None) -> Any:
        resolve = self.resolver(item)
        return control.render_deep(value, lambda text: control.render_text(text, resolve))

    def _text(self, value: str | None) -> str | None:
        if value is None:
            return None
        from whoosh_coordinator.workflows.templates import as_text

        return as_text(self._render(value))

    def _inputs_of(self, sid: str) -> list[tuple[str, str]]:
        """(upstream, output) of every edge of `sid` that is satisfied."""
        from whoosh_coordinator.workflows.readiness import edge_state

        return [
            (up, self.steps[up]["output"])
            for up, port in self.spec.edges(sid)
            if edge_state(self._ended(up), port) == "satisfied"
        ]

    def _passthrough(self, sid: str) -> str:
        inputs = self._inputs_of(sid)
        return inputs[0][1] if inputs else ""

    # -- control steps ------------------------------------------------------------------

    def _run_control(self, sid: str, now: datetime) -> None:
        step = self.spec.steps[sid]
        try:
            self._control(sid, step, now)
        except control.StepFailure as failure:
            self.fail_step(sid, str(failure))

    def _control(self, sid: str, step: Any, now: datetime) -> None:
        render_one = self._render
        if isinstance(step, d.IfStep):
            held = control.conditions_hold(step.conditions, step.combine, render_one)
            self.succeed_step(sid, self._passthrough(sid), port="true" if held else "false")
        elif isinstance(step, d.SwitchStep):
            port = step.fallback
            for rule in step.rules:
                if control.conditions_hold(rule.conditions, rule.combine, render_one):
                    port = rule.key
                    break
            self.succeed_step(sid, self._passthrough(sid), port=port)  # type: ignore[arg-type]
        elif isinstance(step, d.FilterStep):
            items = self._items(sid, step)
            kept = [
                it for it in items
                if control.conditions_hold(
                    step.conditions, step.combine, lambda v, it=it: self._render(v, it)
                )
            ]  # fmt: skip
            self.succeed_step(sid, json.dumps(kept, ensure_ascii=False))
        elif isinstance(step, d.MergeStep):
            merged = control.run_merge(step, self._inputs_of(sid))
            self.succeed_step(sid, json.dumps(merged, ensure_ascii=False))
        elif isinstance(step, d.SetStep):
            values = self._render(step.fields)
            if step.include_input:
                base = parse_json_output(self._passthrough(sid))
                values = {**(base if isinstance(base, dict) else {}), **values}
            self.succeed_step(sid, json.dumps(values, ensure_ascii=False))
        elif isinstance(step, d.WaitStep):
            if step.duration is not None:
                wake = now + timedelta(seconds=step.duration)
            else:
                try:
                    wake = d.parse_until(str(self._render(step.until)))
                except ValueError as exc:
                    raise control.StepFailure(str(exc)) from None
            self._waiting(step=sid, kind="wait", wake_at=wake, message="")
        elif isinstance(step, d.ApprovalStep):
            wake = now + timedelta(seconds=step.timeout) if step.timeout else None
            message = self._text(step.message) or ""
            self._waiting(step=sid, kind="approval", wake_at=wake, message=message)
        elif isinstance(step, d.FailStep):
            raise control.StepFailure(self._text(step.message) or "failed")
        else:  # noop
            self.succeed_step(sid, self._passthrough(sid))

    def _items(self, sid: str, step: d.FilterStep) -> list[Any]:
        items = self._render(step.items) if step.items is not None else None
        if items is None:
            items = parse_json_output(self._passthrough(sid))
        if isinstance(items, str):
            items = parse_json_output(items)
        if not isinstance(items, list):
            raise control.StepFailure(f"filter '{sid}' needs a list of items, got {items!r:.80}")
        return items

    def _launch(self, sid: str) -> Launch:
        spec = self.spec
        step = spec.steps[sid]
        if isinstance(step, d.ReviewStep):
            return self._review(sid, step)
        retry = spec.retry_of(sid)
        base = Launch(
            step=sid,
            prompt="",
            timeout_s=spec.timeout_of(sid),
            retry={"max_attempts": retry.max_attempts, "backoff_s": retry.backoff},
            agent=self._text(step.agent),  # type: ignore[union-attr]
            capabilities=list(step.capabilities),  # type: ignore[union-attr]
        )
        if isinstance(step, d.ShellStep):
            base.prompt = self._text(step.command) or ""
            base.agent_type = "cli"
        elif isinstance(step, d.CliStep):
            prompt = self._text(step.prompt) or ""
            workdir = self._text(step.workdir)
            base.prompt = f"Work in the directory {workdir}.\n\n{prompt}" if workdir else prompt
            base.agent_type = "cli"
        elif isinstance(step, d.LlmStep):
            base.prompt = self._text(step.prompt) or ""
            base.model = self._text(step.model)
            base.llm = {
                "system": self._text(step.system),
                "format": step.format,
                "options": self._render(step.options),
            }
        if not base.prompt.strip():
            raise control.StepFailure(f"step '{sid}' rendered an empty prompt")
        return base

    def _review(self, sid: str, step: d.ReviewStep) -> Launch:
        subject = self._text(step.subject) or ""
        if not subject.strip():
            raise control.StepFailure(f"step '{sid}' rendered an empty subject to review")
        review = {
            "topic": self._text(step.topic),
            "kind": "review",
            "subject": subject,
            "participants": [p.model_dump(mode="json") for p in step.participants],
            "address": self._text(step.address),
            "protocol": step.protocol.model_dump(mode="json"),
            "timeout_s": self.spec.timeout_of(sid),
        }
        return Launch(step=sid, prompt=review["topic"] or "", review=review)


_NOT_JSON = object()


def parse_json_output(text: str) -> Any:
    """A step's output as JSON (a fenced ```json block counts), or _NOT_JSON."""
    match = FENCE.match(text or "")
    body = match.group(1) if match else text
    try:
        return json.loads(body)
    except (ValueError, TypeError):
        return _NOT_JSON
