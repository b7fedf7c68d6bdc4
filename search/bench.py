"""Tune's overhead: one configuration trained by plain Keras `fit`, then as one Tune trial.

    python -m search.bench [search.run arguments ...]

The space must be narrowed to one grid point with overrides (see the error otherwise). Both runs are fresh processes timed
end to end, TensorFlow start-up included: `python -m search.bench plain ...` (a Keras script:
the same model, data, epochs and seed; no checkpoints) and `python -m search.run ...
promote=false` (Ray start, the trial with per-epoch reports and checkpoints, leaderboard).
Prints both wall times and their ratio (the issue's target: <= 1.10).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from data.config import require, run_cli

__all__ = ["main", "plain_fit"]


def plain_fit(argv: Sequence[str]) -> float:
    """Train the first grid point with model.fit alone; returns the seconds it took."""
    started = time.perf_counter()
    from models import resolve_precision
    from search import run
    from search.trainable import _configure_tensorflow, _new_model, epoch_batches, open_splits

    cfg = run.plain(run.load_config(argv))
    run.validate(cfg)
    experiment_dir = (Path(cfg["results_dir"]) / run.experiment_name(cfg)).resolve()
    uri, manifest = run.prepare_shards(cfg, experiment_dir)
    plan = run.make_plan(cfg, shards=uri, class_names=manifest.class_names)
    _configure_tensorflow(int(plan.settings["threads"]))
    precision = resolve_precision(plan.settings["train"]["precision"])
    model = _new_model(plan.points[0], plan.settings, precision)
    records, val = open_splits(plan.settings)
    for epoch in range(plan.epochs):
        model.fit(
            epoch_batches(records, plan.settings, epoch),
            validation_data=val,
            initial_epoch=epoch,
            epochs=epoch + 1,
            shuffle=False,
            verbose=0,
        )
    return time.perf_counter() - started


def _timed(command: Sequence[str]) -> float:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return seconds


def main(argv: Sequence[str]) -> int:
    if argv and argv[0] == "plain":
        print(json.dumps({"fit_s": plain_fit(argv[1:])}))
        return 0
    from search import run

    cfg = run.plain(run.load_config(argv))
    run.validate(cfg)
    points = run.grid_points(cfg["space"])
    require(
        len(points) == 1,
        f"the space has {len(points)} grid points: narrow it to one, e.g. "
        "space.models.unet.grid.filters=[16] space.models.unet.grid.activation=[relu] "
        "space.models.unet.grid.loss=[bce]",
    )
    name = f"bench-overhead-{int(time.time())}"
    common = [*argv, f"experiment={name}", "searcher=grid", "searcher.num_samples=1"]
    plain_s = _timed([sys.executable, "-m", "search.bench", "plain", *common])
    first = run.grid_points(cfg["space"])[0]
    grid = [
        f"space.models.{first['model']}.grid.{k}=[{v}]" for k, v in first.items() if k != "model"
    ]
    others = [m for m in cfg["space"]["models"] if m != first["model"]]
    drop = [f"~space.models.{m}" for m in others]
    tune_s = _timed(
        [sys.executable, "-m", "search.run", *common, *grid, *drop, "promote=false", "resume=never"]
    )
    print(
        json.dumps(
            {
                "point": points[0],
                "plain_fit_s": round(plain_s, 1),
                "tune_trial_s": round(tune_s, 1),
                "ratio": round(tune_s / plain_s, 3),
                "experiment": name,
            }
        )
    )
    return 0


if __name__ == "__main__":
    run_cli(main)
