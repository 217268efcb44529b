"""`whoosh top`: a live view of the agents and the running tasks, redrawn in place.

Plain ANSI rather than a TUI library: the view is read-only, one screen, and must leave
the terminal exactly as it found it (alternate screen, cursor, line discipline) whether it
ends on `q`, Ctrl-C or an error. Without a terminal (a pipe) or with `--once`, it prints
one frame and exits, so it scripts like `whoosh status`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sys
import termios
import time
import tty
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

from whoosh_shared.contract.enums import TaskStatus
from whoosh_shared.contract.gpu_readings import Gpu
from whoosh_shared.contract.queries import AgentView, FleetStats, ListTasks, TaskView

from whoosh_cli.context import CliContext
from whoosh_cli.errors import EXIT_OK
from whoosh_cli.fleet import Fleet, open_fleet
from whoosh_cli.output import print_line

ENTER_SCREEN = "\033[?1049h\033[?25l"  # alternate screen, hide the cursor
LEAVE_SCREEN = "\033[?25h\033[?1049l"
HOME_AND_CLEAR = "\033[H\033[2J"
RUNNING_SHOWN = 50


def agent_rows(agents: Sequence[AgentView]) -> list[list[str]]:
    """One row per agent: health, load, measured decode speed, loaded models."""
    rows = []
    for agent in sorted(agents, key=lambda a: a.spec.name):
        if not agent.enabled:
            state = "disabled"
        elif not agent.healthy or not agent.reachable:
            state = "down"
        else:
            state = "healthy"
        speeds = [s.decode_tps for s in agent.speeds.values() if s.decode_tps]
        tps = f"{max(speeds):.1f}" if speeds else "-"
        loaded = ", ".join(agent.inventory.loaded) if agent.inventory else ""
        rows.append([
            agent.spec.name,
            agent.spec.type.value,
            state,
            f"{len(agent.in_flight)}/{agent.spec.max_concurrent}",
            tps,
            loaded or "-",
        ])  # fmt: skip
    return rows


def task_rows(tasks: Sequence[TaskView], now: datetime) -> list[list[str]]:
    """One row per running task: id, agent, elapsed time, last progress or prompt."""
    rows = []
    for task in tasks:
        since = task.started_at or task.assigned_at or task.submitted_at
        elapsed = max(0.0, (now - since).total_seconds())
        what = task.last_progress or task.prompt
        rows.append([str(task.id)[:8], task.agent or "-", f"{elapsed:.0f}s", _first_line(what)])
    return rows


def gpu_rows(gpus: Sequence[Gpu]) -> list[list[str]]:
    """One row per GPU the monitor reports: host, index, model, load, memory, heat."""
    rows = []
    for gpu in gpus:
        util = gpu.utilization_pct
        memory = gpu.memory_gib
        temperature = gpu.values.get("temperature")
        rows.append([
            gpu.host,
            gpu.index,
            gpu.model or "-",
            f"{util:.0f}%" if util is not None else "-",
            f"{memory[0]:.1f}/{memory[1]:.1f} GiB" if memory else "-",
            f"{temperature:.0f}C" if temperature is not None else "-",
        ])  # fmt: skip
    return rows


def render_frame(
    stats: FleetStats,
    agents: Sequence[AgentView],
    running: Sequence[TaskView],
    width: int,
    now: datetime,
    gpus: Sequence[Gpu] = (),
) -> list[str]:
    """The whole screen as lines, cut to `width` (pure, so tests need no terminal)."""
    counts = "  ".join(
        f"{s.value.replace('_', ' ')} {stats.tasks_by_status.get(s.value, 0)}"
        for s in TaskStatus
        if stats.tasks_by_status.get(s.value)
    )
    lines = [
        f"whoosh top  {now:%H:%M:%S}  agents {stats.agents_enabled}/{stats.agents} enabled"
        f"  in flight {stats.in_flight}  (q quits)",
        f"tasks: {counts or 'none yet'}",
        "",
        *_table(["AGENT", "TYPE", "HEALTH", "LOAD", "TOK/S", "LOADED"], agent_rows(agents)),
        "",
        *(
            _table(["HOST", "GPU", "MODEL", "UTIL", "MEMORY", "TEMP"], gpu_rows(gpus))
            if gpus
            else ["(no GPU readings)"]
        ),
        "",
        *_table(["TASK", "AGENT", "RUNNING", "NOW"], task_rows(running, now)),
    ]
    if not running:
        lines.append("(no task running)")
    return [line[:width] for line in lines]


async def gather_frame(fleet: Fleet, width: int) -> list[str]:
    stats = await fleet.stats()
    agents = await fleet.agents()
    page = await fleet.tasks(ListTasks(status=TaskStatus.RUNNING, limit=RUNNING_SHOWN))
    gpus = await fleet.gpus()
    return render_frame(stats, agents, page.tasks, width, datetime.now(UTC), gpus)


async def top(ctx: CliContext, args: argparse.Namespace) -> int:
    interval = max(0.2, float(args.interval))
    async with open_fleet(ctx) as fleet:
        if args.once or not (sys.stdin.isatty() and sys.stdout.isatty()):
            for line in await gather_frame(fleet, 10_000):
                print_line(line)
            return EXIT_OK
        with _screen() as keys:
            while True:
                width = shutil.get_terminal_size().columns
                frame = await gather_frame(fleet, width)
                sys.stdout.write(HOME_AND_CLEAR + "\r\n".join(frame))
                sys.stdout.flush()
                if await _quit_within(keys, interval):
                    return EXIT_OK


@contextlib.contextmanager
def _screen() -> Iterator[asyncio.Queue[str]]:
    """Alternate screen plus single-key input; everything restored on the way out."""
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    keys: asyncio.Queue[str] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    tty.setcbreak(fd)  # keys arrive one by one
    mode = termios.tcgetattr(fd)
    mode[3] &= ~termios.ISIG  # Ctrl-C arrives as a key (0x03): quit like q, no traceback
    termios.tcsetattr(fd, termios.TCSANOW, mode)
    loop.add_reader(fd, lambda: keys.put_nowait(os.read(fd, 32).decode(errors="replace")))
    sys.stdout.write(ENTER_SCREEN)
    sys.stdout.flush()
    try:
        yield keys
    finally:
        loop.remove_reader(fd)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        sys.stdout.write(LEAVE_SCREEN)
        sys.stdout.flush()


async def _quit_within(keys: asyncio.Queue[str], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            typed = await asyncio.wait_for(keys.get(), left)
        except TimeoutError:
            return False
        if "q" in typed.lower() or "\x03" in typed:
            return True
    return False


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    cells = [headers, *rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else ""
