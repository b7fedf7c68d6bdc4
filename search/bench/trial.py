"""Tune's cost: one configuration trained by plain Keras `fit`, then as one Tune trial.

    python -m search.bench.trial [search.run arguments ...]

The space must be narrowed to one grid point with overrides (see the error otherwise). Both
runs are fresh processes timed end to end, TensorFlow start-up included:

- `python -m search.bench.trial plain ...`: a Keras script on in-memory NumPy arrays (the training
  split decoded and cropped once, the validation split likewise): the same model, batch,
  epochs and seed; no checkpoints, no Ray.
- `python -m search.run ... promote=false`: Ray start, the trial with its tf.data pipeline,
  per-epoch reports and checkpoints, the leaderboard.

Prints both wall times and their ratio (target <= 1.10), and both training throughputs
(images/s over the training steps of each epoch after the first, which traces the graph and
fills the cache) and their ratio (target >= 0.90).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from data.config import offer_help, require, run_cli

__all__ = ["main", "plain_fit", "trial_images_per_s"]


def _arrays(dataset: Any) -> tuple[Any, Any]:
    import numpy as np

    pairs = [(x.numpy(), y.numpy()) for x, y in dataset]
    return np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])


def _epoch_timer() -> Any:
    import keras

    class EpochTimer(keras.callbacks.Callback):
        """Seconds of each epoch's training steps (validation excluded), as the trial's."""

        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []
            self.started = self.trained = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self.started = self.trained = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.trained = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(self.trained - self.started)

    return EpochTimer()


def plain_fit(argv: Sequence[str]) -> dict[str, Any]:
    """Train the first grid point with model.fit on in-memory arrays: seconds and images/s."""
    started = time.perf_counter()
    from search import run
    from search.sweep import config
    from search.sweep.trainable import epoch_batches, new_model, prepare_trial, val_batches

    cfg = config.resolved_config(argv)
    config.validate(cfg)
    plan, _ = run.plan_search(
        cfg, (Path(cfg["results_dir"]) / config.experiment_name(cfg)).resolve()
    )
    data = prepare_trial(plan.settings, int(plan.settings["threads"]))
    model = new_model(plan.points[0], plan.settings, data.precision, data.steps)
    images, masks = _arrays(epoch_batches(data.records, plan.settings, 0))
    timer = _epoch_timer()
    model.fit(
        images,
        masks,
        batch_size=int(plan.settings["train"]["batch_size"]),
        epochs=int(plan.points[0].get("epochs", plan.epochs)),
        validation_data=_arrays(val_batches(data.val, plan.settings)),
        shuffle=True,
        callbacks=[timer],
        verbose=0,
    )
    rates = [len(images) / s for s in timer.seconds[1:] or timer.seconds]
    return {
        "fit_s": time.perf_counter() - started,
        "images_per_s": statistics.median(rates),
        "precision": data.precision,
    }


def trial_images_per_s(experiment_dir: Path) -> float:
    """Median training images/s of the experiment's one trial, over its epochs after the first."""
    results = sorted(Path(experiment_dir, "tune").glob("*/result.json"))
    require(len(results) == 1, f"{experiment_dir}/tune: expected one trial, found {len(results)}")
    rows = [json.loads(line) for line in results[0].read_text().splitlines() if line.strip()]
    rates = [float(r["images_per_s"]) for r in rows if "images_per_s" in r]
    require(bool(rates), f"{results[0]}: no epoch reported images_per_s")
    return statistics.median(rates[1:] or rates)


def _timed(command: Sequence[str]) -> tuple[float, str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return seconds, done.stdout


def main(argv: Sequence[str]) -> int:
    if argv and argv[0] == "plain":
        print(json.dumps(plain_fit(argv[1:])))
        return 0
    from search.sweep import config, spaces

    offer_help("search.conf", "config", argv, __doc__ or "")
    cfg = config.resolved_config(argv)
    config.validate(cfg)
    points = spaces.grid_points(cfg["space"])
    require(
        len(points) == 1,
        f"the space has {len(points)} grid points: narrow it to one, e.g. "
        "space.models.unet.grid.filters=[16] space.models.unet.grid.activation=[relu] "
        "space.models.unet.grid.loss=[bce]",
    )
    name = f"bench-overhead-{int(time.time())}"
    common = [*argv, f"experiment={name}", "searcher=grid", "searcher.num_samples=1"]
    plain_s, plain_out = _timed([sys.executable, "-m", "search.bench.trial", "plain", *common])
    plain = json.loads(plain_out.strip().splitlines()[-1])
    first = points[0]
    grid = [
        f"space.models.{first['model']}.grid.{k}=[{v}]"
        for k, v in first.items()
        if k not in ("model", "epochs")
    ]
    others = [m for m in cfg["space"]["models"] if m != first["model"]]
    drop = [f"~space.models.{m}" for m in others]
    tune_s, _ = _timed(
        [sys.executable, "-m", "search.run", *common, *grid, *drop, "promote=false", "resume=never"]
    )
    experiment_dir = (Path(cfg["results_dir"]) / name).resolve()
    trial_rate = trial_images_per_s(experiment_dir)
    print(
        json.dumps(
            {
                "point": first,
                "precision": plain["precision"],
                "plain_fit_s": round(plain_s, 1),
                "tune_trial_s": round(tune_s, 1),
                "ratio": round(tune_s / plain_s, 3),
                "plain_images_per_s": round(plain["images_per_s"], 2),
                "trial_images_per_s": round(trial_rate, 2),
                "throughput_ratio": round(trial_rate / plain["images_per_s"], 3),
                "experiment": name,
            }
        )
    )
    return 0


if __name__ == "__main__":
    run_cli(main)
