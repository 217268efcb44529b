"""The shell text sent over SSH: run an agent's command so that it can always be stopped.

An SSH exec request is one string that the remote login shell parses. Every piece of
it here is a constant script or an argument through `shlex.quote`; the prompt never
is: it goes on the channel's stdin, so no prompt can be read as shell syntax.

The agent's environment (which may hold secrets: API tokens) is not on the command line
either, where any user of the host could read it (`ps`, /proc/PID/cmdline): it goes on
stdin ahead of the prompt, one line per variable (`NAME ESCAPED`, every byte but a few
plain ones as a `\\0ooo` octal escape), read by the wrapper with the `read` and `printf`
builtins (no process is started with a value in its arguments) and exported to the
command, which then reads the prompt from the rest of stdin.

What the wrapper guarantees on the host:
- it reports its pid and session first, on stderr (`WHOOSH-PID pid sid`), so the
  executor can kill the whole run over another channel or connection, even after
  the one that started it is gone. OpenSSH starts each session's command as the
  leader of a new (Unix) session, which holds every descendant that does not leave
  it deliberately; the session, not the process group, because `timeout` moves the
  command into a process group of its own;
- the command runs under `timeout`, which kills the command's group (TERM, then KILL
  after the grace) at the deadline on its own: a run outlives neither its deadline
  nor a lost connection by more than the grace;
- a directory that does not exist, a missing `timeout` or a command that is not
  installed is reported as a start failure (exit 127 with a `WHOOSH-CANNOT-START`
  line), not as a run that failed;
- after the command ends, helpers it left in the session get a TERM (as locally), and
  a death by signal is passed on as such, so the exit code means what it does locally.

Cost on the host: the session id and the session's processes are read from Linux's
`/proc` (`/proc/$$/stat` with shell builtins; one `awk` over `/proc/*/stat`), with a
fallback to `ps` where there is no `/proc/$$/stat` (BSDs, macOS) or where that read fails.
`ps` (procps-ng) costs several ms per call even for one pid, and a short command paid
two of them (see benchmarks/README.md, bench_ssh_overhead).
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

PID_MARKER = "WHOOSH-PID"
CANNOT_START_MARKER = "WHOOSH-CANNOT-START"
CANNOT_START_EXIT = 127

# `members ID FIELD`: the pids of the live (not zombie) processes whose pid (FIELD 1) or
# session id (FIELD 2) is ID, but the calling shell's. From /proc where it has Linux's
# /proc/PID/stat ("PID (COMM) STATE PPID PGRP SESSION ...", COMM may hold spaces and
# parentheses, hence the last ") "); a process gone between the glob and its read is
# skipped. Else, or if that awk cannot run (say, an argument list too long), from `ps`.
# The test for Linux's /proc that both scripts make before reading it (else: `ps`).
PROC_TEST = "[ -r /proc/$$/stat ]"
MEMBERS_FUNCTION = r"""members() {
  if [ -r /proc/$$/stat ]; then
    awk -v s="$1" -v f="$2" -v x="$$" 'BEGIN {
      for (i = 1; i < ARGC; i++) {
        if ((getline l < ARGV[i]) <= 0) continue
        close(ARGV[i])
        split(ARGV[i], p, "/")
        sub(/.*\) /, "", l)
        split(l, v, " ")
        if ((f == 1 ? p[3] : v[4]) == s && p[3] != x && v[1] !~ /^[ZX]/) print p[3]
      }
    }' /proc/[0-9]*/stat 2>/dev/null && return
  fi
  ps -eo pid=,sid=,stat= 2>/dev/null |
    awk -v s="$1" -v f="$2" -v x="$$" '$f == s && $1 != x && $3 !~ /^Z/ { print $1 }'
}
"""

# $1 grace (s), $2 deadline (s), $3 workdir ("" = home), $4 how many environment lines
# come first on stdin, then the command's argv. The session id: field 6 of
# /proc/$$/stat, cut out with parameter expansions (no process, and "$@" stays the
# command's). `read` takes stdin one byte at a time from a pipe or socket, so the
# command's stdin starts exactly at the prompt; `$(printf ...; echo x)` keeps a value's
# trailing newlines, and runs in a subshell whose arguments are this script's.
RUN_SCRIPT = (
    MEMBERS_FUNCTION
    + r"""grace=$1 deadline=$2 dir=$3 nenv=$4
shift 4
sid=
if [ -r /proc/$$/stat ] && read -r stat </proc/$$/stat; then
  stat=${stat##*") "} && stat=${stat#* } && stat=${stat#* } && stat=${stat#* }
  sid=${stat%% *}
fi
case $sid in
  "" | *[!0-9]*) sid=$(ps -o sid= -p $$ 2>/dev/null | tr -d ' ') ;;
esac
echo "WHOOSH-PID $$ ${sid:-0}" >&2
i=0
while [ "$i" -lt "$nenv" ]; do
  if ! IFS=' ' read -r name value; then
    echo "WHOOSH-CANNOT-START the environment did not arrive on stdin" >&2
    exit 127
  fi
  value=$(printf '%b' "$value"; echo x)
  export "$name=${value%x}"
  i=$((i + 1))
