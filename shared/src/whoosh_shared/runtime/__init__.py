"""The runtime library every WHOOSH service shares: bus, stores, credentials, executor
runtime, supervision, logging and entry points, all built on `whoosh_shared.contract`."""
