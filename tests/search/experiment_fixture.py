"""A small real experiment folder, laid out exactly as the search writes one.

Real NEU-Seg images (a few per published split) -> `data.prepare` shards -> three tiny real
models from `models.build_model`, each trained two short epochs with Keras -> checkpoints
(`model.keras` + `state.json`), Ray-style trial folders with `progress.csv`, `experiment.json`
and `leaderboard.csv`, plus one errored trial. Nothing is mocked; only Ray itself is skipped,
because promotion and reports read the files a search leaves behind, not Ray.

Building it costs some seconds of CPU, so it is built once per test session (and promoted once)
and tests that change it work on a copy.
"""

from __future__ import annotations

import csv
import functools
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

IMAGES_PER_SPLIT = {"train": 8, "val": 8, "test": 8}
EPOCHS = 2
# (trial_id, architecture, hyperparameters, loss): the search's trial ids are <run>_<index>.
TRIALS: tuple[tuple[str, str, dict[str, Any], str], ...] = (
    ("f00d1_00000", "unet", {"filters": 8, "activation": "relu", "depth": 2}, "bce"),
    ("f00d1_00001", "unet", {"filters": 8, "activation": "leaky_relu", "depth": 2}, "bce_dice"),
    ("f00d1_00002", "resunet", {"filters": 8, "activation": "relu", "depth": 2}, "bce"),
)
ERRORED_TRIAL = "f00d1_00003"
HPARAM_COLUMNS = ("filters", "activation", "depth")


def copy_neu_seg_subset(neu_seg: Path, root: Path) -> Path:
    """The first few images of each NEU-Seg split, with their masks, in NEU-Seg's layout."""
    for split, count in IMAGES_PER_SPLIT.items():
        images = sorted((neu_seg / "img_dir" / split).glob("*.jpg"))[:count]
        for image in images:
            for kind, suffix in (("img_dir", ".jpg"), ("ann_dir", ".png")):
                target = root / kind / split
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(neu_seg / kind / split / (image.stem + suffix), target)
    return root


def prepare_shards(dataset_root: Path, out: Path) -> Any:
    from data.config import compose
    from data.prepare import prepare

    cfg = compose("data.conf", "prepare", ["dataset=neu-seg", f"dataset.root={dataset_root}"])
    return prepare(cfg.dataset, out=str(out))


def train_trial(
    uri: str, architecture: str, hparams: dict[str, Any], loss: str, *, num_classes: int, seed: int
) -> tuple[Any, list[dict[str, float]], float]:
    """A real model trained EPOCHS short epochs; returns (model, per-epoch metrics, seconds)."""
    import keras

    import models
    from data.reader import make_dataset
    from models.losses import get_loss
    from models.metrics import KaggleDice

    keras.utils.set_random_seed(seed)
    # A zero-bias head (output_prior=0.5): two short epochs on eight images must leave
    # models that predict some defect pixels, or the prediction round trips prove little.
    # The default prior (0.01) starts them at "no defect", where so few steps leave them.
    model = models.build_model(
        architecture,
        input_shape=(None, None, 1),
        num_classes=num_classes,
        output_prior=0.5,
        **hparams,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3), loss=get_loss(loss), metrics=[KaggleDice()]
    )
    train = make_dataset(uri, "train", batch_size=4, deterministic=True)
    val = make_dataset(uri, "val", batch_size=8, deterministic=True)
    started = time.perf_counter()
    history = model.fit(train, validation_data=val, epochs=EPOCHS, verbose=0, shuffle=False).history
    seconds = time.perf_counter() - started
    epochs = [
        {key: float(values[e]) for key, values in history.items()} | {"epoch": e + 1}
        for e in range(EPOCHS)
    ]
    return model, epochs, seconds


