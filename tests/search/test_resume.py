"""Interrupting the driver and killing a trial's worker: the search picks up where it was."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from search.sweep.leaderboard import checkpoint_history

PROJECT = Path(__file__).resolve().parents[2]
TINY = [  # each test sets its own train.epochs and train.limit_train
    "preset=smoke",
    "space.models.unet.grid.filters=[4]",
    "promote=false",
    "report=false",
    "console_interval_s=0",
]


def _start(results: Path, *argv: str) -> subprocess.Popen:
    """The driver, its output going to a file (a pipe nobody reads would block it)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(PROJECT)}
    log = results / f"driver-{time.monotonic_ns()}.log"
    results.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "search.run", *argv, f"results_dir={results}"],
        cwd=PROJECT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    process.log = log  # type: ignore[attr-defined]
    return process


def _output(process: subprocess.Popen) -> str:
    return process.log.read_text()  # type: ignore[attr-defined]


def _finish(process: subprocess.Popen, timeout: float = 420) -> tuple[int, str]:
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"search did not finish in {timeout} s:\n{_output(process)[-3000:]}")
    return process.returncode, _output(process)


def _wait_for(condition: Callable[[], object], process: subprocess.Popen, what: str) -> object:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process.poll() is not None:
            pytest.fail(f"search ended before {what}:\n{_output(process)[-3000:]}")
        time.sleep(0.5)
    process.kill()
    pytest.fail(f"timed out waiting for {what}")


def _rows(folder: Path) -> list[dict[str, str]]:
    try:
        with open(folder / "leaderboard.csv") as handle:
            return [r for r in csv.DictReader(handle) if r["status"] != "BASELINE"]
    except FileNotFoundError:
        return []


def _results(trial_dir: Path) -> list[dict]:
    path = trial_dir / "result.json"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_sigterm_then_rerun_keeps_finished_trials(tmp_path):
    argv = ["space=unet", "experiment=resume", "train.epochs=3", "train.limit_train=8", *TINY]
    folder = tmp_path / "resume"
    driver = _start(tmp_path, *argv)
    finished = _wait_for(
        lambda: [r for r in _rows(folder) if r["status"] == "TERMINATED"],
        driver,
        "a finished trial",
    )
    driver.send_signal(signal.SIGTERM)
    code, output = _finish(driver, timeout=180)
    assert code == 130, output[-3000:]  # interrupted: state saved, rerun to resume
    assert "rerun the same command to resume" in output
    first = json.loads((folder / "experiment.json").read_text())
    assert first["sittings"] == 1 and first["elapsed_s"] > 0
    kept = {r["trial_id"]: (folder / "tune").glob(f"*_{r['trial_id']}") for r in finished}
    before = {
        tid: next(iter(dirs)).joinpath("result.json").read_text() for tid, dirs in kept.items()
    }

    code, output = _finish(_start(tmp_path, *argv))
    assert code == 0, output[-3000:]
    assert "resuming" in output
    both = json.loads((folder / "experiment.json").read_text())
    assert both["sittings"] == 2 and both["elapsed_s"] > first["elapsed_s"]  # summed, not reset
    rows = _rows(folder)
    assert len(rows) == 4 and {r["status"] for r in rows} == {"TERMINATED"}
    assert all(r["epochs"] == "3" for r in rows)
    for trial_id, text in before.items():
        trial_dir = next((folder / "tune").glob(f"*_{trial_id}"))
        assert (trial_dir / "result.json").read_text() == text, f"{trial_id} was rerun"


@pytest.mark.slow
def test_killed_trial_worker_resumes_from_its_last_checkpoint(tmp_path):
    argv = [
        "space=unet",
        "experiment=fault",
        "space.models.unet.grid.activation=[relu]",
        "space.models.unet.grid.loss=[bce]",
        "train.epochs=4",
        "train.limit_train=24",
        "max_failures=2",
        "prune_checkpoints=false",  # keep the newest checkpoint, to read its history
        *TINY,
    ]
    folder = tmp_path / "fault"
    driver = _start(tmp_path, *argv)

    def reported_with_checkpoint() -> dict | None:
        for trial_dir in (folder / "tune").glob("unet_*"):
            results = _results(trial_dir)
            if results and list(trial_dir.glob("checkpoint_*/state.json")):
                return results[-1]
        return None

    last = _wait_for(reported_with_checkpoint, driver, "a reported epoch with a checkpoint")
    os.kill(int(last["pid"]), signal.SIGKILL)  # the trial's worker dies mid-training
    code, output = _finish(driver)
    assert code == 0, output[-3000:]
    (row,) = _rows(folder)
    assert row["status"] == "TERMINATED" and row["epochs"] == "4"
    results = _results(next((folder / "tune").glob("unet_*")))
    epochs = [r["epoch"] for r in results]
    pids = [r["pid"] for r in results]
    assert epochs == sorted(set(epochs)) and epochs[-1] == 4, epochs  # no epoch trained twice
    assert len(set(pids)) == 2, pids  # a new worker took over...
    switch = pids.index(pids[-1])
    assert pids[switch - 1] == last["pid"]
    assert epochs[switch] == epochs[switch - 1] + 1  # ...at the epoch after the checkpoint
    # The newest checkpoint carries every epoch's metrics, the killed worker's included: what
    # search.sweep.leaderboard rebuilds a result.json from when a killed driver truncated it.
    trial_dir = next((folder / "tune").glob("unet_*"))
    history = checkpoint_history(trial_dir)
    assert [(h["epoch"], h["loss"], h["pid"]) for h in history] == [
        (r["epoch"], r["loss"], r["pid"]) for r in results
    ]
    # A driver killed while Tune copied result.json leaves it empty (search.bench.chaos saw it): the
    # next run of the same command rebuilds it from that history, and the leaderboard with it.
    (trial_dir / "result.json").write_text("")
    code, output = _finish(_start(tmp_path, *argv))
    assert code == 0, output[-3000:]
    assert "result.json had lost epoch(s) 1-4; restored" in output
    keys = ("trial_id", "training_iteration", "epoch", "loss", "val_kaggle_dice")
    assert [[r[k] for k in keys] for r in _results(trial_dir)] == [
        [r[k] for k in keys] for r in results
    ]
    assert _rows(folder) == [row]
