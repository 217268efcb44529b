"""The `whoosh` command: start WHOOSH locally (`whoosh up`) and drive agents and tasks.

The CLI never imports a service package. It talks to the coordinator over NATS
through `whoosh_shared.runtime.bus.Bus` and starts the services as subprocesses, so it
sees exactly what any other client of the bus sees.
"""

import sys

# httpx's package imports its command-line tool (`httpx._main`: rich, click, pygments,
# ~0.13 s of a ~0.25 s `whoosh status`) only to offer `httpx` as a console script, and
# falls back to a stub when that import fails. The CLI never runs it, so it is marked
# absent before anything imports httpx (benchmarks/bench_cli_startup.py measures this).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
