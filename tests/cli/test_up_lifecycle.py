"""`whoosh up` as a process: one per data dir, clear refusals, crash-safe restarts, clean stop."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from cli.whoosh_processes import WhooshEnv, pids_alive, wait_until
from harness import NatsServer, free_port


def test_up_refused_while_the_data_dir_lock_is_held(whoosh_env: WhooshEnv) -> None:
    whoosh_env.data_dir.mkdir(parents=True)
    with (whoosh_env.data_dir / "whoosh.lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write(f"{os.getpid()}\n")
        held.flush()
        result = whoosh_env.run("up", timeout=30)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    expected = f"WHOOSH is already running on data dir {whoosh_env.data_dir} (pid {os.getpid()})"
    assert expected in result.stderr
    assert not (whoosh_env.data_dir / "logs").exists(), "nothing may start when refused"


def test_second_up_on_the_same_data_dir_is_refused(whoosh_env: WhooshEnv) -> None:
    first = whoosh_env.up()
    result = whoosh_env.run("up", timeout=30)
    assert result.returncode == 1, result.stderr
    assert f"already running on data dir {whoosh_env.data_dir} (pid {first.pid})" in result.stderr
    assert first.proc.poll() is None, "the first `up` keeps running"
    assert whoosh_env.run("status").returncode == 0


def test_port_taken_is_refused_before_anything_starts(whoosh_env: WhooshEnv) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", whoosh_env.port))
        squatter.listen()
        result = whoosh_env.run("up", timeout=30)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert f"port {whoosh_env.port}" in result.stderr
    assert "nats.port" in result.stderr and "WHOOSH__NATS__PORT" in result.stderr
    assert not (whoosh_env.data_dir / "logs").exists(), "nothing may start when refused"
    assert whoosh_env.children() == []


def test_port_zero_picks_a_free_port_and_commands_find_it(whoosh_env: WhooshEnv) -> None:
    whoosh_env.env["WHOOSH__NATS__PORT"] = "0"
    whoosh_env.up()
    endpoints = (whoosh_env.data_dir / "endpoints.json").read_text()
    assert "nats://127.0.0.1:" in endpoints
    status = whoosh_env.run("status")
    assert status.returncode == 0, status.stderr
    assert "cli-test" in status.stdout


def test_kill_9_of_up_then_up_again_starts_cleanly(whoosh_env: WhooshEnv) -> None:
    first = whoosh_env.up()
    old_children = list(first.child_pids)
    assert len(old_children) == 6, whoosh_env.children()  # nats, coordinator, 2 executors,
    # monitor, gateway
    os.kill(first.pid, signal.SIGKILL)
    first.proc.wait(10)
    # the kernel's death signal takes the children down with it
    try:
        wait_until(lambda: not pids_alive(old_children), 20, "the old children to exit")
    except AssertionError as error:
        alive = _described(pids_alive(old_children))
        raise AssertionError(f"{error}: {alive}\n{first.describe()}") from None
    second = whoosh_env.up()
    assert second.proc.poll() is None
    assert not set(second.child_pids) & set(old_children)
    status = whoosh_env.run("status")
    assert status.returncode == 0, status.stderr


def _described(pids: list[int]) -> str:
    """Each pid with its command line, for a failure message."""
    lines = []
    for pid in pids:
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            lines.append(f"{pid}: {argv.decode(errors='replace')}")
    return "still alive: " + "; ".join(lines)


def test_recorded_stale_children_are_stopped_but_reused_pids_are_not(
    whoosh_env: WhooshEnv,
) -> None:
    """A child that outlived a killed `up` (no death signal, e.g. not Linux) is stopped by
    the next `up`; a recorded pid now used by another program is left alone."""
    stale = subprocess.Popen(["sleep", "300"])
    stranger = subprocess.Popen(["sleep", "301"])
    try:
        whoosh_env.data_dir.mkdir(parents=True)
        records = [
            {"name": "executor-cli", "pid": stale.pid, "argv": ["sleep", "300"]},
            {"name": "coordinator", "pid": stranger.pid, "argv": ["python", "-m", "x"]},
        ]
        (whoosh_env.data_dir / "children.json").write_text(json.dumps(records))
        up = whoosh_env.up()
        assert stale.wait(5) is not None
        assert stranger.poll() is None, "a pid whose cmdline differs must not be killed"
        assert f"executor-cli (pid {stale.pid})" in up.stderr()
    finally:
        for proc in (stale, stranger):
            proc.kill()
            proc.wait(5)


def test_ctrl_c_stops_every_child_and_releases_the_data_dir(whoosh_env: WhooshEnv) -> None:
    up = whoosh_env.up()
    children = list(up.child_pids)
    assert len(children) == 6  # nats, coordinator, 2 executors, monitor, gateway
    assert up.interrupt() == 0, up.describe()
    assert not pids_alive(children), "children outlived `whoosh up`"
    assert not (whoosh_env.data_dir / "endpoints.json").exists()
    assert not (whoosh_env.data_dir / "children.json").exists()
    assert "stopping" in up.stderr()
    with (whoosh_env.data_dir / "whoosh.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again
    unreachable = whoosh_env.run("status")
    assert unreachable.returncode == 3


def test_sigterm_stops_up_cleanly(whoosh_env: WhooshEnv) -> None:
    up = whoosh_env.up()
    children = list(up.child_pids)
    up.proc.send_signal(signal.SIGTERM)
    assert up.proc.wait(40) == 0, up.describe()
    assert not pids_alive(children)


def test_a_crashed_service_is_restarted_and_work_goes_on(whoosh_env: WhooshEnv) -> None:
    up = whoosh_env.up()
    executor = next(c["pid"] for c in whoosh_env.children() if c["name"] == "executor-cli")
    os.kill(executor, signal.SIGKILL)
    wait_until(lambda: "restarted executor-cli" in up.stderr(), 20, "the executor restart")
    assert "executor-cli exited unexpectedly" in up.stderr()
    result = whoosh_env.run("task", "submit", "after the crash", "--wait", timeout=60)
    assert result.returncode == 0, (result.stderr, up.describe())
    assert "echo-agent got: after the crash" in result.stdout


def test_bad_store_url_is_a_config_error_before_anything_starts(whoosh_env: WhooshEnv) -> None:
    whoosh_env.env["WHOOSH_STORE_URL"] = "mysql://nope/db"
    result = whoosh_env.run("up", timeout=30)
    assert result.returncode == 2, result.stderr
    assert "unsupported scheme" in result.stderr and "WHOOSH_STORE_URL" in result.stderr
    assert not (whoosh_env.data_dir / "logs").exists()


def test_coordinator_that_cannot_start_fails_up_with_its_log(whoosh_env: WhooshEnv) -> None:
    closed = free_port()  # nothing listens: the store cannot be opened
    whoosh_env.env["WHOOSH_STORE_URL"] = f"postgresql://whoosh@127.0.0.1:{closed}/whoosh"
    up = whoosh_env.up(wait_ready=False)
    assert up.proc.wait(60) == 1, up.describe()
    err = up.stderr()
    assert "the coordinator exited while starting" in err
    assert "coordinator.log ends with:" in err
    assert "Traceback" not in err.split("ends with:")[0]
    wait_until(lambda: whoosh_env.children() == [], 5, "children.json to be cleared")


def test_configured_nats_that_does_not_answer_is_refused(whoosh_env: WhooshEnv) -> None:
    whoosh_env.env["WHOOSH_NATS_URL"] = f"nats://127.0.0.1:{free_port()}"
    result = whoosh_env.run("up", timeout=30)
    assert result.returncode == 1, result.stderr
    assert "cannot reach the configured NATS server" in result.stderr
    assert whoosh_env.children() == []


def test_up_uses_a_configured_existing_nats(whoosh_env: WhooshEnv, tmp_path) -> None:
    server = NatsServer(tmp_path / "external-nats")
    server.start()
    try:
        whoosh_env.env["WHOOSH_NATS_URL"] = server.url
        up = whoosh_env.up()
        assert f"{server.url} (existing server)" in up.stdout()
        assert {c["name"] for c in whoosh_env.children()} == {
            "coordinator",
            "executor-cli",
            "executor-ollama",
            "monitor",
            "gateway",
        }
        result = whoosh_env.run("task", "submit", "external", "--wait", timeout=60)
        assert result.returncode == 0, result.stderr
        assert up.interrupt() == 0
        assert server.proc is not None and server.proc.poll() is None, "not ours to stop"
    finally:
        server.stop()


def test_wait_ends_with_exit_3_when_whoosh_goes_away(whoosh_env: WhooshEnv) -> None:
    whoosh_env.up()
    slow = whoosh_env.run("agent", "add", "slow", "--command", "sh -c 'echo go; sleep 60'",
                          "--capability", "slow")  # fmt: skip
    assert slow.returncode == 0, slow.stderr
    err = whoosh_env.root / "wait.err"
    with err.open("wb") as stderr:
        waiting = subprocess.Popen(
            [sys.executable, "-m", "whoosh_cli", "task", "submit", "z", "--capability", "slow",
             "--wait"],
            env=whoosh_env.env, cwd=whoosh_env.root, stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
    try:
        wait_until(lambda: "running" in err.read_text(), 30, "the task to run")
        up = whoosh_env.started[0]
        os.kill(up.pid, signal.SIGKILL)
        assert waiting.wait(40) == 3
        assert "is WHOOSH running?" in err.read_text()
        assert "Traceback" not in err.read_text()
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait(5)


def test_a_restarted_monitor_serves_metrics_on_the_same_port(whoosh_env: WhooshEnv) -> None:
    """`up` holds the metrics port for the monitor's whole life, restarts included: a
    crashed monitor's port cannot be taken meanwhile (the restart then failed until `up`
    gave up and stopped all of WHOOSH), and the banner's URL stays right."""
    port = int(whoosh_env.env["WHOOSH__MONITORING__METRICS_PORT"])
    up = whoosh_env.up()
    monitor = next(c["pid"] for c in whoosh_env.children() if c["name"] == "monitor")
    os.kill(monitor, signal.SIGKILL)
    wait_until(lambda: not pids_alive([monitor]), 10, "the monitor's end")
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            squatter.bind(("127.0.0.1", port))
        except OSError:
            pass
        else:
            squatter.listen()
            raise AssertionError(f"port {port} could be taken while the monitor was down")
    wait_until(lambda: "restarted monitor" in up.stderr(), 20, "the monitor restart")
    url = f"http://127.0.0.1:{port}/metrics"

    def serves() -> bool:
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
            return b"whoosh_" in response.read()
        return False

    wait_until(serves, 20, f"metrics at {url}")