def _write_progress(trial_dir: Path, trial_id: str, epochs: list[dict[str, float]]) -> None:
    columns = ["epoch", "loss", "kaggle_dice", "val_loss", "val_kaggle_dice", "trial_id"]
    with (trial_dir / "progress.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*columns, "training_iteration"])
        writer.writeheader()
        for record in epochs:
            row = {c: record.get(c) for c in columns[:-1]}
            writer.writerow({**row, "trial_id": trial_id, "training_iteration": record["epoch"]})


def build_experiment(folder: Path, neu_seg: Path) -> Path:
    """results/<experiment>/ with shards, three finished trials and one errored trial."""
    from data.shards import read_manifest

    folder.mkdir(parents=True)
    shards = folder.parent / f"{folder.name}-shards"
    prepare_shards(copy_neu_seg_subset(neu_seg, folder.parent / "neu-seg-subset"), shards)
    from data.stats import empty_prediction_score
    from search.sweep.leaderboard import baseline_row

    manifest = read_manifest(str(shards))
    classes = list(manifest.class_names)
    baseline = empty_prediction_score(str(shards), "val")
    (folder / "experiment.json").write_text(
        json.dumps(
            {
                "experiment": folder.name,
                "dataset": {"name": "neu-seg"},
                "shards": str(shards),
                "class_names": classes,
                "seed": 0,
                "baseline": baseline,
            }
        )
    )
    rows = []
    for index, (trial_id, arch, hparams, loss) in enumerate(TRIALS):
        model, epochs, seconds = train_trial(
            str(shards), arch, hparams, loss, num_classes=len(classes), seed=index
        )
        trial_dir = folder / "tune" / f"train_{trial_id}_{index}_model={arch}"
        checkpoint = trial_dir / f"checkpoint_{EPOCHS - 1:06d}"
        checkpoint.mkdir(parents=True)
        model.save(checkpoint / "model.keras")
        best = max(epochs, key=lambda e: e["val_kaggle_dice"])
        (checkpoint / "state.json").write_text(json.dumps({"epoch": EPOCHS, "metrics": best}))
        _write_progress(trial_dir, trial_id, epochs)
        rows.append(
            {
                "trial_id": trial_id,
                "status": "TERMINATED",
                "model": arch,
                **hparams,
                "loss": loss,
                "val_kaggle_dice": best["val_kaggle_dice"],
                "lift": best["val_kaggle_dice"] - baseline["kaggle_dice"],
                "best_epoch": best["epoch"],
                "epochs": EPOCHS,
                "params": model.count_params(),
                "wall_s": round(seconds + 1.0, 2),
                "device_s": round(seconds, 2),
                "checkpoint": str(checkpoint.resolve()),
                "error": "",
            }
        )
    rows.append(
        {
            **{k: "" for k in rows[0]},
            "trial_id": ERRORED_TRIAL,
            "status": "ERROR",
            "model": "unet",
            **TRIALS[0][2],
            "loss": "dice",
            "epochs": 1,
            "wall_s": 3.0,
            "device_s": 2.5,
            "error": "loss became NaN at epoch 1",
        }
    )
    nothing = baseline_row(baseline, classes)
    rows.append({k: nothing.get(k, "") for k in rows[0]})
    with (folder / "leaderboard.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return folder


@functools.cache
def promoted_experiment(base: Path, neu_seg: Path) -> Path:
    """Built and promoted once per session (base = the session's temporary folder)."""
    from search.promote import promote

    folder = build_experiment(base / "results" / "neu_tiny", neu_seg)
    promote(folder, top_k=2, tta=False, batch_size=4, progress=False)
    return folder


def copy_experiment(source: Path, target: Path) -> Path:
    """A private copy whose leaderboard points at its own checkpoints."""
    shutil.copytree(source, target)
    board = target / "leaderboard.csv"
    board.write_text(board.read_text().replace(str(source.resolve()), str(target.resolve())))
    return target


def kaggle_dice(truth: np.ndarray, pred: np.ndarray) -> float:
    """The Kaggle metric straight from its definition, as an independent check."""
    inter = (truth & pred).sum(axis=(1, 2))
    total = truth.sum(axis=(1, 2)) + pred.sum(axis=(1, 2))
    return float(np.where(total > 0, 2 * inter / np.maximum(total, 1), 1.0).mean())


LEADERBOARD_COLUMNS = [
    "trial_id",
    "status",
    "model",
    "filters",
    "loss",
    "val_kaggle_dice",
    "checkpoint",
]


def write_leaderboard(folder: Path, rows: list[dict]) -> None:
    """A hand-made leaderboard.csv (and an experiment.json naming shards) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "leaderboard.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=LEADERBOARD_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    (folder / "experiment.json").write_text(json.dumps({"shards": str(folder / "shards")}))


def trial_row(
    trial: str, model: str, dice: float | str, status: str = "TERMINATED", ckpt: str = "x"
):
    return {
        "trial_id": trial,
        "status": status,
        "model": model,
        "filters": 8,
        "loss": "bce",
        "val_kaggle_dice": dice,
        "checkpoint": f"/ckpt/{trial}" if ckpt == "x" else ckpt,
    }


def read_rows(folder: Path, rows: list[dict]) -> list:
    """Rows as the leaderboard file holds them, read back through search.records."""
    from search.records import read_leaderboard

    write_leaderboard(folder, rows)
    return read_leaderboard(folder)
