"""The size policy in the coordinator, on a real store: prompts over the limit or too
large to ride inline are rejected with nothing stored; prompts by reference are accepted
and estimated by their real length; lists page by bytes; stats name loops that are down."""

from __future__ import annotations

import hashlib

from coordinator.core import Core
from whoosh_coordinator.queries import QueryHandler
from whoosh_shared.contract import commands as c
from whoosh_shared.contract import queries as q
from whoosh_shared.contract.blobs import BlobRef
from whoosh_shared.contract.limits import LimitSettings
from whoosh_shared.runtime.supervision import LoopHealth

LIMITS = LimitSettings(max_prompt_bytes=100_000, inline_bytes=2048, reply_bytes=20_000)


def ref_of(text: str) -> BlobRef:
    data = text.encode()
    return BlobRef(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data), chars=len(text))


def test_prompts_over_the_limit_or_too_large_inline_are_rejected_and_nothing_is_stored(
    core: Core,
) -> None:
    core.handler.limits = LIMITS
    core.register("worker")
    before = core.events()
    over = "é" * 50_001  # 100,002 bytes
    by_ref = core.send(c.SubmitTask(prompt="é…", prompt_ref=ref_of(over)))
    assert by_ref.code == c.RejectCode.TOO_LARGE
    assert "100002 bytes" in by_ref.reason and "100000" in by_ref.reason
    assert "limits.max_prompt_bytes" in by_ref.reason
    inline = core.send(c.SubmitTask(prompt="x" * 2049))
    assert inline.code == c.RejectCode.TOO_LARGE and "prompt_ref" in inline.reason
    assert core.events() == before, "nothing written"


def test_a_prompt_by_reference_is_kept_as_a_preview_and_its_reference(core: Core) -> None:
    core.handler.limits = LIMITS
    core.register("worker")
    prompt = "é" * 40_000
    reply = core.send(c.SubmitTask(prompt=prompt, prompt_ref=ref_of(prompt)))
    assert reply.accepted, reply.reason
    view = core.task(reply.ids["task_id"])
    assert view.prompt_ref == ref_of(prompt)
    assert len(view.prompt) < 300 and view.prompt.startswith("éé")


def test_lists_page_by_bytes_as_well_as_by_count(core: Core) -> None:
    core.handler.limits = LIMITS
    core.register("worker")
    for i in range(30):
        assert core.send(c.SubmitTask(prompt=f"{i} " + "y" * 2000)).accepted
    queries = QueryHandler(core.projection, core.store, limits=LIMITS)
    seen, cursor = [], None
    while True:
        reply = queries.handle_raw(
            q.ListTasks.SUBJECT, q.ListTasks(limit=1000, after=cursor).model_dump_json().encode()
        )
        assert len(reply.model_dump_json()) < LIMITS.reply_bytes + 2048
        page = q.TaskPage.model_validate(reply.result)
        assert all(len(t.prompt) <= 201 for t in page.tasks), "summaries: a prompt preview"
        seen += page.tasks
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert len(seen) == 30 and len({t.id for t in seen}) == 30


def test_stats_name_the_loops_that_are_down(core: Core) -> None:
    health = LoopHealth()
    health.down("relay", "publish failing: no ack within 10s")
    queries = QueryHandler(core.projection, core.store, health=health)
    stats = q.FleetStats.model_validate(queries.handle_raw(q.GetStats.SUBJECT, b"{}").result)
    assert stats.down == {"relay": "publish failing: no ack within 10s"}
    health.up("relay")
    stats = q.FleetStats.model_validate(queries.handle_raw(q.GetStats.SUBJECT, b"{}").result)
    assert stats.down == {}


def test_options_and_env_maps_and_json_depth_are_bounded() -> None:
    import pytest
    from pydantic import ValidationError
    from whoosh_shared.contract.agents import AgentSpec

    deep: object = 1
    for _ in range(40):
        deep = [deep]
    with pytest.raises(ValidationError, match="deeper than 32"):
        c.LlmOptions(format={"schema": deep})
    with pytest.raises(ValidationError, match="257 entries"):
        c.LlmOptions(options={f"k{i}": i for i in range(257)})
    with pytest.raises(ValidationError, match="257 entries"):
        AgentSpec(name="a", command=["cat"], env={f"K{i}": "v" for i in range(257)})
