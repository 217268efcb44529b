"""WHOOSH's shared package, in two halves that services import and never each other.

- `whoosh_shared.contract`: what two services must agree on, as plain data and pure rules
  with no I/O: message models (commands, events, queries, work items, heartbeats), subject
  and stream names, the `whoosh.yaml` configuration, limits and policies.
- `whoosh_shared.runtime`: the code every service runs the same way on top of that
  contract: the bus, the event store, the blob store, NATS credentials, the executor
  runtime, supervised loops, logging and the service entry point.

The contract imports nothing from the runtime, and a test keeps it so.
"""
