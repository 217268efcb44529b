"""Ollama doubles on free loopback ports, stopped when the test ends: fixtures shared by
the executor_ollama and system layers (each conftest imports them)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from executor_ollama.ollama_double import DoubleConfig, OllamaDouble


@pytest.fixture
def make_double() -> Iterator[Callable[..., OllamaDouble]]:
    """Start as many doubles as a test needs, each with its own config."""
    started: list[OllamaDouble] = []

    def make(**config: object) -> OllamaDouble:
        double = OllamaDouble(DoubleConfig(**config))  # type: ignore[arg-type]
        double.start()
        started.append(double)
        return double

    yield make
    for double in started:
        double.stop()


@pytest.fixture
def double(make_double: Callable[..., OllamaDouble]) -> OllamaDouble:
    return make_double()
