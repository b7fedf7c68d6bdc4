"""Helpers for tests that start their own Ray clusters on this machine: ports, `ray start`,
and stopping exactly the processes of one cluster (by its temp dir), never another's."""

from __future__ import annotations

import contextlib
import csv
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from cli_checks import python_env, run_python

PROJECT = Path(__file__).resolve().parents[2]

# A cluster search at smoke size: tiny images, two short epochs (the tests add their grids).
TINY_SEARCH = ["preset=smoke", "promote=false", "report=false"]
# Ray's CLI beside this interpreter (a venv's bin/, active or not), else the one on PATH.
RAY = (
    str(Path(sys.executable).with_name("ray"))
    if Path(sys.executable).with_name("ray").exists()
    else "ray"
)


# Ray >= 2.5x may enable token auth; a joining node and the driver then need it too. The
# token is this test run's own (a fresh machine has no ~/.ray/auth_token), the format Ray's
# `ray get-auth-token --generate` writes: 64 hex digits.
AUTH = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}


def run_search(results: Path, *argv: str, timeout: float = 600) -> subprocess.CompletedProcess:
    argv = ("-m", "search.run", *argv, f"results_dir={results}")
    return run_python(*argv, env=python_env(**AUTH), timeout=timeout)


def read_leaderboard(folder: Path) -> list[dict[str, str]]:
    """The trials' rows (the predict-nothing BASELINE row left out)."""
    with open(folder / "leaderboard.csv") as handle:
        return [r for r in csv.DictReader(handle) if r["status"] != "BASELINE"]


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def head_flags(port: int, temp: str, client_port: int) -> list[str]:
    """`ray start` flags of a head node on `port` with its own temp dir and client port."""
    return [
        "--head",
        f"--port={port}",
        f"--temp-dir={temp}",
        f"--ray-client-server-port={client_port}",
    ]


def ray_start(*args: str, env: dict[str, str], cpus: float = 2, gpus: float = 1) -> None:
    agent, grpc, runtime, metrics = free_ports(4)
    done = subprocess.run(
        [
            RAY,
            "start",
            *args,
            f"--num-cpus={cpus:g}",
            f"--num-gpus={gpus:g}",
            "--node-ip-address=127.0.0.1",
            f"--dashboard-agent-listen-port={agent}",
            f"--dashboard-agent-grpc-port={grpc}",
            f"--runtime-env-agent-port={runtime}",
            f"--metrics-export-port={metrics}",
            "--disable-usage-stats",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"ray start {' '.join(args)} failed:\n{done.stderr[-3000:]}"


def processes_under(marker: str) -> list[int]:
    """PIDs whose command line names this cluster's own temp dir (only what we started)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline:
            pids.append(int(entry.name))
    return pids


def stop(marker: str) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in processes_under(marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 15
        while processes_under(marker) and time.monotonic() < deadline:
            time.sleep(0.5)
