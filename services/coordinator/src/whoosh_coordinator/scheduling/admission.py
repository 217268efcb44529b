"""Admission of submitted work: refuse at once what no registered agent could ever run.

A refusal here names what stands in the way (an unknown capability, a pinned agent that
does not exist, a model nobody has, a prompt longer than every candidate's context), so
that nothing waits in the queue for an agent that will never come. Pure: views in.
"""

from __future__ import annotations

from dataclasses import replace

from whoosh_shared.contract import commands as c
from whoosh_shared.contract.commands import RejectCode
from whoosh_shared.contract.queries import AgentView

from whoosh_coordinator.projections import FleetProjection
from whoosh_coordinator.rejection import Rejected
from whoosh_coordinator.scheduling.estimates import CHARS_PER_TOKEN, task_prompt_tokens
from whoosh_coordinator.scheduling.scheduler import (
    Needs,
    eligible,
    expected_output_tokens,
    facts_of,
    model_of,
    offered_capabilities,
)


def admit(cmd: c.SubmitTask, projection: FleetProjection) -> Needs:
    """What the task needs of an agent, or Rejected: work no registered agent could ever
    take (disabled or unreachable agents count: they come back) is refused at once."""
    agents = list(projection.agents.values())
    if cmd.agent and projection.agent_by_name(cmd.agent) is None:
        raise Rejected(RejectCode.NOT_FOUND, f"unknown agent '{cmd.agent}'")
    offered = {cap for a in agents for cap in offered_capabilities(a)}
    unknown = [cap for cap in cmd.capabilities if cap not in offered]
    if unknown:
        raise Rejected(
            RejectCode.NO_CAPABLE_AGENT,
            f"unknown capability {', '.join(repr(u) for u in unknown)}: no registered "
            "agent offers it",
        )
    llm = cmd.llm or c.LlmOptions()
    needs = Needs(
        agent=cmd.agent,
        agent_type=cmd.agent_type.value if cmd.agent_type else None,
        model=cmd.model,
        capabilities=tuple(cmd.capabilities),
        prompt_tokens=task_prompt_tokens(cmd.prompt, cmd.prompt_ref, llm.system),
        output_tokens=expected_output_tokens(llm.options),
    )
    _check_num_ctx(needs, llm)
    if not any(eligible(needs, a, ignore_state=True) for a in agents):
        raise Rejected(RejectCode.NO_CAPABLE_AGENT, _why_no_agent(cmd, needs, agents))
    return needs


def _check_num_ctx(needs: Needs, llm: c.LlmOptions) -> None:
    """A prompt longer than the context the task itself asks for would be cut by the
    server without a word (Ollama keeps the tail): refuse it before anything runs."""
    num_ctx = llm.options.get("num_ctx")
    if isinstance(num_ctx, int) and 0 < num_ctx < needs.prompt_tokens:
        raise Rejected(
            RejectCode.INVALID,
            f"prompt is about {needs.prompt_tokens} tokens (estimated at {CHARS_PER_TOKEN} "
            f"characters per token) but options.num_ctx is {num_ctx}",
        )


def _why_no_agent(cmd: c.SubmitTask, needs: Needs, agents: list[AgentView]) -> str:
    """The most useful reason: the context length, when that is all that stands in the way."""
    roomy = replace(needs, prompt_tokens=0)
    fitting = [a for a in agents if eligible(roomy, a, ignore_state=True)]
    if fitting:
        facts = [facts_of(a, model_of(needs, a)) for a in fitting]
        largest = max((f.context_length for f in facts if f and f.context_length), default=0)
        return (
            f"prompt is about {needs.prompt_tokens} tokens (estimated at {CHARS_PER_TOKEN} "
            f"characters per token), more than the context length of every agent's model "
            f"that could run it (largest: {largest} tokens)"
        )
    wanted = ", ".join(
        f"{k}={v}"
        for k, v in (
            ("agent", cmd.agent),
            ("type", cmd.agent_type and cmd.agent_type.value),
            ("model", cmd.model),
            ("capabilities", ",".join(cmd.capabilities) or None),
        )
        if v
    )
    return f"no registered agent matches {wanted or 'the task'}"
