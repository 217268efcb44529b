"""Every NATS subject and JetStream name WHOOSH uses, in one place.

Subjects are built by functions so that a typo is an AttributeError at import
time rather than a message that silently goes nowhere.
"""

from __future__ import annotations

PREFIX = "whoosh"

# Commands: request-reply to the coordinator queue group, answered with CommandReply.
COMMAND_PREFIX = f"{PREFIX}.cmd"
COMMAND_WILDCARD = f"{COMMAND_PREFIX}.>"
COORDINATOR_QUEUE = "coordinator"

# Queries: request-reply answered from the coordinator's projections.
QUERY_PREFIX = f"{PREFIX}.query"
QUERY_WILDCARD = f"{QUERY_PREFIX}.>"

# Domain events, relayed from the store's notification log into a JetStream stream.
EVENTS_STREAM = "WHOOSH_EVENTS"
EVENT_PREFIX = f"{PREFIX}.evt"
EVENTS_WILDCARD = f"{EVENT_PREFIX}.>"

# Work for agents: a JetStream work queue, one subject per agent type and agent.
WORK_STREAM = "WHOOSH_WORK"
WORK_PREFIX = f"{PREFIX}.work"
WORK_WILDCARD = f"{WORK_PREFIX}.>"

# Ephemeral (core NATS) traffic: output lines and store-append nudges.
PROGRESS_PREFIX = f"{PREFIX}.progress"
STORE_APPENDED = f"{PREFIX}.store.appended"

# Executor heartbeats (core NATS, ephemeral): one subject per executor.
HEARTBEAT_PREFIX = f"{PREFIX}.heartbeat"
HEARTBEAT_WILDCARD = f"{HEARTBEAT_PREFIX}.>"

# Loop reports (core NATS, ephemeral): which supervised loops of a process are down, so a
# coordinator's GetStats (hence /readyz and `whoosh status`) names them. One per process.
LOOPS_PREFIX = f"{PREFIX}.loops"
LOOPS_WILDCARD = f"{LOOPS_PREFIX}.>"

# Header carrying the store's notification id on every relayed event.
NOTIFICATION_ID_HEADER = "Whoosh-Notification-Id"


def command(name: str) -> str:
    """Subject of a command, e.g. ``command("task.submit")``."""
    return f"{COMMAND_PREFIX}.{name}"


def query(name: str) -> str:
    """Subject of a query, e.g. ``query("task.get")``."""
    return f"{QUERY_PREFIX}.{name}"


def event(aggregate_type: str, aggregate_id: str, event_type: str) -> str:
    """Subject of one relayed event: filterable by aggregate, instance or type."""
    return f"{EVENT_PREFIX}.{aggregate_type}.{aggregate_id}.{event_type}"


def task_events(task_id: str) -> str:
    """Wildcard for every event of one task."""
    return f"{EVENT_PREFIX}.task.{task_id}.*"


def events_of_type(aggregate_type: str, event_type: str) -> str:
    """Wildcard for one event type across all instances, e.g. every TaskCancelled."""
    return f"{EVENT_PREFIX}.{aggregate_type}.*.{event_type}"


def work(agent_type: str, agent_name: str) -> str:
    """Work-queue subject for one agent."""
    return f"{WORK_PREFIX}.{agent_type}.{agent_name}"


def work_for_type(agent_type: str) -> str:
    """Wildcard for all work of one agent type (an executor's consumer filter)."""
    return f"{WORK_PREFIX}.{agent_type}.>"


def progress(task_id: str) -> str:
    """Ephemeral output lines of one task."""
    return f"{PROGRESS_PREFIX}.{task_id}"


def heartbeat(executor_id: str) -> str:
    """Heartbeats of one executor; the id becomes one subject token (see heartbeat_token)."""
    return f"{HEARTBEAT_PREFIX}.{heartbeat_token(executor_id)}"


def loops(process: str) -> str:
    """Loop reports of one process (an executor's or the monitor's id as one token)."""
    return f"{LOOPS_PREFIX}.{heartbeat_token(process)}"


def heartbeat_token(executor_id: str) -> str:
    """An executor id as a single subject token: dots, wildcards and spaces become `_`."""
    return "".join("_" if ch in ".*> \t\r\n" else ch for ch in executor_id)


# Connectivity tests before registration: request-reply to an executor of the agent's type.
PROBE_PREFIX = f"{PREFIX}.probe"


def probe(agent_type_token: str) -> str:
    """Where an executor answers ProbeAgent for its agent type (e.g. `whoosh.probe.cli`)."""
    return f"{PROBE_PREFIX}.{agent_type_token}"
