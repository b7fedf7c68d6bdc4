"""A real search (real Ray, real training) over every space, at smoke size."""

from __future__ import annotations

import csv
import json
import math
import re
import shlex
import socket
import subprocess
from pathlib import Path

import pytest
from cli_checks import run_python
from ray_cluster import read_leaderboard

PROJECT = Path(__file__).resolve().parents[2]


def run_search(results: Path, *argv: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python -m search.run` on a local Ray, writing under `results`."""
    return run_python("-m", "search.run", *argv, f"results_dir={results}", timeout=timeout)


CLASSES = ("pits", "scratches", "patches", "blobs")

# Tiny images and one epoch; the paper space cut to two losses per architecture, so each of
# the four architectures (= each space) still trains in the same Ray session.
TINY = ["preset=smoke", "dataset.num_images=48", "train.epochs=1", "promote=false"]
PAPER_CUT = [
    "space.models.unet.grid.filters=[4]",
    "space.models.unet.grid.activation=[relu]",
    "space.models.unet.grid.loss=[bce]",
    # A learning rate that makes the loss NaN: that trial must error, the search go on.
    "+space.models.unet.grid.learning_rate=[0.001,1e30]",
    "max_failures=0",
    "space.models.resunet.grid.filters=[4]",
    "space.models.resunet.grid.loss=[bce_dice]",
    "space.models.invresunet.grid.expansion=[2]",
    "space.models.invresunet.grid.loss=[bce,bce_dice]",
    "space.models.deeplabv3plus.grid.alpha=[0.1]",
    "space.models.deeplabv3plus.grid.loss=[bce]",
]
EXPECTED = [
    ("unet", "bce"),
    ("resunet", "bce_dice"),
    ("invresunet", "bce"),
    ("invresunet", "bce_dice"),
    ("deeplabv3plus", "bce"),
]


@pytest.mark.slow
def test_paper_space_smoke_search(tmp_path):
    done = run_search(tmp_path, "space=paper", "experiment=smoke", *TINY, *PAPER_CUT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    folder = tmp_path / "smoke"
    everything = read_leaderboard(folder)
    diverged = [r for r in everything if r["learning_rate"] == "1e+30"]
    rows = [r for r in everything if r not in diverged]
    assert len(diverged) == 1 and diverged[0]["status"] == "ERROR", everything
    assert "NaNLossError" in diverged[0]["error"] and diverged[0]["checkpoint"] == ""
    assert everything[-1] == diverged[0]  # unscored rows come last
    # One row per grid point of the cut grid, each architecture (each space) in it.
    assert sorted((r["model"], r["loss"]) for r in rows) == sorted(EXPECTED)
    for row in rows:
        assert row["status"] == "TERMINATED", row
        assert 0.0 <= float(row["val_kaggle_dice"]) <= 1.0
        assert row["epochs"] == "1" and int(row["params"]) > 0
        assert all(math.isfinite(float(row[f"val_dice_{c}"])) for c in CLASSES)
        assert not Path(row["checkpoint"]).is_absolute()  # the folder can move
        assert row["node"] == socket.gethostname()  # a host a person can find, not a node id
        checkpoint = folder / row["checkpoint"]
        assert (checkpoint / "model.keras").is_file()
        state = json.loads((checkpoint / "state.json").read_text())
        assert state["epoch"] == 1
        assert len(list(checkpoint.parent.glob("checkpoint_*"))) == 1  # pruned to the best
    scores = [float(r["val_kaggle_dice"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    # The run ends with the report page (promote=false: the leaderboard without final/).
    report = folder / "report.html"
    assert f"[search] report: {report}" in done.stdout, done.stdout[-2000:]
    page = report.read_text()
    assert all(r["trial_id"] in page for r in rows), "the report lists every trial"
    # Ray Train's line per checkpoint stays out of the console (the leaderboard names them).
    assert "Checkpoint successfully created" not in done.stdout + done.stderr
    assert (folder / "leaderboard.md").read_text().count("| TERMINATED |") == len(EXPECTED)
    assert "| ERROR |" in (folder / "leaderboard.md").read_text()

    experiment = json.loads((folder / "experiment.json").read_text())
    assert experiment["class_names"] == list(CLASSES)
    # The predict-nothing baseline on the same validation images, and every trial's lift.
    baseline = experiment["baseline"]
    with open(folder / "leaderboard.csv") as handle:
        (base,) = [r for r in csv.DictReader(handle) if r["status"] == "BASELINE"]
    assert float(base["val_kaggle_dice"]) == pytest.approx(baseline["kaggle_dice"])
    assert baseline["split"] == "val" and baseline["images"] > 0
    for row in rows:
        lift = float(row["val_kaggle_dice"]) - baseline["kaggle_dice"]
        assert float(row["lift"]) == pytest.approx(lift, abs=1e-4)
    from models import resolve_precision

    # precision=auto is resolved by each trial, and the leaderboard says to what.
    assert experiment["precision"] == resolve_precision("auto")
    assert {r["precision"] for r in rows} == {experiment["precision"]}
    assert "Predict-nothing baseline on the same" in (folder / "leaderboard.md").read_text()
    assert (Path(experiment["shards"]) / "manifest.json").is_file()
    # What the report's "reproduce" section shows: a command a shell can run again as it was.
    assert shlex.split(experiment["command"])[3:] == [
        "space=paper",
        "experiment=smoke",
        *TINY,
        *PAPER_CUT,
        f"results_dir={tmp_path}",
    ]
    assert {"python", "ray", "keras", "optuna", "pyarrow", "numpy"} <= set(experiment["versions"])
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", experiment["git_commit"])
    assert experiment["sittings"] == 1 and experiment["elapsed_s"] > 0
    trial_dir = (folder / rows[0]["checkpoint"]).parent
    epoch = json.loads((trial_dir / "result.json").read_text().splitlines()[0])
    for key in ("epoch", "loss", "kaggle_dice", "val_loss", "val_kaggle_dice", "epoch_s"):
        assert key in epoch
    assert epoch["images_per_s"] > 0 and all(f"val_dice_{c}" in epoch for c in CLASSES)
    # The first epoch waits at least for its first batch: measured, and a share of train_s.
    assert 0 < epoch["input_wait_s"] <= epoch["train_s"]
    assert epoch["input_wait_share"] == pytest.approx(
        epoch["input_wait_s"] / epoch["train_s"], abs=2e-3
    )
    assert all(0 <= float(r["input_wait"]) <= 1 for r in rows if r["status"] == "TERMINATED")


@pytest.mark.slow
def test_trials_train_on_jax_and_promotion_reads_their_checkpoints(tmp_path):
    """train.backend=jax: the workers run Keras on JAX; the driver (TensorFlow) promotes."""
    argv = [*TINY, "train.epochs=2", "train.backend=jax", "promote=true"]
    one_point = [
        "space.models.unet.grid.filters=[4]",
        "space.models.unet.grid.activation=[relu]",
        "space.models.unet.grid.loss=[bce,bce_dice]",
    ]
    done = run_search(tmp_path, "space=unet", "experiment=jax", *argv, *one_point)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    folder = tmp_path / "jax"
    rows = read_leaderboard(folder)
    assert len(rows) == 2 and {r["status"] for r in rows} == {"TERMINATED"}
    assert {r["backend"] for r in rows} == {"jax"}
    assert all(r["epochs"] == "2" for r in rows)
    metrics = json.loads((folder / "final" / "metrics.json").read_text())
    assert metrics["models"], "promotion scored no model"
    # The last line says what the experiment costs on disk, in all and by part.
    footprint = re.search(r"holds ([\d.]+) MiB on disk \(tune/ ([\d.]+) MiB, final/", done.stdout)
    assert footprint, done.stdout[-2000:]
    on_disk = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert float(footprint[1]) == pytest.approx(on_disk / 2**20, abs=0.1)


@pytest.mark.slow
def test_each_model_and_filters_value_gets_its_own_gpu_share(tmp_path):
    """Per-model resources on a local Ray that declares two (fake) GPUs: filters 8 takes a
    whole card, filters 4 the cluster's half; each trial reports what Ray gave it."""
    argv = [
        *TINY,
        "space.models.unet.grid.filters=[4,8]",
        "space.models.unet.grid.activation=[relu]",
        "space.models.unet.grid.loss=[bce]",
        "cluster.num_gpus=2",
        "cluster.gpus_per_trial=0.5",
        "+space.models.unet.resources={by_filters: {8: {gpus: 1}}}",
    ]
    done = run_search(tmp_path, "space=unet", "experiment=shares", *argv)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    shares = {}
    for trial in (tmp_path / "shares" / "tune").glob("unet_*"):
        first = json.loads((trial / "result.json").read_text().splitlines()[0])
        params = json.loads((trial / "params.json").read_text())
        shares[params["point"]["filters"]] = (first["gpus"], len(first["gpu_ids"].split(",")))
    assert shares == {4: (0.5, 1), 8: (1.0, 1)}
