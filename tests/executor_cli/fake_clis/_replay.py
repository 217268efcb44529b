"""Shared body of the fake `claude`, `codex` and `gemini` executables.

Each fake behaves like its CLI in non-interactive mode, as far as the executor can
tell: it insists on the flags for machine-readable output, reads the whole prompt
from stdin (refusing an empty one, as the real CLIs do), then replays a recorded
stream to stdout and exits with that recording's exit code.

Environment:
- FAKE_CLI_RECORDING: which recording, `success` by default. A bare name picks
  `recordings/<cli>_<name>.jsonl`; a value with a `/` or ending in `.jsonl` is a path.
- FAKE_CLI_EXIT_CODE: overrides the recording's exit code.
- FAKE_CLI_DELAY_S: pause between lines (to watch streaming, or to cancel mid-run).
- FAKE_CLI_PROMPT_OUT: a file to write the prompt received on stdin to.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

RECORDINGS = Path(__file__).resolve().parent.parent / "recordings"

# What each CLI exits with after the recorded stream (0 when not listed). Claude Code and
# Codex exit 1 on a failed run; Gemini CLI's fatal errors exit with their own codes.
EXIT_CODES = {
    "claude_error_max_turns": 1,
    "claude_truncated": 1,
    "codex_turn_failed": 1,
    "gemini_error": 1,
    "gemini_turn_limit": 53,
}

# Flags each CLI needs to stream machine-readable output without asking anything.
REQUIRED_FLAGS = {
    "claude": [("-p", "--print"), ("--output-format",), ("--verbose",)],
    "codex": [("exec",), ("--json", "--experimental-json")],
    "gemini": [("--output-format", "-o")],
}
STREAM_FORMAT = {"claude": "stream-json", "gemini": "stream-json"}


def main(cli: str) -> int:
    args = sys.argv[1:]
    for names in REQUIRED_FLAGS[cli]:
        if not any(arg.split("=", 1)[0] in names for arg in args):
            print(f"fake {cli}: missing {' or '.join(names)} in {args}", file=sys.stderr)
            return 2
    wanted = STREAM_FORMAT.get(cli)
    if wanted and _option(args, "--output-format", "-o") != wanted:
        print(f"fake {cli}: --output-format must be {wanted}", file=sys.stderr)
        return 2
    prompt = sys.stdin.read()
    if not prompt.strip():
        print(f"fake {cli}: no prompt on stdin", file=sys.stderr)
        return 2
    if out := os.environ.get("FAKE_CLI_PROMPT_OUT"):
        Path(out).write_text(prompt, encoding="utf-8")

    name = os.environ.get("FAKE_CLI_RECORDING", "success")
    path = (
        Path(name) if "/" in name or name.endswith(".jsonl") else RECORDINGS / f"{cli}_{name}.jsonl"
    )
    delay = float(os.environ.get("FAKE_CLI_DELAY_S", "0") or 0)
    with path.open("rb") as recording:
        for line in recording:
            sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()
            if delay:
                time.sleep(delay)
    code = os.environ.get("FAKE_CLI_EXIT_CODE")
    return int(code) if code else EXIT_CODES.get(path.stem, 0)


def _option(args: list[str], *names: str) -> str | None:
    """The last value given to an option, as `NAME VALUE` or `NAME=VALUE`."""
    value = None
    for i, arg in enumerate(args):
        if arg in names and i + 1 < len(args):
            value = args[i + 1]
        elif arg.split("=", 1)[0] in names and "=" in arg:
            value = arg.split("=", 1)[1]
    return value
