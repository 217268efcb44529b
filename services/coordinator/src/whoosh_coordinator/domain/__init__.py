"""The coordinator's domain: aggregates and rules, free of infrastructure."""

from whoosh_coordinator.domain.agent import Agent
from whoosh_coordinator.domain.rejection import Rejected
from whoosh_coordinator.domain.task import Task

__all__ = ["Agent", "Rejected", "Task"]
