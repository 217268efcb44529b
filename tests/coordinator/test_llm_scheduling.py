"""Scheduling LLM work by what the servers have and how fast they ran: pure views."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from coordinator.factories import NOW, agent_view, task_view
from whoosh_coordinator.scheduling.estimates import expected_seconds, observe, prompt_tokens
from whoosh_coordinator.scheduling.scheduler import Needs, choose, eligible, plan
from whoosh_shared.contract.commands import LlmOptions, Usage
from whoosh_shared.contract.inventory import (
    DEFAULT_KEEP_ALIVE_S,
    Inventory,
    ModelFacts,
    SpeedStats,
    Warmth,
    model_key,
)
from whoosh_shared.contract.queries import AgentView


def llm_agent(name: str, load: int = 0, **fields: Any) -> AgentView:
    """An Ollama agent view; `inventory`, `speeds` and `missing_models` set the probed state
    (the inventory's loaded models warm for Ollama's default keep-alive from NOW)."""
    state = {k: fields.pop(k) for k in ("inventory", "speeds", "missing_models") if k in fields}
    fields.setdefault("model", "llama3.2:1b")
    fields.setdefault("max_concurrent", 4)
    view = agent_view(name, load, type="ollama", endpoint=f"http://{name}:11434", **fields)
    view = view.model_copy(update=state)
    if view.inventory is not None:
        until = NOW + timedelta(seconds=DEFAULT_KEEP_ALIVE_S)
        view.warmth = {model_key(m): Warmth(until=until) for m in view.inventory.loaded}
    return view


def inventory(*models: str, loaded: tuple[str, ...] = (), **facts: Any) -> Inventory:
    return Inventory(
        reachable=True,
        models={m: ModelFacts(**facts) for m in models},
        loaded=list(loaded),
    )


def picked(task, agents, seed: int = 0) -> list[str]:
    return [p.agent_name for p in plan([task], agents, NOW, random.Random(seed))]


def test_a_model_goes_only_where_the_probe_found_it() -> None:
    has = llm_agent("has", inventory=inventory("qwen3:8b", "llama3.2:1b"))
    lacks = llm_agent("lacks", inventory=inventory("llama3.2:1b"))
    for seed in range(10):
        assert picked(task_view(1, model="qwen3:8b"), [has, lacks], seed) == ["has"]


def test_without_a_probe_the_configured_model_counts_and_a_tagless_name_means_latest() -> None:
    never_probed = llm_agent("np", model="mistral")
    assert eligible(Needs(model="mistral:latest"), never_probed)
    assert not eligible(Needs(model="qwen3:8b"), never_probed)


def test_a_404_takes_the_model_away_until_the_next_probe() -> None:
    agent = llm_agent("a", inventory=inventory("llama3.2:1b"), missing_models=["llama3.2:1b"])
    assert not eligible(Needs(), agent)  # its own model is gone
    assert eligible(Needs(), agent.model_copy(update={"missing_models": []}))


def test_capabilities_reported_for_the_model_count_like_configured_ones() -> None:
    tools = llm_agent("tools", inventory=inventory("llama3.2:1b", capabilities=["tools"]))
    plain = llm_agent("plain", inventory=inventory("llama3.2:1b", capabilities=["completion"]))
    assert picked(task_view(1, capabilities=["tools"]), [plain, tools]) == ["tools"]
    assert plan([task_view(1, capabilities=["vision"])], [plain, tools], NOW) == []


def test_an_unreachable_server_gets_no_work_and_a_reachable_one_does() -> None:
    down = llm_agent("down").model_copy(
        update={"inventory": Inventory(reachable=False, reason="connection refused")}
    )
    assert plan([task_view(1)], [down], NOW) == []
    assert eligible(Needs(), down, ignore_state=True)  # it may come back
    up = llm_agent("up")
    assert picked(task_view(1), [down, up]) == ["up"]


def test_a_prompt_longer_than_the_models_context_is_not_placed_there() -> None:
    small = llm_agent("small", inventory=inventory("llama3.2:1b", context_length=100))
    big = llm_agent("big", inventory=inventory("llama3.2:1b", context_length=100_000))
    long_prompt = task_view(1, prompt="x" * 4000)  # about 1000 tokens
    for seed in range(10):
        assert picked(long_prompt, [small, big], seed) == ["big"]
    assert plan([long_prompt], [small], NOW) == []


def test_a_warm_model_is_preferred_when_nothing_is_measured() -> None:
    cold = llm_agent("cold", inventory=inventory("llama3.2:1b"))
    warm = llm_agent("warm", inventory=inventory("llama3.2:1b", loaded=("llama3.2:1b",)))
    for seed in range(10):
        assert picked(task_view(1), [cold, warm], seed) == ["warm"]


def speeds(decode: float, prefill: float = 1000.0, load_s: float = 0.0) -> dict[str, SpeedStats]:
    return {
        "llama3.2:1b": SpeedStats(samples=5, decode_tps=decode, prefill_tps=prefill, load_s=load_s)
    }


def test_the_faster_measured_agent_wins_while_it_has_room() -> None:
    slow = llm_agent("slow", speeds=speeds(20.0))
    fast = llm_agent("fast", speeds=speeds(80.0))
    for seed in range(10):
        assert picked(task_view(1), [slow, fast], seed) == ["fast"]
    # Busy enough, the fast server's shared compute makes the idle slow one the better bet.
    busy_fast = llm_agent("fast", load=3, speeds=speeds(30.0))
    assert picked(task_view(1), [slow, busy_fast]) == ["slow"]


def test_a_cold_load_counts_against_an_agent_whose_model_is_not_loaded() -> None:
    cold = llm_agent("cold", inventory=inventory("llama3.2:1b"), speeds=speeds(100.0, load_s=30.0))
    warm = llm_agent(
        "warm",
        inventory=inventory("llama3.2:1b", loaded=("llama3.2:1b",)),
        speeds=speeds(50.0, load_s=30.0),
    )
    assert picked(task_view(1), [cold, warm]) == ["warm"]


def test_an_unmeasured_agent_is_tried_before_measured_ones() -> None:
    measured = llm_agent("measured", speeds=speeds(500.0))
    new = llm_agent("new")
    assert picked(task_view(1), [measured, new]) == ["new"]


def test_equal_agents_share_work_at_random() -> None:
    agents = [llm_agent(f"a{i}") for i in range(3)]
    counts = Counter(picked(task_view(1), agents, seed)[0] for seed in range(300))
    assert set(counts) == {"a0", "a1", "a2"} and min(counts.values()) > 50


def test_never_more_than_max_concurrent_even_for_the_fastest() -> None:
    fast = llm_agent("fast", max_concurrent=2, speeds=speeds(1000.0))
    slow = llm_agent("slow", max_concurrent=2, speeds=speeds(1.0))
    placed = plan([task_view(i) for i in range(6)], [fast, slow], NOW, random.Random(1))
    assert Counter(p.agent_name for p in placed) == {"fast": 2, "slow": 2}


def test_expected_output_tokens_come_from_num_predict() -> None:
    task = task_view(1, prompt="p" * 400, llm=LlmOptions(options={"num_predict": 10}))
    needs = Needs.of(task)
    assert (needs.prompt_tokens, needs.output_tokens) == (100, 10)
    # Fewer expected tokens shrink the estimate: a short answer favours the faster prefill.
    quick_prefill = llm_agent("qp", speeds=speeds(50.0, prefill=5000.0))
    quick_decode = llm_agent("qd", speeds=speeds(60.0, prefill=100.0))
    load = {quick_prefill.id: 0, quick_decode.id: 0}
    assert choose(needs, [quick_prefill, quick_decode], load) is quick_prefill
    long_answer = Needs(prompt_tokens=100, output_tokens=2000)
    assert choose(long_answer, [quick_prefill, quick_decode], load) is quick_decode


@pytest.mark.parametrize(
    ("usages", "decode", "prefill", "load_s"),
    [
        ([Usage(decode_tps=100, prefill_tps=1000, load_s=0.01)], 100, 1000, 0.0),
        (
            [Usage(decode_tps=100, prefill_tps=1000, load_s=4), Usage(decode_tps=200)],
            130,  # 0.7 * 100 + 0.3 * 200
            1000,  # a sample without prefill leaves it alone
            4.0,  # a warm run does not dilute the cold-load time
        ),
    ],
)
def test_moving_averages(usages: list[Usage], decode: float, prefill: float, load_s: float) -> None:
    stats = None
    for usage in usages:
        stats = observe(stats, usage)
    assert stats is not None
    assert (stats.decode_tps, stats.prefill_tps, stats.load_s) == pytest.approx(
        (decode, prefill, load_s)
    )
    assert stats.samples == len(usages)


def test_a_usage_without_timings_measures_nothing() -> None:
    assert observe(None, Usage(duration_s=3.0)) is None


def test_expected_seconds_adds_prefill_decode_cold_load_and_sharing() -> None:
    stats = SpeedStats(samples=1, decode_tps=50, prefill_tps=1000, load_s=2)
    assert expected_seconds(stats, 1000, 100, warm=True, load=0, max_concurrent=4) == 3.0
    assert expected_seconds(stats, 1000, 100, warm=False, load=0, max_concurrent=4) == 5.0
    assert expected_seconds(stats, 1000, 100, warm=True, load=2, max_concurrent=4) == 4.5
    assert expected_seconds(None, 1000, 100, warm=True, load=0, max_concurrent=4) == 0.0
    assert prompt_tokens("abcd" * 10, None, "ab") == 11


def test_a_mixed_fleet_shares_capability_work_by_load_and_type_pins_hold() -> None:
    llm = llm_agent("llm", capabilities=["code"], speeds=speeds(50.0))
    cli = agent_view("cli", capabilities=["code"], max_concurrent=4)
    chosen = Counter(
        picked(task_view(1, capabilities=["code"]), [llm, cli], s)[0] for s in range(200)
    )
    assert set(chosen) == {"llm", "cli"}  # a measured LLM does not lose to an unmeasured CLI
    busy_cli = agent_view("cli", load=3, capabilities=["code"], max_concurrent=4)
    assert picked(task_view(1, capabilities=["code"]), [llm, busy_cli]) == ["llm"]
    for seed in range(10):
        pinned = task_view(1, capabilities=["code"], agent_type="cli")
        assert picked(pinned, [llm, busy_cli], seed) == ["cli"]
