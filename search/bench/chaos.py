"""Fault injection: a search whose trial workers and driver are SIGKILLed, against the same
search run without faults.

    python -m search.bench.chaos [kills=3] [driver_kills=2] [chaos_seed=0] [tolerance=0]
        [search.run arguments ...]

1. The reference: `search.run ARGS experiment=NAME-reference` (NAME from `experiment=`,
   default `chaos`), no faults; a finished reference is reused (the rerun is a no-op).
2. The faulted run: `search.run ARGS experiment=NAME-faulted max_failures=kills+1`, during
   which
   - `kills` times, at a random moment (seeded by `chaos_seed`) after the last kill and a
     new reported epoch, one running trial worker gets SIGKILL. Only this run's workers are
     candidates: processes descended from its driver whose command line is a Tune function
     trainable (`ray::ImplicitFunc`), never another search's;
   - `driver_kills` times the driver itself gets SIGKILL: first once an epoch has been
     reported, then once a trial has finished and every worker kill has landed; each time the same command is started again
     (resume=auto). Ray processes of the killed driver that outlive it by 30 s are counted
     as leaked, and killed.
3. The comparison, per grid point: the same trials finished; every `result.json` of the
   faulted run has each epoch exactly once, 1..epochs; each trial's best val_kaggle_dice and
   every epoch's training and validation loss equal the reference's within `tolerance` (0:
   bitwise, which the CPU path is: one thread a trial, the data a function of seed and
   epoch, and resume restores weights and optimizer state exactly).

Prints one line per fault and a summary; the last line is JSON. Exits 1 when anything was
lost (a trial missing or unfinished, an epoch missing or repeated, a score off), or when the
search finished before every requested fault landed (give it more epochs).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data.config import ConfigError, compose_schema, own_arguments, require, run_cli
from search.records import LEADERBOARD_FILE, Status, TrialRow, read_leaderboard
from search.sweep.leaderboard import read_results

__all__ = ["main", "compare", "descendants", "trial_workers"]

TRAINABLE = "ray::ImplicitFunc"  # the process title of a Tune function trainable's worker
_RESERVED = ("max_failures=", "resume=", "results_dir=")


def _parent_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # the process ended while we looked
        ppid = int(text.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(stat.parent.name))
    return children


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (Linux /proc)."""
    children, found, todo = _parent_map(), [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _title(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return None


def trial_workers(driver_pid: int) -> list[int]:
    """The running trial workers of the search whose driver is `driver_pid`."""
    return [p for p in descendants(driver_pid) if (_title(p) or "").startswith(TRAINABLE)]


def _rows(folder: Path) -> list[TrialRow]:
    """The trials' rows of a run's leaderboard (none before the search writes one)."""
    if not (folder / LEADERBOARD_FILE).is_file():
        return []
    return [r for r in read_leaderboard(folder) if not r.is_baseline]


def _grid_index(trial_id: str) -> str:
    """A grid trial's position (`..._00003` -> `00003`): the same point in both runs."""
    return trial_id.rsplit("_", 1)[-1]


def _epochs_reported(folder: Path) -> int:
    return sum(len(read_results(d)) for d in (folder / "tune").glob("*_*") if d.is_dir())


def compare(reference: Path, faulted: Path, *, tolerance: float) -> dict[str, Any]:
    """What the faulted run lost against the reference (every count must be 0)."""
    want = {_grid_index(r.trial_id): r for r in _rows(reference)}
    got = {_grid_index(r.trial_id): r for r in _rows(faulted)}
    require(want, f"{reference}: the reference search has no leaderboard")
    missing = sorted(set(want) - set(got))
    unfinished = sorted(k for k, r in got.items() if r.status != Status.TERMINATED)
    score_diffs: dict[str, float] = {}
    for key, row in want.items():
        if key in got and got[key].score is not None and row.score is not None:
            diff = abs(got[key].score - row.score)
            score_diffs[key] = diff
    off = sorted(k for k, d in score_diffs.items() if d > tolerance)
    repeated, gaps, curves_off = [], [], []
    reference_curves = {
        _grid_index(d.name): _curve(read_results(d, strict=True))
        for d in (reference / "tune").glob("*_*")
    }
    curve_diffs = [0.0]
    for trial_dir in sorted(d for d in (faulted / "tune").glob("*_*") if d.is_dir()):
        records = read_results(trial_dir, strict=True)
        if not records:
            # An empty or missing result.json lost every epoch: a 0-byte one left by a driver
            # killed while Tune copied it once passed here unseen (the leaderboard had only
            # the last epoch's score).
            if _grid_index(trial_dir.name) in want:
                gaps.append(trial_dir.name)
            continue
        epochs = [r["epoch"] for r in records]
        if len(epochs) != len(set(epochs)):
            repeated.append(trial_dir.name)
        if epochs and sorted(set(epochs)) != list(range(1, max(epochs) + 1)):
            gaps.append(trial_dir.name)
        # Every epoch's training and validation loss, not only the best score: a resumed
        # trial that trained differently shows here even when the best score ties.
        mine = _curve(records)
        theirs = reference_curves.get(_grid_index(trial_dir.name), {})
        diffs = [abs(mine[e][i] - theirs[e][i]) for e in mine if e in theirs for i in (0, 1)]
        curve_diffs += diffs
        if set(mine) != set(theirs) or any(d > tolerance for d in diffs):
            curves_off.append(trial_dir.name)
    expected_epochs = {k: r.cells.get("epochs") for k, r in want.items()}
    short = sorted(k for k, r in got.items() if r.cells.get("epochs") != expected_epochs.get(k))
    return {
        "trials": len(want),
        "missing": missing,
        "unfinished": unfinished,
        "short": short,
        "repeated_epochs": repeated,
        "missing_epochs": gaps,
        "scores_off": off,
        # grid point -> [the reference's best score, the faulted run's], for each one off
        "scores": {k: [want[k].score, got[k].score] for k in off},
        "curves_off": curves_off,
        "max_score_diff": max(score_diffs.values(), default=0.0),
        "max_loss_diff": max(curve_diffs),
        "lost": len(missing)
        + len(unfinished)
        + len(short)
        + len(repeated)
        + len(gaps)
        + len(off)
        + len(curves_off),
    }


def _curve(records: Sequence[dict[str, Any]]) -> dict[int, tuple[float, float]]:
    """epoch -> (training loss, validation loss) of a trial's results (last wins)."""
    return {int(r["epoch"]): (float(r["loss"]), float(r["val_loss"])) for r in records}


def _start(argv: Sequence[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    handle = log.open("a")
    return subprocess.Popen(
        [sys.executable, "-m", "search.run", *argv],
        stdout=handle,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
    )


def _say(text: str) -> None:
    print(f"[chaos] {time.strftime('%H:%M:%S')} {text}", flush=True)


def _reap(pids: Sequence[int], wait_s: float = 30.0) -> list[int]:
    """Wait for a killed driver's processes to end; kill and return those still alive."""
    deadline = time.monotonic() + wait_s
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        time.sleep(1.0)
        alive = [p for p in alive if _title(p) is not None]
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return alive


def run_faulted(
    argv: Sequence[str],
    folder: Path,
    *,
    kills: int,
    driver_kills: int,
    rng: random.Random,
    log: Path,
    timeout_s: float = 3600.0,
) -> dict[str, Any]:
    """Run the search to the end while injecting the faults; counts of what was done."""
    started = time.monotonic()
    done_kills, done_driver_kills, restarts, leaked = 0, 0, 0, []
    last_epochs, wait_until = 0, None
    driver = _start(argv, log)
    while True:
        require(time.monotonic() - started < timeout_s, f"chaos run over {timeout_s:.0f} s")
        code = driver.poll()
        if code is not None:
            if code == 0:
                break
            raise ConfigError(
                f"the faulted search exited with {code} (log: {log}); "
                + " | ".join(log.read_text().splitlines()[-3:])
            )
        epochs = _epochs_reported(folder)
        finished = sum(r.status == Status.TERMINATED for r in _rows(folder))
        # The second driver kill waits for every worker kill: faults land in the order driver,
        # workers, driver, so a last trial finishing during a restart cannot leave one undone.
        driver_due = (done_driver_kills == 0 and epochs >= 1) or (
            done_driver_kills == 1 and finished >= 1 and done_kills >= kills
        )
        if done_driver_kills < driver_kills and driver_due:
            family = descendants(driver.pid)
            driver.send_signal(signal.SIGKILL)
            driver.wait()
            done_driver_kills += 1
            stray = _reap(family)
            leaked += stray
            _say(
                f"driver SIGKILL {done_driver_kills}/{driver_kills} at {epochs} epoch(s), "
                f"{finished} trial(s) finished; {len(stray)} Ray process(es) outlived it"
            )
            driver = _start(argv, log)
            restarts += 1
            last_epochs, wait_until = epochs, None
            continue
        if done_kills < kills and epochs > last_epochs:
            if wait_until is None:
                wait_until = time.monotonic() + rng.uniform(0.0, 3.0)
            workers = trial_workers(driver.pid)
            if time.monotonic() >= wait_until and workers:
                victim = rng.choice(sorted(workers))
                try:
                    os.kill(victim, signal.SIGKILL)
                    done_kills += 1
                    _say(f"worker SIGKILL {done_kills}/{kills}: pid {victim} at {epochs} epoch(s)")
                except ProcessLookupError:
                    pass
                last_epochs, wait_until = epochs, None
        time.sleep(0.2)
    return {
        "worker_kills": done_kills,
        "driver_kills": done_driver_kills,
        "restarts": restarts,
        "leaked_processes": len(leaked),
        "faulted_s": round(time.monotonic() - started, 1),
    }


@dataclass
class ChaosConfig:
    """search.bench.chaos's own keys; every other argument goes to search.run."""

    kills: int = 3
    driver_kills: int = 2
    chaos_seed: int = 0
    tolerance: float = 0.0


def main(argv: Sequence[str]) -> int:
    own, rest = own_arguments(ChaosConfig, argv)
    args = compose_schema(
        ChaosConfig, own + [a for a in rest if a in ("--help", "-h")], __doc__ or ""
    )
    for arg in rest:
        require(
            not arg.startswith(_RESERVED[:2]),
            f"{arg}: search.bench.chaos sets max_failures and resume itself",
        )
    kills, driver_kills, seed, tolerance = (
        args.kills,
        args.driver_kills,
        args.chaos_seed,
        args.tolerance,
    )
    require(kills >= 0, f"kills={kills}: expected an integer >= 0")
    require(0 <= driver_kills <= 2, f"driver_kills={driver_kills}: expected 0, 1 or 2")
    require(seed >= 0, f"chaos_seed={seed}: expected an integer >= 0")
    require(tolerance >= 0, f"tolerance={tolerance}: expected a number >= 0")
    name = next((a.split("=", 1)[1] for a in rest if a.startswith("experiment=")), "chaos")
    results_dir = next(
        (a.split("=", 1)[1] for a in rest if a.startswith("results_dir=")), "results"
    )
    base = [a for a in rest if not a.startswith(("experiment=", "results_dir="))]
    base += [f"results_dir={results_dir}", "promote=false"]
    reference = Path(results_dir) / f"{name}-reference"
    faulted = Path(results_dir) / f"{name}-faulted"
    require(
        not faulted.exists(),
        f"{faulted} exists: a faulted run is compared from scratch; remove it or use another "
        "experiment=",
    )
    Path(results_dir).mkdir(parents=True, exist_ok=True)
    log = Path(results_dir) / f"{name}-chaos.log"
    _say(f"reference: {reference}")
    began = time.monotonic()
    ref = _start([*base, f"experiment={name}-reference"], log)
    require(ref.wait() == 0, f"the reference search failed (log: {log})")
    reference_s = round(time.monotonic() - began, 1)
    _say(f"faulted: {faulted} ({kills} worker kill(s), {driver_kills} driver kill(s))")
    faults = run_faulted(
        [*base, f"experiment={name}-faulted", f"max_failures={kills + 1}"],
        faulted,
        kills=kills,
        driver_kills=driver_kills,
        rng=random.Random(seed),
        log=log,
    )
    result = {
        "reference_s": reference_s,
        **faults,
        **compare(reference, faulted, tolerance=tolerance),
    }
    _say(
        f"{result['trials']} trial(s); injected {faults['worker_kills']} worker and "
        f"{faults['driver_kills']} driver kill(s); lost {result['lost']}; largest score "
        f"difference {result['max_score_diff']:.3g} (tolerance {tolerance:g})"
    )
    print(json.dumps(result), flush=True)
    undone = faults["worker_kills"] < kills or faults["driver_kills"] < driver_kills
    if undone:
        _say("the search finished before every fault landed: give it more epochs")
    return 1 if result["lost"] or undone else 0


if __name__ == "__main__":
    run_cli(main)
