"""A user's own dataset, end to end with the documented commands alone: one folder per class
with 0/255 masks beside the images, a clean folder, 160 images in over 60 sizes, 5 classes.
prepare -> search (one trial, real Ray) -> promote -> predict -> report."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from cli_checks import run_python
from PIL import Image

from data import rle

PROJECT = Path(__file__).resolve().parents[2]
CLASSES = ("crazing", "inclusion", "patches", "pitted", "scratches")
PER_CLASS = 28
CLEAN = 20


def _build(root: Path) -> dict[str, tuple[int, int]]:
    """The tree: defects/<class>/x.jpg with x.png (0/255) beside it, ok/ for clean images."""
    rng = np.random.default_rng(7)
    sizes: dict[str, tuple[int, int]] = {}
    index = 0
    for class_id, name in enumerate((*CLASSES, None)):
        folder = root / ("ok" if name is None else f"defects/{name}")
        folder.mkdir(parents=True)
        for i in range(CLEAN if name is None else PER_CLASS):
            # Heights 40..79 and widths 48..131 by a stride that repeats rarely: > 60 sizes.
            height, width = 40 + (index * 7) % 40, 48 + (index * 11) % 84
            index += 1
            pixels = rng.normal(110, 12, (height, width)).clip(0, 255)
            mask = np.zeros((height, width), np.uint8)
            if name is not None:  # a bright patch whose brightness encodes the class
                top, left = rng.integers(0, height - 16), rng.integers(0, width - 16)
                mask[top : top + 12, left : left + 14] = 255
                pixels[mask > 0] = 150 + 20 * class_id
            Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{folder.name}_{i}.jpg")
            if name is not None:
                Image.fromarray(mask).save(folder / f"{folder.name}_{i}.png")
            sizes[f"{folder.name}_{i}.jpg"] = (height, width)
    return sizes


def _run(*argv: str, timeout: float = 900) -> subprocess.CompletedProcess:
    done = run_python("-m", *argv, timeout=timeout)
    assert done.returncode == 0, f"{argv[0]}: {done.stdout[-3000:]}{done.stderr[-3000:]}"
    return done


@pytest.mark.slow
def test_a_class_folder_dataset_of_many_sizes_goes_through_every_command(tmp_path: Path) -> None:
    root = tmp_path / "mydefects"
    sizes = _build(root)
    assert len(sizes) >= 150 and len(set(sizes.values())) >= 60
    dataset = [
        "dataset=folder",
        f"dataset.root={root}",
        "dataset.layout=class_dirs",
        "+dataset.class_dirs={" + ", ".join(f"{c}: defects/{c}" for c in CLASSES) + "}",
        "dataset.clean_dirs=[ok]",
        "dataset.image_suffixes=[.jpg]",
    ]
    shards = tmp_path / "shards"
    _run("data.prepare", *dataset, f"out={shards}")
    manifest = json.loads((shards / "manifest.json").read_text())
    assert manifest["class_names"] == list(CLASSES)

    results = tmp_path / "results"
    _run(
        "search.run",
        "space=unet",
        *dataset,
        f"shards={shards}",
        "experiment=mine",
        f"results_dir={results}",
        "space.models.unet.grid.filters=[4]",
        "space.models.unet.grid.activation=[relu]",
        "space.models.unet.grid.loss=[bce_dice]",
        "+train.model_defaults.depth=2",
        "train.epochs=2",
        "train.batch_size=8",
        "train.crop=[32,32]",  # the smallest image is 40x48; validation sees whole images
        "console_interval_s=0",
    )
    folder = results / "mine"
    with open(folder / "leaderboard.csv") as handle:
        rows = list(csv.DictReader(handle))
    (trial,) = [r for r in rows if r["status"] != "BASELINE"]
    assert trial["status"] == "TERMINATED", trial
    assert 0.0 <= float(trial["val_kaggle_dice"]) <= 1.0
    metrics = json.loads((folder / "final" / "metrics.json").read_text())
    assert metrics["splits"]["val"] > 0 and metrics["splits"]["test"] > 0
    for split in ("val", "test"):
        assert 0.0 <= metrics["baseline"][split]["kaggle_dice"] <= 1.0
    assert set(metrics["models"][0]["test"]["raw"]["per_class"]) == set(CLASSES)
    with np.load(folder / "final" / "overlays.npz") as overlays:
        assert len({tuple(s) for s in overlays["size"]}) > 1  # the overlays differ in size

    images = tmp_path / "to_predict"
    images.mkdir()
    chosen = sorted(sizes)[::20]
    for name in chosen:
        source = next(root.rglob(name))
        (images / name).write_bytes(source.read_bytes())
    submission = tmp_path / "submission.csv"
    _run("search.predict", f"model={folder / 'final'}", f"images={images}", f"out={submission}")
    with open(submission) as handle:
        predicted = list(csv.DictReader(handle))
    assert len(predicted) == len(chosen) * len(CLASSES)
    for row in predicted:
        name, class_id = row["ImageId_ClassId"].rsplit("_", 1)
        assert 1 <= int(class_id) <= len(CLASSES)
        height, width = sizes[name]
        assert rle.decode(row["EncodedPixels"], height, width).shape == (height, width)

    _run("search.report", "experiment=mine", f"results_dir={results}")
    html = (folder / "report.html").read_text()
    assert "Predictions on test images" in html and "mine" in html