done
unset name value
case $dir in
  "~") dir=$HOME ;;
  "~/"*) dir=$HOME/${dir#"~/"} ;;
esac
if [ -n "$dir" ] && ! cd "$dir" 2>/dev/null; then
  echo "WHOOSH-CANNOT-START cannot change to directory $dir" >&2
  exit 127
fi
if ! command -v timeout >/dev/null 2>&1; then
  echo "WHOOSH-CANNOT-START 'timeout' (GNU coreutils) is not installed on this host" >&2
  exit 127
fi
if ! command -v "$1" >/dev/null 2>&1; then
  echo "WHOOSH-CANNOT-START command not found: $1" >&2
  exit 127
fi
trap : TERM
timeout -k "$grace" "$deadline" "$@"
rc=$?
if [ "$sid" = "$$" ]; then
  left=$(members $$ 2)
  [ -n "$left" ] && kill -TERM $left 2>/dev/null
fi
trap - TERM
if [ "$rc" -gt 128 ] && [ "$rc" -lt 160 ]; then kill -$((rc - 128)) $$; fi
exit $rc
"""
)

# $1 id, $2 grace (whole seconds), $3 "session" (every process of session $1) or "pid"
# (that process only): TERM them, wait until none is left alive (zombies waiting for a
# slow init do not count), then KILL the rest.
KILL_SCRIPT = (
    MEMBERS_FUNCTION
    + r"""s=$1 grace=$2 field=2
[ "$3" = session ] || field=1
left=$(members "$s" $field)
[ -n "$left" ] || exit 0
kill -TERM $left 2>/dev/null
n=$((grace * 10))
while [ "$n" -gt 0 ]; do
  left=$(members "$s" $field)
  [ -n "$left" ] || exit 0
  sleep 0.1
  n=$((n - 1))
done
left=$(members "$s" $field)
[ -n "$left" ] && kill -KILL $left 2>/dev/null
exit 0
"""
)

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def seconds(value: float | None) -> str:
    """A duration for `timeout`: whole milliseconds, never zero unless None (no limit)."""
    if value is None:
        return "0"
    return f"{max(math.ceil(value * 1000), 1) / 1000:g}"


def run_command(
    argv: Sequence[str],
    *,
    deadline_s: float | None,
    grace_s: float,
    workdir: str | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """The exec string that runs `argv` under the wrapper. Its stdin must start with
    `env_lines(env)` (the same `env`: only how many variables is in the string, never a
    name or value), then the prompt."""
    if not argv:
        raise ValueError("empty command")
    env_lines(env)  # checked here too: a bad name fails before anything is sent
    args = [seconds(grace_s), seconds(deadline_s), workdir or "", str(len(env or {})), *argv]
    return "exec sh -c " + shlex.join([RUN_SCRIPT, "whoosh-run", *args])


def env_lines(env: Mapping[str, str] | None) -> bytes:
    """What goes on the wrapper's stdin ahead of the prompt: one `NAME ESCAPED` line per
    variable, in the order `run_command` counted them."""
    lines = []
    for name, value in (env or {}).items():
        if not _ENV_NAME.match(name):
            raise ValueError(f"environment variable name {name!r} is not valid in a shell")
        if "\0" in value:
            raise ValueError(f"environment variable {name} holds a NUL byte")
        lines.append(f"{name} {_printf_escaped(value)}\n")
    return "".join(lines).encode()


_PLAIN = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.,:/+=@-")


def _printf_escaped(value: str) -> str:
    """`value` for `printf '%b'`: plain bytes as they are, every other one `\\0ooo`."""
    return "".join(chr(b) if b in _PLAIN else f"\\0{b:03o}" for b in value.encode())


@dataclass(frozen=True)
class PidLine:
    pid: int
    sid: int  # 0 where the host could not say

    @property
    def leads_session(self) -> bool:
        """Whether the run leads its own session, so killing the session kills only the run
        (OpenSSH's sessions do; elsewhere only the wrapper's pid is safe to signal)."""
        return self.pid == self.sid


def parse_pid_line(line: str) -> PidLine | None:
    """The wrapper's first stderr line, or None if `line` is not it."""
    parts = line.split()
    if len(parts) == 3 and parts[0] == PID_MARKER and parts[1].isdigit() and parts[2].isdigit():
        return PidLine(int(parts[1]), int(parts[2]))
    return None


def parse_cannot_start(line: str) -> str | None:
    """Why the wrapper could not start the command, if `line` says so."""
    if line.startswith(CANNOT_START_MARKER + " "):
        return line[len(CANNOT_START_MARKER) + 1 :]
    return None


def kill_command(run: PidLine, grace_s: float) -> str:
    """The exec string that stops a run: TERM, grace, KILL, to every process of its session
    where it leads one, else to the wrapper's pid alone (never someone else's session)."""
    grace = str(max(math.ceil(grace_s), 0))
    target = [str(run.sid), "session"] if run.leads_session else [str(run.pid), "pid"]
    return "exec sh -c " + shlex.join([KILL_SCRIPT, "whoosh-kill", target[0], grace, target[1]])
