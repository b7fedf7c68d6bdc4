"""dataset.layout=class_dirs: one folder per class with binary (0/255) masks, clean folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data import rle
from data.config import ConfigError, compose
from data.prepare import prepare
from data.shards import iter_split_tables, read_manifest
from data.sources import Problems, SourceError, scan_source

CLASSES = {"crazing": "defects/crazing", "pitted": "defects/pitted"}


def _image(path: Path, height: int, width: int, seed: int) -> None:
    pixels = np.random.default_rng(seed).integers(0, 255, (height, width), np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def _mask(path: Path, height: int, width: int, box: tuple[int, int, int, int] | None) -> None:
    mask = np.zeros((height, width), np.uint8)
    if box:
        top, left, bottom, right = box
        mask[top:bottom, left:right] = 255  # 0/255, as such datasets ship them
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask).save(path)


def build_tree(root: Path, *, per_class: int = 6, mask_dir_suffix: str | None = None) -> dict:
    """Two class folders and a clean one, every image its own size; {image_id: (class, box)}."""
    truth = {}
    sizes = iter((40 + i, 52 + 3 * i) for i in range(100))
    for class_id, (name, rel) in enumerate(CLASSES.items(), start=1):
        for i in range(per_class):
            height, width = next(sizes)
            stem = f"{name}_{i}"
            _image(root / rel / f"{stem}.jpg", height, width, seed=class_id * 100 + i)
            masks = root / (rel + mask_dir_suffix if mask_dir_suffix else rel)
            box = (3 + i, 4, 12 + i, 20)
            _mask(masks / f"{stem}.png", height, width, box)
            truth[f"{rel}/{stem}.jpg"] = (class_id, box, (height, width))
    for i in range(3):
        height, width = next(sizes)
        _image(root / "ok" / f"clean_{i}.jpg", height, width, seed=900 + i)
        if i == 0:  # a clean image may come with an (empty) mask, or none
            _mask(root / "ok" / f"clean_{i}.png", height, width, None)
        truth[f"ok/clean_{i}.jpg"] = (0, None, (height, width))
    return truth


def _cfg(root: Path, **extra: object) -> dict:
    cfg = compose(
        "data.conf",
        "prepare",
        [
            "dataset=folder",
            f"dataset.root={root}",
            "dataset.layout=class_dirs",
            "+dataset.class_dirs={crazing: defects/crazing, pitted: defects/pitted}",
            "dataset.clean_dirs=[ok]",
            "dataset.image_suffixes=[.jpg]",
            "dataset.split.keep_clean=true",
            *(f"dataset.{k}={v}" for k, v in extra.items()),
        ],
    ).dataset
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.parametrize("mask_dir_suffix", [None, "_masks"])
def test_each_folder_is_a_class_and_any_nonzero_mask_value_is_it(
    tmp_path: Path, mask_dir_suffix: str | None
) -> None:
    root = tmp_path / "data"
    truth = build_tree(root, mask_dir_suffix=mask_dir_suffix)
    extra = {"mask_dir_suffix": mask_dir_suffix} if mask_dir_suffix else {}
    manifest = prepare(_cfg(root, **extra), out=str(tmp_path / "shards"))
    assert manifest.class_names == ("crazing", "pitted")
    assert manifest.image_shape is None  # every image its own size
    seen = {}
    for split in manifest.splits:
        for table in iter_split_tables(read_manifest(str(tmp_path / "shards")), split):
            for row in table.to_pylist():
                seen[row["image_id"]] = row
    assert set(seen) == set(truth)
    for image_id, (class_id, box, (height, width)) in truth.items():
        row = seen[image_id]
        assert (row["height"], row["width"]) == (height, width)
        for k, text in enumerate(row["rles"], start=1):
            expected = np.zeros((height, width), bool)
            if k == class_id:
                top, left, bottom, right = box
                expected[top:bottom, left:right] = True
            np.testing.assert_array_equal(rle.decode(text, height, width), expected)


def test_an_image_in_two_class_folders_is_named_with_both(tmp_path: Path) -> None:
    root = tmp_path / "data"
    build_tree(root)
    _image(root / "defects/pitted/crazing_0.jpg", 40, 52, seed=1)
    _mask(root / "defects/pitted/crazing_0.png", 40, 52, (1, 1, 5, 5))
    with pytest.raises(SourceError) as error:
        scan_source(_cfg(root), Problems("raise"))
    message = str(error.value)
    assert "crazing_0.jpg is in two class folders" in message
    assert "defects/crazing/crazing_0.jpg" in message and "defects/pitted/crazing_0.jpg" in message


def test_a_clean_folders_mask_with_defect_pixels_is_named(tmp_path: Path) -> None:
    root = tmp_path / "data"
    build_tree(root)
    width, height = Image.open(root / "ok" / "clean_1.jpg").size
    _mask(root / "ok" / "clean_1.png", height, width, (0, 0, 4, 4))
    with pytest.raises(SourceError, match=r"ok/clean_1.png: a clean folder's mask marks 16"):
        scan_source(_cfg(root), Problems("raise"))


def test_misconfigured_class_dirs_fail_with_the_key(tmp_path: Path) -> None:
    root = tmp_path / "data"
    build_tree(root)
    with pytest.raises(SourceError, match=r"include the mask suffix '.png' while masks sit"):
        scan_source(_cfg(root, image_suffixes="[.jpg,.png]"), Problems("raise"))
    with pytest.raises(ConfigError, match=r"class_names=\['a', 'b'\] differs from"):
        prepare(_cfg(root, class_names="[a,b]"), out=str(tmp_path / "shards"))
    with pytest.raises(SourceError, match=r"no mask file .*crazing_2.png"):
        (root / "defects/crazing/crazing_2.png").unlink()
        scan_source(_cfg(root), Problems("raise"))
