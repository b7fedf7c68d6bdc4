"""search.lock: one live command per experiment, stale locks taken over, nothing half-written."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from cli_checks import one_error_line, run_python

from data.config import ConfigError
from search.lock import LOCK_NAME, ExperimentLock, ExperimentLocked, read_holder

ROOT = Path(__file__).resolve().parents[2]


def _write_lock(folder: Path, **fields) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    holder = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "command": "search.run",
        "started": "2026-01-01T00:00:00+00:00",
        "heartbeat": time.time(),
        "token": "someone-else",
        **fields,
    }
    path = folder / LOCK_NAME
    path.write_text(json.dumps(holder))
    return path


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_the_lock_names_its_holder_and_goes_with_it(tmp_path: Path) -> None:
    with ExperimentLock(tmp_path / "exp", command="search.run") as lock:
        holder = read_holder(lock.path)
        assert holder is not None
        assert (holder.host, holder.pid, holder.command) == (
            socket.gethostname(),
            os.getpid(),
            "search.run",
        )
        assert holder.token == lock.token
    assert not (tmp_path / "exp" / LOCK_NAME).exists()
    assert [p.name for p in (tmp_path / "exp").iterdir()] == []  # no temporary left behind


def test_a_live_holder_stops_a_second_command_with_the_way_out(tmp_path: Path) -> None:
    with (
        ExperimentLock(tmp_path, command="search.promote"),
        pytest.raises(ExperimentLocked) as caught,
    ):
        ExperimentLock(tmp_path, command="search.run").acquire()
    message = str(caught.value)
    assert f"in use by search.promote (pid {os.getpid()} on {socket.gethostname()}" in message
    assert "Wait for it to finish, or choose another experiment=NAME" in message
    assert isinstance(caught.value, ConfigError)  # CLIs print it as one line, exit 2


def test_a_lock_whose_pid_is_gone_on_this_host_is_taken_over(tmp_path: Path, capsys) -> None:
    _write_lock(tmp_path, pid=_dead_pid(), heartbeat=time.time())
    with ExperimentLock(tmp_path, command="search.report") as lock:
        assert read_holder(lock.path).token == lock.token
    assert "took over the lock" in capsys.readouterr().err


def test_another_hosts_lock_is_stale_only_by_its_heartbeat(tmp_path: Path, capsys) -> None:
    _write_lock(tmp_path, host="node-7", pid=1, heartbeat=time.time() - 5)
    with pytest.raises(ExperimentLocked, match="pid 1 on node-7"):
        ExperimentLock(tmp_path, command="search.run", stale_after_s=60).acquire()
    _write_lock(tmp_path, host="node-7", pid=1, heartbeat=time.time() - 120)
    with ExperimentLock(tmp_path, command="search.run", stale_after_s=60) as lock:
        assert read_holder(lock.path).host == socket.gethostname()
    assert "heartbeat is 120 s old (limit 60 s)" in capsys.readouterr().err


def test_the_heartbeat_advances_while_held(tmp_path: Path) -> None:
    with ExperimentLock(tmp_path, command="search.run", heartbeat_s=0.05, stale_after_s=1) as lock:
        first = read_holder(lock.path).heartbeat
        time.sleep(0.3)
        assert read_holder(lock.path).heartbeat > first
        assert not lock.lost


def test_a_holder_that_lost_its_lock_notices_and_leaves_the_successors(tmp_path: Path) -> None:
    lock = ExperimentLock(tmp_path, command="search.run", heartbeat_s=0.05, stale_after_s=1)
    lock.acquire()
    successor = _write_lock(tmp_path, token="successor")
    time.sleep(0.3)
    assert lock.lost
    lock.release()
    assert read_holder(successor).token == "successor"  # not deleted by the old holder


def test_an_unreadable_lock_is_named_not_ignored(tmp_path: Path) -> None:
    (tmp_path / LOCK_NAME).write_text("{not json")
    with pytest.raises(ConfigError, match=f"{LOCK_NAME}: unreadable experiment lock"):
        ExperimentLock(tmp_path, command="search.run").acquire()


def test_of_many_racing_commands_exactly_one_holds_the_lock(tmp_path: Path) -> None:
    # Threads stand in for processes: each lock has its own token, and the file system
    # decides (os.link), not the interpreter.
    start, results = threading.Barrier(8), []

    def contend() -> None:
        lock = ExperimentLock(tmp_path, command="search.run")
        start.wait()
        try:
            lock.acquire()
            results.append("held")
            time.sleep(0.5)
            lock.release()
        except ExperimentLocked:
            results.append("refused")

    threads = [threading.Thread(target=contend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["held"] + ["refused"] * 7


@pytest.mark.parametrize(
    "module,args",
    [
        ("search.run", ["experiment=busy"]),
        ("search.promote", ["experiment=busy"]),
        ("search.report", ["experiment=busy"]),
    ],
)
def test_each_command_on_a_held_experiment_exits_with_one_line(
    tmp_path: Path, module: str, args: list[str]
) -> None:
    results = tmp_path / "results"
    (results / "busy").mkdir(parents=True)
    # promote and report look for the experiment before they lock it: a folder a search made.
    (results / "busy" / "experiment.json").write_text("{}")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from search.lock import ExperimentLock
                with ExperimentLock({str(results / "busy")!r}, command="search.run"):
                    print("held", flush=True)
                    time.sleep(120)
                """
            ),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        done = run_python("-m", module, *args, f"results_dir={results}", timeout=120, cwd=ROOT)
        assert time.monotonic() - started < 30
    finally:
        holder.kill()
        holder.wait()
    assert f"in use by search.run (pid {holder.pid}" in one_error_line(done)
    assert not (results / "busy" / "tune").exists()
