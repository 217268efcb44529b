"""WHOOSH coordinator: the only writer of the event store.

domain/      aggregates (Agent, Task) and their rules; plain Python, no I/O
scheduler    which queued task goes to which agent; pure
projections  read models folded from events (live, and rebuilt by replay)
store        the eventsourcing application and notification -> envelope mapping
commands     command handling: validate, load, decide, save (with conflict retries)
queries      answers from the projections
relay        store notification log -> JetStream (events and work items)
service      NATS wiring and the background loops
"""
