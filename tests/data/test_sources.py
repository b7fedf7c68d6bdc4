"""Source adapters on real data, and every bad input of issue 2 with a check of its message."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data import rle
from data.datasets import folder_config, neu_seg_config, severstal_config
from data.images import ImageError, read_grey
from data.prepare import prepare
from data.sources import Problems, SourceError, scan_source
from data.sources.synthetic import render

H, W = 256, 1600


def sample_rows(sample: Path) -> dict[tuple[str, int], str]:
    with (sample / "train.csv").open(newline="") as handle:
        return {
            (r["ImageId"], int(r["ClassId"])): r["EncodedPixels"] for r in csv.DictReader(handle)
        }


def write_old_layout(path: Path, images: list[str], rows: dict[tuple[str, int], str]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ImageId_ClassId", "EncodedPixels"])
        for image in images:
            for k in range(1, 5):
                writer.writerow([f"{image}_{k}", rows.get((image, k), "")])


def write_new_layout(path: Path, rows: list[tuple[str, int, str]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ImageId", "ClassId", "EncodedPixels"])
        writer.writerows(rows)


def small_copy(sample: Path, root: Path, count: int = 3) -> list[str]:
    """A Kaggle folder with `count` real sample images, defective first, and their rows."""
    rows = sample_rows(sample)
    names = sorted({image for image, _ in rows})[:count]
    (root / "train_images").mkdir(parents=True)
    for name in names:
        shutil.copy(sample / "train_images" / name, root / "train_images" / name)
    write_new_layout(
        root / "train.csv", [(i, k, v) for (i, k), v in sorted(rows.items()) if i in names]
    )
    return names


def masks_by_image(cfg: dict) -> dict[str, list[str]]:
    return {e.image_id: list(e.rles) for e in scan_source(cfg, Problems("raise")).entries}


def test_severstal_sample_in_both_csv_layouts_gives_the_same_masks(
    severstal_sample: Path, tmp_path: Path
) -> None:
    rows = sample_rows(severstal_sample)
    new = masks_by_image(severstal_config(severstal_sample))
    assert len(new) == 22
    # Every labelled (image, class) pair comes through unchanged; all other pairs are empty.
    for (image, k), text in rows.items():
        assert new[image][k - 1] == text
    assert sum(bool(s) for masks in new.values() for s in masks) == len(rows)
    old_root = tmp_path / "old"
    old_root.mkdir()
    (old_root / "train_images").symlink_to(severstal_sample / "train_images")
    write_old_layout(old_root / "train.csv", sorted(new), rows)
    assert masks_by_image(severstal_config(old_root)) == new


def test_severstal_images_decode_to_the_jpeg_grey_channel(severstal_sample: Path) -> None:
    entry = scan_source(severstal_config(severstal_sample), Problems("raise")).entries[0]
    with Image.open(severstal_sample / "train_images" / entry.image_id) as image:
        channels = np.asarray(image)
    assert channels.shape == (H, W, 3)
    np.testing.assert_array_equal(entry.load(), channels[..., 0])


def test_neu_seg_folder_masks_match_the_label_pngs(neu_seg: Path) -> None:
    entries = scan_source(neu_seg_config(neu_seg), Problems("raise")).entries
    assert {e.subset for e in entries} == {"train", "val", "test"}
    assert len(entries) == 3129 + 894 + 447
    for entry in entries[::400]:
        subset, name = entry.image_id.split("/")
        labels = np.asarray(Image.open(neu_seg / "ann_dir" / subset / (name[:-4] + ".png")))
        assert (entry.height, entry.width) == labels.shape == (200, 200)
        for k, text in enumerate(entry.rles, start=1):
            np.testing.assert_array_equal(rle.decode(text, 200, 200), labels == k)


def test_synthetic_is_deterministic_and_draws_every_kind() -> None:
    first = render(3, height=64, width=96, seed=9, clean_fraction=0.0)
    again = render(3, height=64, width=96, seed=9, clean_fraction=0.0)
    other = render(3, height=64, width=96, seed=10, clean_fraction=0.0)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])
    assert first[0].dtype == np.uint8 and first[1].shape == (64, 96, 4)
    kinds = np.zeros(4, int)
    for index in range(40):
        kinds += render(index, height=64, width=96, seed=1, clean_fraction=0.0)[1].any(axis=(0, 1))
    assert (kinds > 0).all(), f"every defect kind appears: {kinds}"
    clean = [render(i, height=32, width=32, seed=1, clean_fraction=1.0)[1].any() for i in range(5)]
    assert not any(clean)


# ---- bad input: each names the file or row, and on_error=skip lists it in the manifest ----


def test_csv_row_whose_image_is_missing(severstal_sample: Path, tmp_path: Path) -> None:
    names = small_copy(severstal_sample, tmp_path / "src")
    (tmp_path / "src" / "train_images" / names[0]).unlink()
    cfg = severstal_config(tmp_path / "src")
    with pytest.raises(SourceError, match=rf"train.csv row 2: image '{names[0]}' is not in"):
        prepare(cfg, out=str(tmp_path / "out"))
    manifest = prepare(cfg, out=str(tmp_path / "out"), on_error="skip")
    assert [s["record"] for s in manifest.skipped] == ["train.csv row 2"]
    assert manifest.splits["train"].rows == len(names) - 1
    written = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert written["skipped_count"] == 1 and names[0] in written["skipped"][0]["reason"]


def test_truncated_image(severstal_sample: Path, tmp_path: Path) -> None:
    names = small_copy(severstal_sample, tmp_path / "src")
    path = tmp_path / "src" / "train_images" / names[1]
    path.write_bytes(path.read_bytes()[:5000])
    cfg = severstal_config(tmp_path / "src")
    with pytest.raises(SourceError, match=rf"{path}: unreadable or truncated image"):
        prepare(cfg, out=str(tmp_path / "out"))
    manifest = prepare(cfg, out=str(tmp_path / "out"), on_error="skip")
    assert [s["record"] for s in manifest.skipped] == [names[1]]
    assert manifest.splits["train"].rows == len(names) - 1


def test_unreadable_image(tmp_path: Path) -> None:
    path = tmp_path / "garbage.jpg"
    path.write_bytes(b"this is not a jpeg")
    with pytest.raises(ImageError, match=rf"{path}: not a readable image"):
        read_grey(path)
    with pytest.raises(ImageError, match=rf"{tmp_path / 'absent.png'}: cannot read image file"):
        read_grey(tmp_path / "absent.png")


def test_image_of_unexpected_size(severstal_sample: Path, tmp_path: Path) -> None:
    names = small_copy(severstal_sample, tmp_path / "src")
    small = tmp_path / "src" / "train_images" / "small.jpg"
    Image.fromarray(np.zeros((100, 120), np.uint8)).save(small)
    cfg = severstal_config(tmp_path / "src")
    with pytest.raises(SourceError, match=rf"{small}: image is 100x120 \(HxW\), expected 256x1600"):
        prepare(cfg, out=str(tmp_path / "out"))
    manifest = prepare(cfg, out=str(tmp_path / "out"), on_error="skip")
    assert [s["record"] for s in manifest.skipped] == ["small.jpg"]
    assert manifest.splits["train"].rows == len(names)


def test_rle_that_does_not_fit_its_image(severstal_sample: Path, tmp_path: Path) -> None:
    names = small_copy(severstal_sample, tmp_path / "src", count=2)
    write_new_layout(tmp_path / "src" / "train.csv", [(names[1], 2, f"{H * W - 5} 10")])
    cfg = severstal_config(tmp_path / "src")
    with pytest.raises(
        SourceError, match=rf"row 2, image {names[1]}, class 2: malformed RLE: .*past H\*W"
    ):
        prepare(cfg, out=str(tmp_path / "out"))
    manifest = prepare(cfg, out=str(tmp_path / "out"), on_error="skip")
    assert [s["record"] for s in manifest.skipped] == ["train.csv row 2"]
    assert manifest.splits["train"].rows == 1


def test_duplicate_rows(severstal_sample: Path, tmp_path: Path) -> None:
    names = small_copy(severstal_sample, tmp_path / "src", count=2)
    write_new_layout(
        tmp_path / "src" / "train.csv",
        [(names[0], 1, "1 5"), (names[1], 3, "9 2"), (names[0], 1, "1 5")],
    )
    cfg = severstal_config(tmp_path / "src")
    with pytest.raises(
        SourceError, match=rf"row 4: duplicate of row 2 \(image '{names[0]}', class 1\)"
    ):
        prepare(cfg, out=str(tmp_path / "out"))
    manifest = prepare(cfg, out=str(tmp_path / "out"), on_error="skip")
    # The image with conflicting rows is left out whole, never half-labelled.
    assert [s["record"] for s in manifest.skipped] == ["train.csv row 4"]
    assert manifest.splits["train"].rows == 1


def test_bad_csv_header_and_class_id(severstal_sample: Path, tmp_path: Path) -> None:
    names = small_copy(severstal_sample, tmp_path / "src", count=1)
    csv_path = tmp_path / "src" / "train.csv"
    csv_path.write_text("Image,Class,Pixels\n")
    with pytest.raises(SourceError, match="header .* is neither Kaggle layout"):
        scan_source(severstal_config(tmp_path / "src"), Problems("raise"))
    write_new_layout(csv_path, [(names[0], 5, "1 1")])
    with pytest.raises(SourceError, match=r"row 2: class id '5' .* expected an integer 1..4"):
        scan_source(severstal_config(tmp_path / "src"), Problems("raise"))


def folder_cfg(root: Path) -> dict:
    return folder_config(root, ["a", "b"])


def make_folder(root: Path, sizes: dict[str, tuple[tuple[int, int], tuple[int, int]]]) -> None:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for name, (image_size, mask_size) in sizes.items():
        Image.fromarray(np.full(image_size, 90, np.uint8)).save(root / "images" / f"{name}.png")
        labels = np.zeros(mask_size, np.uint8)
        labels[1:3, 1:4] = 2
        Image.fromarray(labels).save(root / "masks" / f"{name}.png")


def test_mask_whose_size_does_not_match_its_image(tmp_path: Path) -> None:
    make_folder(tmp_path / "src", {"good": ((20, 30), (20, 30)), "bad": ((20, 30), (30, 20))})
    bad_mask = tmp_path / "src" / "masks" / "bad.png"
    with pytest.raises(
        SourceError, match=rf"{bad_mask}: mask is 30x20 \(HxW\) but its image .* is 20x30"
    ):
        prepare(folder_cfg(tmp_path / "src"), out=str(tmp_path / "out"))
    manifest = prepare(folder_cfg(tmp_path / "src"), out=str(tmp_path / "out"), on_error="skip")
    assert [s["record"] for s in manifest.skipped] == ["bad.png"]
    assert manifest.splits["train"].rows == 1


def test_folder_mask_missing_or_with_unnamed_class(tmp_path: Path) -> None:
    make_folder(tmp_path / "src", {"one": ((8, 8), (8, 8))})
    labels = np.zeros((8, 8), np.uint8)
    labels[0, 0] = 3
    Image.fromarray(labels).save(tmp_path / "src" / "masks" / "one.png")
    with pytest.raises(SourceError, match=r"one.png: class id 3 in mask, but only 2 classes"):
        scan_source(folder_cfg(tmp_path / "src"), Problems("raise"))
    (tmp_path / "src" / "masks" / "one.png").unlink()
    with pytest.raises(SourceError, match=r"one.png: no mask file .*masks/one.png"):
        scan_source(folder_cfg(tmp_path / "src"), Problems("raise"))


def test_unknown_source_and_missing_root() -> None:
    with pytest.raises(SourceError, match="dataset.source='kaggle': expected one of severstal"):
        scan_source({"source": "kaggle"}, Problems("raise"))
    with pytest.raises(SourceError, match="dataset.root is not set"):
        scan_source({"source": "folder", "root": None}, Problems("raise"))
    with pytest.raises(SourceError, match="on_error='ignore': expected one of raise, skip"):
        Problems("ignore")
