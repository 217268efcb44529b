"""Inventory, missing models, measured speed and kept partial output, through the command
handler on real stores (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from coordinator.core import Core
from whoosh_coordinator.replay import rebuild
from whoosh_coordinator.scheduling.scheduler import Needs, is_cold
from whoosh_shared.contract import commands as c
from whoosh_shared.contract import events as ev
from whoosh_shared.contract.enums import TaskStatus
from whoosh_shared.contract.inventory import Inventory, ModelFacts

ENDPOINT = "http://127.0.0.1:9"


def register_llm(core: Core, name: str, **spec) -> None:
    spec.setdefault("model", "llama3.2:1b")
    spec.setdefault("max_concurrent", 2)
    core.register(name, type="ollama", endpoint=ENDPOINT, **spec)


def report(core: Core, name: str, *models: str, **fields) -> c.CommandReply:
    found = Inventory(reachable=True, models={m: ModelFacts(**fields) for m in models})
    return core.send(c.ReportInventory(name=name, inventory=found))


def test_an_inventory_is_recorded_only_when_it_changed(core: Core) -> None:
    register_llm(core, "gpu1")
    before = core.events()
    assert report(core, "gpu1", "llama3.2:1b", capabilities=["tools"]).accepted
    assert core.events() == before + 1
    assert report(core, "gpu1", "llama3.2:1b", capabilities=["tools"]).accepted
    assert core.events() == before + 1  # the same findings again: nothing new happened
    assert report(core, "gpu1", "llama3.2:1b", "qwen3:8b").accepted
    assert core.events() == before + 2
    view = core.projection.agent_by_name("gpu1")
    assert view.inventory is not None and set(view.inventory.models) == {"llama3.2:1b", "qwen3:8b"}


def test_inventory_of_an_unknown_agent_is_rejected_and_nothing_is_written(core: Core) -> None:
    before = core.events()
    reply = report(core, "ghost", "m:1")
    assert reply.code == "not_found" and "ghost" in (reply.reason or "")
    assert core.events() == before


def test_a_model_found_by_the_probe_is_accepted_and_routed_there(core: Core) -> None:
    register_llm(core, "gpu1")
    register_llm(core, "gpu2")
    rejected = core.send(c.SubmitTask(prompt="hi", model="qwen3:8b"))
    assert rejected.code == "no_capable_agent" and "qwen3:8b" in (rejected.reason or "")
    assert report(core, "gpu2", "llama3.2:1b", "qwen3:8b").accepted
    task_id = core.submit(model="qwen3:8b")
    assert core.task(task_id).agent == "gpu2"


def test_a_capability_reported_by_the_probe_can_be_asked_for(core: Core) -> None:
    register_llm(core, "gpu1")
    assert core.send(c.SubmitTask(prompt="hi", capabilities=["tools"])).code == "no_capable_agent"
    assert report(core, "gpu1", "llama3.2:1b", capabilities=["completion", "tools"]).accepted
    assert core.task(core.submit(capabilities=["tools"])).agent == "gpu1"


def fail_missing(core: Core, task_id: UUID) -> c.CommandReply:
    view = core.task(task_id)
    core.send(c.StartTask(task_id=task_id, attempt=view.attempt, executor_id="t"))
    return core.send(
        c.FailTask(
            task_id=task_id,
            attempt=view.attempt,
            reason="model 'llama3.2:1b' not found on this backend (404)",
            missing_model="llama3.2:1b",
        )
    )


def test_a_404_marks_the_agent_and_moves_the_task_without_using_an_attempt(core: Core) -> None:
    register_llm(core, "gpu1")
    task_id = core.submit(agent_type="ollama", retry=c.RetryPolicy(max_attempts=1))
    first = core.task(task_id).agent
    assert fail_missing(core, task_id).accepted
    assert core.projection.agent_by_name(first).missing_models == ["llama3.2:1b"]
    # The only agent lacks the model now: the task fails, saying so, instead of waiting.
    view = core.task(task_id)
    assert view.status is TaskStatus.FAILED
    assert "no other agent has model 'llama3.2:1b'" in (view.reason or "")


def test_after_a_404_the_task_runs_on_another_agent_even_with_one_attempt(core: Core) -> None:
    register_llm(core, "gpu1")
    register_llm(core, "gpu2")
    task_id = core.submit(agent_type="ollama", retry=c.RetryPolicy(max_attempts=1))
    first = core.task(task_id).agent
    assert fail_missing(core, task_id).accepted
    view = core.task(task_id)
    assert view.status is TaskStatus.ASSIGNED and view.agent != first
    assert core.run_to_end(task_id).accepted
    assert core.task(task_id).status is TaskStatus.COMPLETED
    # The next probe that lists the model puts the agent back in rotation.
    assert report(core, first, "llama3.2:1b").accepted
    assert core.projection.agent_by_name(first).missing_models == []


def test_a_probe_that_began_before_a_404_does_not_undo_it(core: Core) -> None:
    register_llm(core, "gpu1")
    register_llm(core, "gpu2")
    seen = core.projection.agent_by_name("gpu1").version  # a probe round starts here ...
    task_id = core.submit(agent_type="ollama", agent="gpu1")
    assert fail_missing(core, task_id).accepted  # ... the 404 lands while it runs ...
    found = Inventory(reachable=True, models={"llama3.2:1b": ModelFacts()})
    stale = c.ReportInventory(name="gpu1", inventory=found, seen_version=seen)
    assert core.send(stale).accepted  # ... and its listing, older than the 404, arrives
    assert core.projection.agent_by_name("gpu1").missing_models == ["llama3.2:1b"]
    assert rebuild(core.store).agent_by_name("gpu1").missing_models == ["llama3.2:1b"]
    assert core.task(core.submit(agent_type="ollama")).agent == "gpu2"
    # A round that began after the 404 is the truth again.
    fresh = core.projection.agent_by_name("gpu1").version
    found = Inventory(reachable=True, models={m: ModelFacts() for m in ("llama3.2:1b", "q:8b")})
    assert core.send(c.ReportInventory(name="gpu1", inventory=found, seen_version=fresh)).accepted
    assert core.projection.agent_by_name("gpu1").missing_models == []
    assert rebuild(core.store).agent_by_name("gpu1").missing_models == []


def test_a_cancelled_attempts_partial_output_is_kept_once(core: Core) -> None:
    register_llm(core, "gpu1")
    task_id = core.submit()
    attempt = core.task(task_id).attempt
    assert core.send(c.StartTask(task_id=task_id, attempt=attempt, executor_id="t")).accepted
    assert core.send(c.CancelTask(task_id=task_id)).accepted
    usage = c.Usage(duration_s=1.5, tokens_out=7)
    late = c.FailTask(
        task_id=task_id, attempt=attempt, reason="stopped: cancelled", output="Once up", usage=usage
    )
    assert core.send(late).accepted
    view = core.task(task_id)
    assert view.status is TaskStatus.CANCELLED
    assert (view.output, view.usage.tokens_out) == ("Once up", 7)
    events = core.events()
    assert core.send(late.model_copy(update={"output": "other"})).accepted
    assert core.events() == events and core.task(task_id).output == "Once up"
    stale = late.model_copy(update={"attempt": attempt + 1})
    assert core.send(stale).code == "bad_state"


def test_an_executor_timeout_keeps_the_output_it_had(core: Core) -> None:
    register_llm(core, "gpu1")
    task_id = core.submit()
    attempt = core.task(task_id).attempt
    core.send(c.StartTask(task_id=task_id, attempt=attempt, executor_id="t"))
    reply = core.send(
        c.FailTask(
            task_id=task_id, attempt=attempt, reason="timed out", output="half", timed_out=True
        )
    )
    assert reply.accepted
    view = core.task(task_id)
    assert (view.status, view.output) == (TaskStatus.TIMED_OUT, "half")


def test_completed_tasks_measure_speed_per_agent_and_model_and_replay_agrees(core: Core) -> None:
    register_llm(core, "gpu1")
    for decode in (100.0, 200.0):
        task_id = core.submit()
        attempt = core.task(task_id).attempt
        core.send(c.StartTask(task_id=task_id, attempt=attempt, executor_id="t"))
        usage = c.Usage(tokens_out=50, decode_tps=decode, prefill_tps=900.0, load_s=0.01)
        assert core.send(c.CompleteTask(task_id=task_id, attempt=attempt, usage=usage)).accepted
    stats = core.projection.agent_by_name("gpu1").speeds["llama3.2:1b"]
    assert stats.samples == 2 and stats.decode_tps == 130.0 and stats.prefill_tps == 900.0
    replayed = rebuild(core.store)
    assert replayed.agent_by_name("gpu1").speeds == core.projection.agent_by_name("gpu1").speeds


def test_num_ctx_smaller_than_the_prompt_is_refused_before_anything_runs(core: Core) -> None:
    register_llm(core, "gpu1")
    before = core.events()
    llm = c.LlmOptions(options={"num_ctx": 16})
    reply = core.send(c.SubmitTask(prompt="word " * 40, llm=llm))
    assert reply.code == "invalid" and "num_ctx is 16" in (reply.reason or "")
    assert core.events() == before


def test_a_prompt_longer_than_every_known_context_is_refused(core: Core) -> None:
    register_llm(core, "gpu1")
    assert report(core, "gpu1", "llama3.2:1b", context_length=50).accepted
    reply = core.send(c.SubmitTask(prompt="x" * 1000))
    assert reply.code == "no_capable_agent"
    assert "context length" in (reply.reason or "") and "50 tokens" in (reply.reason or "")
    assert core.submit(prompt="x" * 100)  # 25 tokens fit


def run_llm_task(core: Core, **fields) -> UUID:
    task_id = core.submit(**fields)
    attempt = core.task(task_id).attempt
    core.send(c.StartTask(task_id=task_id, attempt=attempt, executor_id="t"))
    usage = c.Usage(tokens_out=50, decode_tps=100.0, prefill_tps=900.0, load_s=1.2)
    assert core.send(c.CompleteTask(task_id=task_id, attempt=attempt, usage=usage)).accepted
    return task_id


def cold(projection, name: str, at: datetime) -> bool:
    return is_cold(Needs(), projection.agent_by_name(name), at)


def test_a_model_that_generated_stays_warm_for_its_keep_alive_and_replay_agrees(
    core: Core,
) -> None:
    """The probe saw the model cold; a task then ran on it, so the server holds it: warm
    while it runs and for Ollama's keep-alive after (5 min unless a probe said otherwise),
    then cold, though no probe recorded the unload (an unchanged inventory is not
    recorded again). A rebuilt projection says the same at the same time."""
    register_llm(core, "gpu1")
    assert report(core, "gpu1", "llama3.2:1b").accepted  # listed, not loaded
    assert cold(core.projection, "gpu1", datetime.now(UTC))
    task_id = core.submit()
    assert not cold(core.projection, "gpu1", datetime.now(UTC) + timedelta(hours=1))  # in use
    attempt = core.task(task_id).attempt
    core.send(c.StartTask(task_id=task_id, attempt=attempt, executor_id="t"))
    usage = c.Usage(tokens_out=50, decode_tps=100.0, prefill_tps=900.0, load_s=1.2)
    assert core.send(c.CompleteTask(task_id=task_id, attempt=attempt, usage=usage)).accepted
    used = core.projection.agent_by_name("gpu1").warmth["llama3.2:1b"].last_used
    assert used is not None
    replayed = rebuild(core.store)
    assert replayed.agents == core.projection.agents
    for projection in (core.projection, replayed):
        assert not cold(projection, "gpu1", used + timedelta(seconds=299))
        assert cold(projection, "gpu1", used + timedelta(seconds=301))
    assert report(core, "gpu1", "llama3.2:1b").accepted  # the same listing: not recorded,
    assert cold(core.projection, "gpu1", used + timedelta(seconds=301))  # still cold then


def test_a_probes_expiry_sets_the_keep_alive_that_completions_then_extend(core: Core) -> None:
    register_llm(core, "gpu1")
    run_llm_task(core)
    used = core.projection.agent_by_name("gpu1").warmth["llama3.2:1b"].last_used
    assert used is not None
    models = {"llama3.2:1b": ModelFacts()}
    seen = Inventory(
        reachable=True,
        models=models,
        loaded=["llama3.2:1b"],
        expires={"llama3.2:1b": used + timedelta(seconds=4)},
    )
    assert core.send(c.ReportInventory(name="gpu1", inventory=seen)).accepted
    assert not cold(core.projection, "gpu1", used + timedelta(seconds=3.9))
    assert cold(core.projection, "gpu1", used + timedelta(seconds=4.1))
    run_llm_task(core)  # completes later: warm for the server's 4 s from then
    again = core.projection.agent_by_name("gpu1").warmth["llama3.2:1b"]
    assert again.keep_alive_s == 4.0 and again.last_used is not None and again.last_used > used
    assert again.until == again.last_used + timedelta(seconds=4)
    run_llm_task(core, llm=c.LlmOptions(keep_alive="10m"))  # its own keep_alive wins
    own = core.projection.agent_by_name("gpu1").warmth["llama3.2:1b"]
    assert own.last_used is not None and own.until == own.last_used + timedelta(minutes=10)
    replayed = rebuild(core.store)
    assert replayed.agents == core.projection.agents
    assert report(core, "gpu1", "llama3.2:1b").accepted  # a probe: not loaded any more
    assert cold(core.projection, "gpu1", own.last_used + timedelta(seconds=1))


def test_the_same_findings_are_recorded_again_once_work_ended_before_the_round(
    core: Core,
) -> None:
    """The coordinator counts a model used there as loaded for its keep-alive; a probe
    that no longer lists it says it is gone, though it found what the last one did. A
    round that began before the work ended is not news (and not read for that model)."""
    register_llm(core, "gpu1")
    assert report(core, "gpu1", "llama3.2:1b").accepted  # listed, not loaded
    began = core.projection.agent_by_name("gpu1").version
    run_llm_task(core)
    before = core.events()
    listing = Inventory(reachable=True, models={"llama3.2:1b": ModelFacts()})
    stale = c.ReportInventory(name="gpu1", inventory=listing, seen_version=began)
    assert core.send(stale).accepted and core.events() == before
    now = core.projection.agent_by_name("gpu1").version
    fresh = c.ReportInventory(name="gpu1", inventory=listing, seen_version=now)
    assert core.send(fresh).accepted and core.events() == before + 1
    assert cold(core.projection, "gpu1", datetime.now(UTC))
    assert core.send(fresh).accepted and core.events() == before + 1  # nothing new since
    assert rebuild(core.store).agents == core.projection.agents


def test_an_inventory_event_stored_before_expiries_were_reported_still_folds(
    core: Core,
) -> None:
    """Events are kept for ever: an AgentInventoryReported without `expires` reads, and
    its loaded models count as loaded for the keep-alive from the event."""
    data = {"inventory": {"reachable": True, "models": {"m:1b": {}}, "loaded": ["m:1b"]}}
    old = ev.AgentInventoryReported.model_validate(data)
    assert old.inventory.expires == {} and old.inventory.is_loaded("m:1b")
