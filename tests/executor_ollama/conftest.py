"""Fixtures: Ollama doubles on free loopback ports (see double_fixtures.py)."""

from __future__ import annotations

from executor_ollama.double_fixtures import double, make_double

__all__ = ["double", "make_double"]  # fixtures, found here by pytest
