"""`whoosh replay`: rebuild the projections from the event store and show the counts.

The coordinator owns the store and its projections, so the CLI runs the
coordinator's own `replay` subcommand instead of reading the store itself.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from whoosh_cli.context import CliContext
from whoosh_cli.errors import CliError

REPLAY_TIMEOUT_S = 600.0


def replay_argv(ctx: CliContext, store_url: str | None) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "whoosh_coordinator",
        "replay",
        "--store",
        store_url or ctx.config.store_url(),
    ]
    return [*argv, "--json"] if ctx.json else argv


def replay(ctx: CliContext, args: argparse.Namespace) -> int:
    """Run the replay, passing its output through; its exit status is ours."""
    argv = replay_argv(ctx, args.store)
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, timeout=REPLAY_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise CliError(f"replay did not finish within {REPLAY_TIMEOUT_S:g}s") from None
    except OSError as exc:
        raise CliError(f"cannot run the coordinator's replay: {exc}") from None
    return done.returncode
