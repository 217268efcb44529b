"""`whoosh agent list`: what the table says about an LLM agent's server and speed."""

from __future__ import annotations

from uuid import uuid4

from whoosh_cli.agent_commands import _agent_row
from whoosh_shared.contract.agents import AgentSpec, SshSettings
from whoosh_shared.contract.inventory import Inventory, ModelFacts, SpeedStats
from whoosh_shared.contract.queries import AgentView


def view(**state: object) -> AgentView:
    spec = AgentSpec(name="gpu1", type="ollama", endpoint="http://gpu1:11434", model="llama3.2")
    return AgentView(id=uuid4(), spec=spec, enabled=True).model_copy(update=state)


def test_an_unprobed_agent_says_so_and_a_cli_agent_has_no_server() -> None:
    assert _agent_row(view())[-2:] == ("not probed yet", "-")
    cli = AgentView(id=uuid4(), spec=AgentSpec(name="sh", command=["sh"]), enabled=True)
    assert _agent_row(cli)[-2:] == ("-", "-")


def test_a_probed_agent_shows_models_loaded_missing_and_measured_speed() -> None:
    inventory = Inventory(
        reachable=True,
        models={"llama3.2:latest": ModelFacts(), "qwen3:8b": ModelFacts()},
        loaded=["qwen3:8b"],
    )
    row = _agent_row(
        view(
            inventory=inventory,
            missing_models=["mistral"],
            speeds={"llama3.2:latest": SpeedStats(samples=3, decode_tps=87.6)},
        )
    )
    assert row[-2:] == ("up (2 models, 1 loaded), lacks mistral", "88")


def test_an_unreachable_server_shows_why() -> None:
    down = Inventory(reachable=False, reason="cannot connect to backend (ConnectError)")
    assert _agent_row(view(inventory=down))[-2] == "down: cannot connect to backend (ConnectError)"


def test_a_remote_agent_shows_its_host_check_and_an_unchecked_host_key() -> None:
    spec = AgentSpec(
        name="r",
        command=["claude"],
        host="dev@box",
        ssh=SshSettings(insecure_skip_host_key_check=True),
    )
    up = Inventory(reachable=True, version="2.0.1 (Claude Code)")
    row = _agent_row(AgentView(id=uuid4(), spec=spec, enabled=True, inventory=up))
    assert row[-2] == "up (2.0.1 (Claude Code)) [host key NOT checked]"
