"""The `whoosh` command: start WHOOSH locally (`whoosh up`) and drive agents and tasks.

The CLI never imports a service package. It talks to the coordinator over NATS
through `whoosh_shared.bus.Bus` and starts the services as subprocesses, so it
sees exactly what any other client of the bus sees.
"""
