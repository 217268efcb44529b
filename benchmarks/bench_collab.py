#!/usr/bin/env python
"""Does voting help? A single agent vs an N-agent vote vs a discussion thread, through
WHOOSH's real thread machinery (coordinator, LLM executor, strict answer lines, tallies).

    .venv/bin/python benchmarks/bench_collab.py [--items 100] [--seed 0] [--accuracy 0.7]
        [--correlation 0.0] [--unparseable 0.0] [--conformity 0.5] [--concurrency 8]
    .venv/bin/python benchmarks/bench_collab.py --endpoint http://gpu:11434 \\
        --models qwen2.5:7b,llama3.1:8b,gemma2:9b [--openai]

Questions are generated arithmetic (Du et al.: a+b*c+d-e*f, six ints in [0,30), seeded),
so every answer has an exact truth. Without --endpoint, five Ollama doubles
(tests/executor_ollama/ollama_double.py) answer with a seeded policy per agent: correct
with probability --accuracy; with probability --correlation an item's correctness is one
shared draw for all agents and their wrong answers one shared "attractor" (fully
correlated errors at 1.0); with probability --unparseable a reply has no ANSWER line; in a
discussion round an agent switches to the plurality it was shown with --conformity.

Arms: single (1 agent), vote3 and vote5 (independent, majority), discuss3 (3 agents, 2
rounds, majority). Per arm: accuracy (no decision counts as wrong), decision rate,
escalation rate, unparseable rate, calls, tokens, wall time; McNemar's exact test against
the single agent on the same items; for c=0 and u=0 the binomial expectation of a
majority vote (3 votes at 0.7: 0.784; 5 votes: 0.837) with a 99 % interval.

Not part of the test suite. Every process it starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import math
import random
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(HERE))

from bench_support import (  # noqa: E402
    BenchError,
    Proc,
    drop_run_data,
    install_signal_handlers,
    log,
    print_markdown,
    start_nats,
    wait_for_coordinator,
    watched,
    whoosh_env,
)
from whoosh_shared.contract import threads as t  # noqa: E402
from whoosh_shared.contract.agents import AgentSpec  # noqa: E402
from whoosh_shared.contract.commands import RegisterAgent  # noqa: E402
from whoosh_shared.contract.enums import AgentType  # noqa: E402
from whoosh_shared.contract.queries import GetTask, TaskView  # noqa: E402
from whoosh_shared.runtime.bus import Bus  # noqa: E402

QUESTION = re.compile(r"What is the result of (\d+)\+(\d+)\*(\d+)\+(\d+)-(\d+)\*(\d+)\?")
ROUND_LINE = re.compile(r"Round \d+ ended \w+ \(([^)]*)\)")
ARMS = {"single": (1, 1), "vote3": (3, 1), "vote5": (5, 1), "discuss3": (3, 2)}
MODEL = "llama3.2:1b"


# -- questions and the seeded answering policy (pure) ---------------------------------


def questions(n: int, seed: int) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    items = []
    for _ in range(n):
        a, b, c, d, e, f = (rng.randrange(30) for _ in range(6))
        items.append((f"What is the result of {a}+{b}*{c}+{d}-{e}*{f}?", a + b * c + d - e * f))
    return items


def _rng(*parts: object) -> random.Random:
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


@dataclass(frozen=True)
class Policy:
    seed: int
    accuracy: float
    correlation: float
    unparseable: float
    conformity: float

    def reply(self, agent: int, prompt: str) -> str:
        match = QUESTION.search(prompt)
        if match is None:
            return "I cannot find a question.\nANSWER: 0"
        a, b, c, d, e, f = map(int, match.groups())
        truth = a + b * c + d - e * f
        rounds = ROUND_LINE.findall(prompt)
        reask = "could not be read" in prompt
        key = (self.seed, match.group(0), len(rounds), reask)
        if _rng(*key, agent, "unparseable").random() < self.unparseable:
            return f"The result should be around {truth}, I think."
        if rounds and _rng(*key, agent, "conform").random() < self.conformity:
            shown = [part.rsplit(": ", 1) for part in rounds[-1].split(", ") if ": " in part]
            if shown:
                leader = max(shown, key=lambda vw: (float(vw[1]), vw[0]))[0]
                return f"Going with the group.\nANSWER: {leader}"
        return f"Computing step by step.\nANSWER: {self._value(agent, key, truth)}"

    def _value(self, agent: int, key: tuple[object, ...], truth: int) -> int:
        shared = _rng(*key, "shared").random() < self.correlation
        draw = _rng(*key, "correct").random() if shared else _rng(*key, agent).random()
        if draw < self.accuracy:
            return truth
        if shared:
            return truth + 1 + _rng(*key, "attractor").randrange(3)
        off = _rng(*key, agent, "off").choice([i for i in range(-10, 11) if i])
        return truth + off


# -- statistics (pure) ----------------------------------------------------------------


def majority_accuracy(n: int, p: float) -> float:
    return sum(math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n // 2 + 1, n + 1))


def interval_99(p: float, n: int) -> tuple[float, float]:
    half = 2.576 * math.sqrt(p * (1 - p) / n)
    return max(0.0, p - half), min(1.0, p + half)


def mcnemar(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value on the discordant pairs (b, c)."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


# -- running the arms -----------------------------------------------------------------


@dataclass
class ArmResult:
    name: str
    correct: list[bool] = field(default_factory=list)
    decided: int = 0
    escalated: int = 0
    unparseable: int = 0
    calls: int = 0
    tokens: int = 0
    seconds: float = 0.0


async def run_arm(
    bus: Bus, name: str, agents: list[str], items: list[tuple[str, int]], concurrency: int
) -> ArmResult:
    size, rounds = ARMS[name]
    result = ArmResult(name)
    gate = asyncio.Semaphore(concurrency)
    outcomes: list[tuple[bool, t.ThreadView]] = [None] * len(items)  # type: ignore[list-item]

    async def one(index: int, question: str, truth: int) -> None:
        async with gate:
            view = await ask(bus, question, agents[:size], rounds)
            outcomes[index] = (view.decision == str(truth), view)

    began = time.monotonic()
    await asyncio.gather(*(one(i, q, a) for i, (q, a) in enumerate(items)))
    result.seconds = time.monotonic() - began
    for correct, view in outcomes:
        result.correct.append(correct)
        result.decided += view.decision is not None
        result.escalated += bool(view.escalations)
        result.calls += sum(1 for m in view.messages if m.author_kind == "agent")
        result.unparseable += sum(1 for v in view.votes if v.reason.startswith("unparseable"))
        result.tokens += await tokens_of(bus, view)
    return result


async def ask(bus: Bus, question: str, agents: list[str], rounds: int) -> t.ThreadView:
    command = t.StartThread(
        topic=question,
        participants=[t.Participant(agent=a) for a in agents],
        answer_type=t.AnswerType.INT,
        protocol=t.Protocol(rule=t.Rule.MAJORITY, max_rounds=rounds),
        timeout_s=300,
    )
    reply = await bus.send(command, timeout=30)
    if not reply.accepted:
        raise BenchError(f"thread refused: {reply.reason}")
    thread_id = UUID(reply.ids["thread_id"])
    while True:
        answer = await bus.ask(t.GetThread(thread_id=thread_id), timeout=30)
        if answer.status == "ok" and answer.result is not None:
            view = t.ThreadView.model_validate(answer.result)
            if view.state is t.ThreadState.CLOSED:
                return view
        await asyncio.sleep(0.05)


async def tokens_of(bus: Bus, view: t.ThreadView) -> int:
    total = 0
    for round_ in view.rounds:
        for task_id in round_.tasks.values():
            reply = await bus.ask(GetTask(task_id=task_id), timeout=30)
            if reply.status == "ok" and reply.result is not None:
                usage = TaskView.model_validate(reply.result).usage
                total += usage.tokens_in + usage.tokens_out
    return total


async def register(bus: Bus, specs: list[AgentSpec]) -> None:
    for spec in specs:
        reply = await bus.send(RegisterAgent(spec=spec), timeout=30)
        if not reply.accepted:
            raise BenchError(f"agent {spec.name} refused: {reply.reason}")


def agent_specs(args: argparse.Namespace, urls: list[str]) -> list[AgentSpec]:
    kind = AgentType.OPENAI if args.openai else AgentType.OLLAMA
    if args.endpoint:
        models = [m for m in args.models.split(",") if m]
        pairs = [(args.endpoint, models[i % len(models)]) for i in range(5)]
    else:
        pairs = [(url, MODEL) for url in urls]
    return [
        AgentSpec(name=f"voter-{i}", type=kind, endpoint=url, model=model, max_concurrent=8)
        for i, (url, model) in enumerate(pairs)
    ]


async def measure(args: argparse.Namespace, nats_url: str, urls: list[str]) -> list[ArmResult]:
    bus = Bus(nats_url, "bench-collab")
    await bus.connect()
    try:
        await wait_for_coordinator(bus)
        specs = agent_specs(args, urls)
        await register(bus, specs)
        await asyncio.sleep(1.0)  # the executor's first probe round sees the agents
        items = questions(args.items, args.seed)
        names = [s.name for s in specs]
        results = []
        for arm in args.arms.split(","):
            log(f"arm {arm}: {len(items)} items")
            results.append(await run_arm(bus, arm, names, items, args.concurrency))
        return results
    finally:
        await bus.close()


def start_doubles(policy: Policy) -> list[Any]:
    from executor_ollama.ollama_double import DoubleConfig, OllamaDouble

    doubles = []
    for index in range(5):

        def answer(body: dict[str, Any], index: int = index) -> str:
            messages = body.get("messages") or [{"content": body.get("prompt", "")}]
            return policy.reply(index, str(messages[-1].get("content", "")))

        double = OllamaDouble(DoubleConfig(answer=answer, tokens_per_s=5000.0, parallel=64))
        double.start()
        doubles.append(double)
    return doubles


def report(args: argparse.Namespace, results: list[ArmResult]) -> None:
    base = next((r for r in results if r.name == "single"), None)
    rows = [("arm", "accuracy", "decided", "escalated", "unparseable", "calls", "tokens",
             "time s", "vs single: b/c, McNemar p")]  # fmt: skip
    for r in results:
        n = len(r.correct)
        versus = "-"
        if base is not None and r is not base:
            b = sum(s and not o for s, o in zip(base.correct, r.correct, strict=True))
            c = sum(o and not s for s, o in zip(base.correct, r.correct, strict=True))
            versus = f"{b}/{c}, p={mcnemar(b, c):.3g}"
        rows.append((
            r.name, f"{sum(r.correct) / n:.3f}", f"{r.decided / n:.3f}", f"{r.escalated / n:.3f}",
            f"{r.unparseable / max(r.calls, 1):.3f}", str(r.calls), str(r.tokens),
            f"{r.seconds:.1f}", versus,
        ))  # fmt: skip
    print_markdown(rows)
    if args.endpoint or args.correlation or args.unparseable:
        return
    for r in results:
        size, rounds = ARMS[r.name]
        if rounds != 1:
            continue
        expected = majority_accuracy(size, args.accuracy)
        low, high = interval_99(expected, len(r.correct))
        measured = sum(r.correct) / len(r.correct)
        verdict = "inside" if low <= measured <= high else "OUTSIDE"
        print(f"{r.name}: measured {measured:.3f}, binomial expectation {expected:.3f}, "
              f"99 % interval [{low:.3f}, {high:.3f}]: {verdict}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--accuracy", type=float, default=0.7)
    parser.add_argument("--correlation", type=float, default=0.0)
    parser.add_argument("--unparseable", type=float, default=0.0)
    parser.add_argument("--conformity", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--endpoint", help="a real Ollama / OpenAI-compatible server")
    parser.add_argument("--models", default="", help="with --endpoint: models, comma-separated")
    parser.add_argument("--openai", action="store_true", help="the endpoint is OpenAI-compatible")
    args = parser.parse_args(argv)
    unknown = set(args.arms.split(",")) - set(ARMS)
    if unknown or (args.endpoint and not args.models):
        parser.error(f"unknown arms {sorted(unknown)}" if unknown else "--endpoint needs --models")
    install_signal_handlers()
    policy = Policy(args.seed, args.accuracy, args.correlation, args.unparseable, args.conformity)
    doubles = [] if args.endpoint else start_doubles(policy)
    with tempfile.TemporaryDirectory(prefix="bench-collab-") as tmp:
        workdir = Path(tmp)
        try:
            nats, nats_url = start_nats(workdir)
            env = whoosh_env(workdir / "whoosh.yaml", workdir / "data", 64)
            store = f"sqlite:///{workdir / 'events.sqlite'}"
            serve = ["-m", "whoosh_coordinator", "serve", "--nats", nats_url, "--store", store]
            coordinator = Proc("coordinator", [sys.executable, *serve], workdir, env).start()
            execute = ["-m", "whoosh_executor_ollama", "--nats", nats_url, "--executor-id", "b"]
            executor = Proc("executor-ollama", [sys.executable, *execute], workdir, env).start()
            urls = [d.url for d in doubles]
            results = asyncio.run(
                watched(measure(args, nats_url, urls), [nats, coordinator, executor])
            )
        finally:
            Proc.stop_all()
            for double in doubles:
                double.stop()
            drop_run_data(workdir)
    report(args, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
