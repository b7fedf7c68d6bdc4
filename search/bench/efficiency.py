"""Search efficiency: the full fifo grid against asha and optuna+asha on the same space.

    python -m search.bench.efficiency prefix=NAME [asha.KEY=V ...] [optuna.KEY=V ...]
        [search.run arguments ...]

Runs three searches with the same space, dataset, training settings and seed (the search.run
arguments), each in its own experiment (`promote=false`):

- `NAME`: `searcher=grid scheduler=fifo`, every grid point for every epoch (the reference);
- `NAME-asha`: `searcher=grid scheduler=asha`;
- `NAME-optuna-asha`: `searcher=optuna scheduler=asha`, `searcher.num_samples` = the grid
  size unless `optuna.num_samples=N` says otherwise.

`asha.KEY=V` goes to both asha runs as `scheduler.KEY=V`, `optuna.KEY=V` to the Optuna run
as `searcher.KEY=V`. A finished experiment is not rerun (search.run resumes it, a no-op), so
the reference grid may be a real run made before with the same arguments and `experiment=NAME`.

Reads each leaderboard.csv and prints, per search: trials, trial-epochs (the sum over trials
of the epochs each ran), the best validation kaggle_dice, the summed trial seconds and the
command's wall seconds (a no-op for a reused grid); then the ratios
against the grid and whether the issue's target holds (best Dice within 0.01 of the grid's,
at most 40% of its trial-epochs). The last line is JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import MISSING

from data.config import (
    ConfigError,
    HelpRequested,
    compose_help,
    compose_schema,
    help_requested,
    own_arguments,
    require,
    run_cli,
)
from search.records import read_leaderboard

__all__ = ["main", "summarise"]

DICE_TOLERANCE = 0.01
EPOCH_FRACTION = 0.40
_RESERVED = ("experiment=", "searcher=", "scheduler=", "promote=", "resume=")


def summarise(leaderboard_csv: str | Path) -> dict[str, Any]:
    """Trials, trial-epochs and best val_kaggle_dice of one finished search's leaderboard."""
    path = Path(leaderboard_csv)
    require(path.is_file(), f"{path}: no leaderboard (did the search run?)")
    rows = [r for r in read_leaderboard(path) if not r.is_baseline]
    require(rows, f"{path}: the leaderboard has no trial")
    epochs = 0
    trial_s = 0.0
    for number, row in enumerate(rows, start=2):
        value = row.cells.get("epochs")
        if not isinstance(value, int | None):
            raise ConfigError(f"{path} line {number}: epochs={value!r} is not a whole number")
        epochs += value or 0
        trial_s += float(row.cells.get("wall_s") or 0.0)
    scores = [r.score for r in rows if r.score is not None]
    statuses = sorted({row.status for row in rows})
    return {
        "trials": len(rows),
        "trial_epochs": epochs,
        "best_val_kaggle_dice": round(max(scores), 4) if scores else None,
        "trial_s": round(trial_s, 1),
        "statuses": statuses,
    }


def _search(args: Sequence[str], results_dir: Path, name: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "search.run", *args, f"experiment={name}", "promote=false"]
    print("$ " + " ".join(command[1:]), flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"search {name} failed (exit {done.returncode})")
    summary = summarise(results_dir / name / "leaderboard.csv")
    summary["wall_s"] = round(seconds, 1)  # this call's: a finished leg is only read back
    return summary


@dataclass
class EfficiencyConfig:
    """search.bench.efficiency's own key; asha.KEY=V and optuna.KEY=V go to the schedulers,
    everything else to search.run."""

    prefix: str = MISSING  # names the three experiments: NAME, NAME-asha, NAME-optuna-asha


def _split(argv: Sequence[str]) -> tuple[str, list[str], list[str], list[str]]:
    own, rest = own_arguments(EfficiencyConfig, argv)
    prefix = compose_schema(EfficiencyConfig, own, __doc__ or "").prefix
    asha = ["scheduler." + a[len("asha.") :] for a in rest if a.startswith("asha.")]
    optuna = ["searcher." + a[len("optuna.") :] for a in rest if a.startswith("optuna.")]
    common = [a for a in rest if not a.startswith(("asha.", "optuna."))]
    for arg in common:
        require(
            not arg.startswith(_RESERVED),
            f"{arg!r}: the benchmark sets {', '.join(k[:-1] for k in _RESERVED)} itself",
        )
    require(bool(prefix), "prefix=: expected a name (it names the three experiments)")
    return prefix, common, asha, optuna


def compare(runs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Each non-grid search's Dice gap and epoch fraction against the grid, and the target."""
    grid = runs["fifo-grid"]
    out: dict[str, Any] = {}
    for label, summary in runs.items():
        if label == "fifo-grid":
            continue
        gap = grid["best_val_kaggle_dice"] - (summary["best_val_kaggle_dice"] or 0.0)
        fraction = summary["trial_epochs"] / grid["trial_epochs"]
        out[label] = {
            "dice_gap": round(gap, 4),
            "epoch_fraction": round(fraction, 3),
            "meets_target": bool(gap <= DICE_TOLERANCE and fraction <= EPOCH_FRACTION),
        }
    return out


def main(argv: Sequence[str]) -> int:
    from search.sweep import config, spaces

    if help_requested(argv):
        usage = (__doc__ or "") + "\nThe search.run arguments (python -m search.run --help):"
        raise HelpRequested(compose_help("search.conf", "config", argv, usage))
    prefix, common, asha, optuna = _split(argv)
    cfg = config.resolved_config([*common, "searcher=grid", "scheduler=fifo"])
    config.validate(cfg)
    config.experiment_name({**cfg, "experiment": prefix})  # the name must be a folder name
    grid_size = len(spaces.grid_points(cfg["space"]))
    if not any(a.startswith("searcher.num_samples=") for a in optuna):
        optuna.append(f"searcher.num_samples={grid_size}")
    results_dir = Path(cfg["results_dir"])
    runs = {
        "fifo-grid": _search([*common, "searcher=grid", "scheduler=fifo"], results_dir, prefix),
        "asha-grid": _search(
            [*common, "searcher=grid", "scheduler=asha", *asha], results_dir, f"{prefix}-asha"
        ),
        "optuna-asha": _search(
            [*common, "searcher=optuna", "scheduler=asha", *asha, *optuna],
            results_dir,
            f"{prefix}-optuna-asha",
        ),
    }
    print(
        f"{'search':<12} {'trials':>6} {'trial-epochs':>12} {'best val Dice':>13} "
        f"{'trial s':>8} {'call s':>8}"
    )
    for label, s in runs.items():
        print(
            f"{label:<12} {s['trials']:>6} {s['trial_epochs']:>12} "
            f"{s['best_val_kaggle_dice']!s:>13} {s['trial_s']:>8} {s['wall_s']:>8}"
        )
    print(
        "trial s: the trials' own seconds, summed; call s: this command's seconds for the leg "
        "(a leg finished by an earlier call is only resumed and read back)"
    )
    verdict = compare(runs)
    for label, v in verdict.items():
        gap = v["dice_gap"]
        side = f"{gap:.4f} below" if gap >= 0 else f"{-gap:.4f} above"
        print(
            f"{label}: {v['epoch_fraction']:.1%} of the grid's trial-epochs, best Dice "
            f"{side} the grid's; target {'met' if v['meets_target'] else 'MISSED'}"
        )
    print(json.dumps({"grid_points": grid_size, "runs": runs, "against_grid": verdict}))
    return 0


if __name__ == "__main__":
    run_cli(main)
