"""data.sources.severstal_sim: Severstal's counts and real masks at full scale, painted steel."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from data import rle
from data.datasets import severstal_sim_config, split_config
from data.prepare import prepare
from data.sources import Problems, SourceError, scan_source
from data.sources.severstal_sim import HEIGHT, WIDTH, render_sim, sim_test_entries
from data.stats import main as stats_main
from data.stats import shard_stats, stats_from_rles

CLASSES = ["1", "2", "3", "4"]


@pytest.fixture(scope="module")
def scan(severstal_labels: Path):
    return scan_source(severstal_sim_config(severstal_labels), Problems("raise"))


def test_the_stand_in_has_severstals_image_counts(scan) -> None:
    # The paper's dataset figures (../shared/data/SOURCES.md), exactly.
    stats = stats_from_rles([e.rles for e in scan.entries], CLASSES)
    assert (stats["images"], stats["defective"], stats["clean"]) == (12568, 6666, 5902)
    assert stats["images_per_class"] == {"1": 897, "2": 247, "3": 5150, "4": 801}
    assert stats["images_with_n_classes"]["1"] == 6239
    assert {(e.height, e.width) for e in scan.entries} == {(256, 1600)}


def test_every_image_keeps_its_real_class_set_and_labelled_ones_their_real_masks(
    scan, severstal_labels: Path
) -> None:
    with (severstal_labels / "defect_flags_12568.csv").open(newline="") as handle:
        flags = {
            r[0]: [k for k in range(4) if r[k + 1] == "1"] for r in list(csv.reader(handle))[1:]
        }
    real: dict[str, list[str]] = {}
    with (severstal_labels / "train_7179_old_format.csv").open(newline="") as handle:
        for key, encoded in list(csv.reader(handle))[1:]:
            image, _, k = key.rpartition("_")
            real.setdefault(image, [""] * 4)[int(k) - 1] = encoded
    by_source = {e.image_id.removeprefix("sim-").removesuffix(".png"): e for e in scan.entries}
    for image_id, classes in flags.items():
        entry = by_source[Path(image_id).stem]
        assert [k for k, r in enumerate(entry.rles) if r] == classes, image_id
        if image_id in real:
            assert list(entry.rles) == real[image_id], image_id
    # The 5,389 images the labels file lacks take resampled masks: 6,666 - 4,379 defective.
    resampled = [e for i, e in by_source.items() if f"{i}.jpg" not in real and any(e.rles)]
    assert len(resampled) == 6666 - sum(1 for r in real.values() if any(r))


def test_scan_is_deterministic_and_the_seed_changes_the_resampling(severstal_labels: Path) -> None:
    first = scan_source(severstal_sim_config(severstal_labels), Problems("raise"))
    again = scan_source(severstal_sim_config(severstal_labels), Problems("raise"))
    other = scan_source(severstal_sim_config(severstal_labels, seed=1), Problems("raise"))
    assert [e.rles for e in first.entries] == [e.rles for e in again.entries]
    assert first.fingerprint.digest() == again.fingerprint.digest()
    assert [e.rles for e in first.entries] != [e.rles for e in other.entries]
    assert first.fingerprint.digest() != other.fingerprint.digest()


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_each_class_is_painted_inside_its_mask_only(scan, k: int) -> None:
    entry = next(e for e in scan.entries if [c for c, r in enumerate(e.rles) if r] == [k])
    pixels = entry.load()
    assert pixels.shape == (HEIGHT, WIDTH) and pixels.dtype == np.uint8
    assert np.array_equal(pixels, entry.load())  # deterministic
    # The same image with no masks: the same steel and blemishes, nothing painted.
    bare = render_sim(0, entry.image_id, ("",) * 4).astype(np.int16)
    inside = rle.decode(entry.rles[k], HEIGHT, WIDTH)
    change = np.abs(pixels.astype(np.int16) - bare)
    far = ~_dilate(inside, 3)
    assert change[inside].mean() > 8.0, f"class {k + 1} barely shows"
    # Outside the mask (and its 3-pixel soft edge) nothing changes, but where an off-strip
    # band may fall differently (at most 400 columns of one side).
    assert (change[far] == 0).mean() > 0.7


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    grown = mask.copy()
    for axis in (0, 1):
        for shift in range(1, radius + 1):
            grown |= np.roll(grown, shift, axis) | np.roll(grown, -shift, axis)
    return grown


def test_test_images_are_unlabelled_kaggle_count_with_the_training_distribution(
    severstal_labels: Path,
) -> None:
    entries = sim_test_entries(severstal_sim_config(severstal_labels), count=2000)
    assert len({e.image_id for e in entries}) == 2000
    stats = stats_from_rles([e.rles for e in entries], CLASSES)
    # 53.0% of the training images are defective; a 2,000-image draw is within 4 points.
    assert abs(stats["defective"] / 2000 - 6666 / 12568) < 0.04
    assert all(e.image_id.startswith("simtest-") for e in entries)


def test_a_slice_prepares_and_data_stats_reads_it(
    severstal_labels: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    split = split_config(seed=42, test_fraction=0.25, val_fraction=0.25, keep_clean=False)
    cfg = severstal_sim_config(severstal_labels, max_images=24, split=split)
    manifest = prepare(cfg, out=str(tmp_path), workers=2)
    assert manifest.image_shape == (256, 1600) and manifest.name == "severstal-sim"
    figures = shard_stats(str(tmp_path))
    assert figures["source"]["images"] == 24
    # Train holds defective images only; val and test keep clean ones in their proportion.
    assert figures["train"]["clean"] == 0
    for name in ("val", "test"):
        assert figures[name]["clean"] >= 1, name
    assert stats_main([f"shards={tmp_path}"]) == 0
    assert "images 24" in capsys.readouterr().out


def test_bad_class_names_and_missing_files_are_named(
    severstal_labels: Path, tmp_path: Path
) -> None:
    cfg = severstal_sim_config(severstal_labels) | {"class_names": ["a", "b", "c", "d"]}
    with pytest.raises(SourceError, match=r"dataset.class_names=\['a', 'b', 'c', 'd'\]"):
        scan_source(cfg, Problems("raise"))
    with pytest.raises(SourceError, match=rf"{tmp_path}/train_7179_old_format.csv: not found"):
        scan_source(severstal_sim_config(tmp_path), Problems("raise"))


def test_sim_images_writes_pngs_and_a_hidden_solution_and_refuses_to_overwrite(
    severstal_labels: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from data.config import run_cli
    from data.images import read_grey
    from data.sim_images import main as sim_main

    args = [f"out={tmp_path}", "count=5", f"root={severstal_labels}", "workers=1"]
    with pytest.raises(SystemExit) as done:
        run_cli(sim_main, args)
    assert done.value.code == 0 and "5 images" in capsys.readouterr().out
    images = sorted((tmp_path / "test_images").iterdir())
    assert [p.name for p in images] == [f"simtest-{i:05d}.png" for i in range(5)]
    entries = sim_test_entries(severstal_sim_config(severstal_labels), count=5)
    assert np.array_equal(read_grey(images[3]), entries[3].load())  # lossless
    with (tmp_path / "solution.csv").open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["ImageId_ClassId", "EncodedPixels"] and len(rows) == 1 + 5 * 4
    assert rows[1 + 4 * 3 + 2] == [f"{entries[3].image_id}_3", entries[3].rles[2]]
    with pytest.raises(SystemExit) as done:
        run_cli(sim_main, args)
    assert done.value.code == 2 and "already holds solution.csv" in capsys.readouterr().err
