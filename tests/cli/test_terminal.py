"""The terminal as people see it, in a real pseudo-terminal against a real `whoosh up`
with an LLM agent (the protocol-faithful Ollama double): streamed tokens read as text,
`task watch` follows any task, `whoosh top` redraws in place and leaves cleanly."""

from __future__ import annotations

import json
import re
import termios
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli.terminal import PtyRun
from cli.whoosh_processes import TEST_CONFIG, WhooshEnv, make_installation
from executor_ollama.ollama_double import DoubleConfig, OllamaDouble

ANSWER = "First line of the answer,\nand the second line of it."
MODEL = "llama3.2:1b"


@pytest.fixture(scope="module")
def llm_whoosh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WhooshEnv]:
    double = OllamaDouble(DoubleConfig(reply=ANSWER, tokens_per_s=60.0))
    double.start()
    config = TEST_CONFIG + (
        f'  llm:\n    type: ollama\n    endpoint: "{double.url}"\n    model: "{MODEL}"\n'
    )
    installation = make_installation(tmp_path_factory.mktemp("whoosh-llm"), config)
    try:
        installation.up()
        yield installation
    finally:
        for up in installation.started:
            up.cleanup()
        double.stop()


def run_in_pty(env: WhooshEnv, *args: str, pipe_stdout: bool = False) -> tuple[int, PtyRun]:
    run = PtyRun.start(env, *args, pipe_stdout=pipe_stdout)
    try:
        code = run.wait(60)
    finally:
        run.close()
    return code, run


def test_streamed_tokens_print_as_continuous_text(llm_whoosh: WhooshEnv) -> None:
    code, run = run_in_pty(llm_whoosh, "task", "submit", "alpha beta", "--model", MODEL, "--wait")
    assert code == 0, run.text
    # On the terminal (the pty turns \n into \r\n): the answer's words on the lines the
    # model wrote, whatever progress the status line showed on stderr in between.
    shown = re.sub(r"\r\x1b\[2K(\[[^\]]*\])?", "", run.text)
    assert "First line of the answer,\r\nand the second line of it.\r\n" in shown, run.text
    assert "whoosh: completed" in shown


def test_piped_answer_is_exactly_the_model_text_and_verbose_reports_speed(
    llm_whoosh: WhooshEnv,
) -> None:
    run = PtyRun.start(
        llm_whoosh, "task", "submit", "alpha", "--model", MODEL, "--wait", "--verbose",
        pipe_stdout=True,
    )  # fmt: skip
    try:
        stdout, _ = run.proc.communicate(timeout=60)
        run.read_for(0.3)
    finally:
        run.close()
    assert run.proc.returncode == 0, run.text
    joined = "tokens joined as the model wrote them, one final newline"
    assert stdout.decode() == ANSWER + "\n", joined
    for label in ("eval count:", "eval rate:", "prompt eval rate:", "streamed chunks:"):
        assert label in run.text, run.text
    assert re.search(r"eval rate:\s+\d+\.\d+ tokens/s", run.text)


def test_task_watch_follows_a_task_submitted_elsewhere(llm_whoosh: WhooshEnv) -> None:
    submitted = llm_whoosh.run("task", "submit", "watch me", "--model", MODEL, "--json")
    assert submitted.returncode == 0, submitted.stderr
    task_id = json.loads(submitted.stdout)["ids"]["task_id"]
    code, run = run_in_pty(llm_whoosh, "task", "watch", task_id, pipe_stdout=True)
    assert code == 0, run.text
    assert "completed" in run.text

    missing = llm_whoosh.run("task", "watch", "00000000-0000-4000-8000-000000000000")
    assert missing.returncode != 0
    assert "Traceback" not in missing.stderr and "unknown task" in missing.stderr
    bad = llm_whoosh.run("task", "watch", "nope")
    assert bad.returncode == 2 and "is not a task id" in bad.stderr


@pytest.mark.parametrize("quit_key", ["q", "\x03"], ids=["q", "ctrl-c"])
def test_top_redraws_in_place_and_restores_the_terminal(
    llm_whoosh: WhooshEnv, quit_key: str, tmp_path: Path
) -> None:
    run = PtyRun.start(llm_whoosh, "top", "--interval", "0.3")
    before = termios.tcgetattr(run.slave)
    try:
        run.wait_for_text("AGENT", 30)
        run.wait_for_text("llm", 5)
        frames = run.text.count("whoosh top")
        run.read_for(1.0)
        assert run.text.count("whoosh top") > frames, "the view refreshes by itself"
        assert "\x1b[?1049h" in run.text, "drawn on the alternate screen, in place"
        run.type(quit_key)
        code = run.wait(10)
    finally:
        after = termios.tcgetattr(run.slave)
        run.close()
    assert code == 0, run.text
    assert run.text.rstrip().endswith("\x1b[?1049l"), "the normal screen is given back last"
    assert "Traceback" not in run.text and "interrupted" not in run.text
    assert after == before, "the terminal's modes are restored"


def test_top_once_prints_one_frame_for_scripts(llm_whoosh: WhooshEnv) -> None:
    once = llm_whoosh.run("top", "--once")
    assert once.returncode == 0, once.stderr
    assert "\x1b[" not in once.stdout
    lines = once.stdout.splitlines()
    assert any(line.startswith("llm") and "ollama" in line for line in lines), once.stdout
    assert any(line.startswith("echo") and "healthy" in line for line in lines), once.stdout


def test_top_frame_shows_gpus_when_the_monitor_reports_them() -> None:
    from datetime import UTC, datetime

    from whoosh_cli.top_command import render_frame
    from whoosh_shared.contract.gpu_readings import Gpu
    from whoosh_shared.contract.queries import FleetStats

    stats = FleetStats(tasks_by_status={"running": 1}, agents=0, agents_enabled=0, in_flight=1,
                       position=9)  # fmt: skip
    readings = {"utilization": 0.5, "memory_used": 2**31, "memory_total": 2**33}
    gpu = Gpu("gpu-1", "0", "NVIDIA H200", {**readings, "temperature": 60.0})
    frame = render_frame(stats, [], [], 200, datetime.now(UTC), [gpu])
    row = next(line for line in frame if line.startswith("gpu-1"))
    assert row.split() == ["gpu-1", "0", "NVIDIA", "H200", "50%", "2.0/8.0", "GiB", "60C"]
    assert "(no GPU readings)" in render_frame(stats, [], [], 200, datetime.now(UTC))


def test_a_notice_arriving_mid_answer_waits_for_the_line_to_end() -> None:
    """Tokens and status events travel separately: "running" may come after the first
    token, and must not split the answer's line on the terminal."""
    import io

    from whoosh_cli.stream_render import OutputWriter, Progress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Tty()
    writer = OutputWriter(Progress(screen), out=screen, err=screen)
    writer.write("token", "First ")
    writer.progress.say("whoosh: running")
    writer.write("token", "line.\n")
    writer.write("token", "Second")
    writer.finish()
    plain = screen.getvalue().replace("\r\x1b[2K", "")
    plain = "".join(part.split("]", 1)[-1] for part in plain.split("["))
    assert "First line.\nwhoosh: running\n" in plain
    assert plain.endswith("Second\n")
