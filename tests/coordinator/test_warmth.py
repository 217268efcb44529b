"""A model's warmth on an agent's server: folded from probes, slots and completions, read
with the scheduler's clock (scheduling/warmth.py). Pure views."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from coordinator.factories import NOW, agent_view
from whoosh_coordinator.scheduling import warmth
from whoosh_coordinator.scheduling.lookahead import SlotForecast
from whoosh_coordinator.scheduling.scheduler import Needs, choose, is_cold
from whoosh_shared.contract.inventory import Inventory, ModelFacts, SpeedStats, keep_alive_seconds
from whoosh_shared.contract.queries import AgentView

M = "llama3.2:1b"


def inventory(loaded: tuple[str, ...] = (), **expires: Any) -> Inventory:
    return Inventory(reachable=True, models={M: ModelFacts()}, loaded=list(loaded), expires=expires)


def llm_agent(name: str, decode_tps: float = 100.0, load_s: float = 0.0) -> AgentView:
    """Probed once: the model listed, not loaded; its speed measured."""
    view = agent_view(name, type="ollama", endpoint=f"http://{name}:11434", model=M)
    view.inventory = inventory()
    view.speeds[M] = SpeedStats(samples=5, decode_tps=decode_tps, prefill_tps=1e3, load_s=load_s)
    return view


def s(seconds: float):
    return NOW + timedelta(seconds=seconds)


def test_keep_alive_is_read_as_ollama_reads_it() -> None:
    assert keep_alive_seconds(None) is None
    assert keep_alive_seconds(30) == 30.0
    assert keep_alive_seconds("5m") == 300.0
    assert keep_alive_seconds("1h30m") == 5400.0
    assert keep_alive_seconds("250ms") == 0.25
    assert keep_alive_seconds("45") == 45.0
    assert keep_alive_seconds(0) == 0.0
    assert keep_alive_seconds(-1) == keep_alive_seconds("-1m") > 10 * 365 * 86400 - 1
    assert keep_alive_seconds("soon") is None


def test_warmth_expires_ollamas_default_keep_alive_after_a_completion() -> None:
    agent = llm_agent("a")  # listed, not loaded
    assert is_cold(Needs(), agent, s(0))
    warmth.used(agent, M, s(0), None)
    assert not is_cold(Needs(), agent, s(299))
    assert is_cold(Needs(), agent, s(301))


def test_a_later_completion_extends_the_warmth() -> None:
    agent = llm_agent("a")
    warmth.used(agent, M, s(0), None)
    warmth.used(agent, M, s(200), None)
    assert not is_cold(Needs(), agent, s(450)) and is_cold(Needs(), agent, s(501))


def test_a_probes_expiry_is_used_and_the_keep_alive_it_implies_is_kept() -> None:
    agent = llm_agent("a")
    warmth.used(agent, M, s(0), None)
    probe = inventory((M,), **{M: s(4)})
    warmth.probed(agent, probe, s(2.5))
    assert agent.warmth[M].keep_alive_s == 4.0  # expires_at - the last use
    assert not is_cold(Needs(), agent, s(3.9)) and is_cold(Needs(), agent, s(4.1))
    warmth.used(agent, M, s(10), None)  # the next completion: the server's keep-alive
    assert not is_cold(Needs(), agent, s(13.9)) and is_cold(Needs(), agent, s(14.1))


def test_a_tasks_own_keep_alive_wins_and_teaches_nothing_about_the_servers() -> None:
    agent = llm_agent("a")
    warmth.used(agent, M, s(0), "1h")
    assert not is_cold(Needs(), agent, s(3599)) and is_cold(Needs(), agent, s(3601))
    probe = inventory((M,), **{M: s(3600)})
    warmth.probed(agent, probe, s(5))
    assert agent.warmth[M].keep_alive_s is None  # the request's, not the server's default
    warmth.used(agent, M, s(10), 0)  # keep_alive 0: unloaded when it ends
    assert is_cold(Needs(), agent, s(10))


def test_a_model_the_probe_does_not_list_is_cold_at_once() -> None:
    agent = llm_agent("a")
    warmth.used(agent, M, s(0), None)
    warmth.probed(agent, inventory(), s(2))
    assert is_cold(Needs(), agent, s(2))


def test_a_model_with_work_in_flight_is_warm_whatever_its_expiry_and_the_probe() -> None:
    """Ollama never unloads a model a request is using, and its expires_at is stale then."""
    agent = llm_agent("a")
    warmth.used(agent, M, s(0), None)
    warmth.slot_taken(agent, M)
    stale = inventory((M,), **{M: s(1)})
    warmth.probed(agent, stale, s(2))
    assert not is_cold(Needs(), agent, s(1000))
    assert agent.warmth[M].keep_alive_s is None  # nothing learned from a stale expiry
    warmth.slot_released(agent, M)
    assert not is_cold(Needs(), agent, s(299))  # still the completion's keep-alive


def test_an_expiry_from_before_the_last_completion_does_not_cut_it_short() -> None:
    """A probe that ran while the last task ran, folded after its completion: the expiry
    it read (Ollama's stale one) predates the completion, which says more."""
    agent = llm_agent("a")
    warmth.used(agent, M, s(10), None)
    stale = inventory((M,), **{M: s(9)})
    warmth.probed(agent, stale, s(10.1))
    assert not is_cold(Needs(), agent, s(100)) and agent.warmth[M].keep_alive_s is None


def test_an_inventory_without_expiries_counts_its_loaded_models_for_the_keep_alive() -> None:
    """Inventories recorded before expiries were reported: loaded from the event on."""
    agent = llm_agent("a")
    warmth.probed(agent, inventory((M,)), s(0))
    assert not is_cold(Needs(), agent, s(299)) and is_cold(Needs(), agent, s(301))


def test_an_unreachable_server_holds_nothing() -> None:
    agent = llm_agent("a")
    warmth.used(agent, M, s(0), None)
    warmth.probed(agent, Inventory(reachable=False, reason="down"), s(1))
    assert is_cold(Needs(), agent, s(1))


def test_the_scheduler_charges_a_cold_load_once_the_keep_alive_has_passed() -> None:
    """The fast server's model was used 10 s ago with a 4 s keep-alive: gone, so the slower
    server that holds it wins; within the keep-alive the fast one does. `choose` takes the
    clock from the slot forecast when not given one (the submit path passes only that)."""
    fast = llm_agent("fast", decode_tps=100.0, load_s=30.0)
    slow = llm_agent("slow", decode_tps=50.0, load_s=30.0)
    for agent, used_at in ((fast, s(0)), (slow, s(8))):
        warmth.used(agent, M, used_at, "4s")
    load = {fast.id: 0, slow.id: 0}
    assert choose(Needs(), [fast, slow], load, now=s(2)) is fast
    assert choose(Needs(), [fast, slow], load, now=s(10)) is slow
    forecast = SlotForecast.of([fast, slow], {}, s(10))
    assert choose(Needs(), [fast, slow], load, forecast=forecast) is slow


def test_a_probe_from_before_work_with_the_model_ended_is_not_read_for_it() -> None:
    """The probe round began with the agent at version 5; the task's slot was released at
    version 7, after that: the probe may have run before the task ended (here during its
    cold load, when Ollama did not list the model yet). A later round has the last word."""
    agent = llm_agent("a")
    agent.version = 6
    warmth.slot_taken(agent, M)
    agent.version = 7
    warmth.slot_released(agent, M)
    warmth.used(agent, M, s(10), None)
    warmth.probed(agent, inventory(), s(10.5), seen_version=5)
    assert not is_cold(Needs(), agent, s(11))
    warmth.probed(agent, inventory(), s(25), seen_version=7)
    assert is_cold(Needs(), agent, s(25))


def test_another_clients_later_use_does_not_lengthen_the_keep_alive() -> None:
    """Expiry minus the coordinator's last completion is the keep-alive plus whatever
    another client's later request added: the smallest seen is kept."""
    agent = llm_agent("a")
    warmth.used(agent, M, s(0), None)
    warmth.probed(agent, inventory((M,), **{M: s(4)}), s(3))
    warmth.probed(agent, inventory((M,), **{M: s(60)}), s(58))  # someone else used it
    assert agent.warmth[M].keep_alive_s == 4.0
    assert not is_cold(Needs(), agent, s(59))  # that expiry still holds
    warmth.used(agent, M, s(100), None)
    assert is_cold(Needs(), agent, s(104.1))


def test_the_keep_alive_learned_for_one_model_counts_for_the_others_on_that_server() -> None:
    agent = llm_agent("a")
    agent.inventory = Inventory(reachable=True, models={M: ModelFacts(), "big:8b": ModelFacts()})
    warmth.used(agent, M, s(0), None)
    warmth.probed(agent, inventory((M,), **{M: s(4)}), s(3))
    warmth.used(agent, "big:8b", s(10), None)
    assert agent.warmth["big:8b"].until == s(14)
