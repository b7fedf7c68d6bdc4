"""Severstal at full scale without the download: real Severstal masks on synthetic grey steel.

The stand-in has Severstal's shape and label statistics, not its pixels:
- 12,568 training images of 256x1600, one per row of the real `defect_flags_12568.csv`, each
  with that image's class set (6,666 defective, 5,902 clean; 897 / 247 / 5,150 / 801 images
  per class; the real co-occurrence);
- each image's masks are real Severstal masks from `train_7179_old_format.csv`: the image's
  own where the file has it (7,179 images), otherwise those of a labelled image with the same
  class set, drawn with a seeded generator and flipped at random (left-right, up-down), so
  shapes, sizes and counts stay real. A class set no labelled image has (one image is
  {2, 4}) takes each class's mask from a donor with that class alone;
- the pixels are synthetic rolled steel with a class-specific appearance painted inside each
  mask (1 dark pitting, 2 thin bright vertical lines, 3 streaked scratches, 4 large dark rough
  patches), plus unlabelled faint blemishes and dark off-strip edges that a model must learn
  to leave alone, which is what image gates and minimum areas are tuned against.

It is a rehearsal set for the whole job at full scale (data volume, image size, the 86% of
empty (image, class) pairs), not a claim about real Severstal accuracy: its scores say how the
system behaves, never how a model would do on Kaggle.

`sim_test_entries` gives the 5,506 unlabelled test images Kaggle ships (`data.sim_images`
writes them as files, with their hidden labels beside them for scoring a submission).
Image i depends only on (seed, its id), so any subset renders without the rest.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from data import rle
from data.sources._base import Entry, Problems, Scan, SourceError
from data.sources.severstal import read_label_rows

__all__ = [
    "HEIGHT",
    "WIDTH",
    "SIM_VERSION",
    "render_sim",
    "scan_severstal_sim",
    "sim_test_entries",
]

HEIGHT, WIDTH = 256, 1600
NUM_CLASSES = 4
# Part of the fingerprint: a change to the painting or the resampling rebuilds the shards.
SIM_VERSION = 1
TEST_IMAGES = 5506  # Kaggle's unlabelled test set


def scan_severstal_sim(cfg: Mapping[str, Any], problems: Problems | None = None) -> Scan:
    """The 12,568 training entries; masks are RLE text, pixels render lazily (`Entry.load`)."""
    del problems  # the inputs are checked whole: a bad row stops the scan, naming it
    labels, flags, seed = _inputs(cfg)
    scan = Scan(entries=[])
    scan.add_to_fingerprint(
        "severstal-sim", SIM_VERSION, seed, labels.read_bytes(), flags.read_bytes()
    )
    masks = _real_masks(labels)
    donors = _donors(masks)
    rng = np.random.default_rng([seed, 0])
    for image_id, classes in _flags(flags):
        if image_id in masks:
            if _class_set(masks[image_id]) != classes:
                raise SourceError(
                    f"{flags}: image {image_id!r} has classes {_names(classes)} but "
                    f"{labels.name} gives it {_names(_class_set(masks[image_id]))}"
                )
            rles = masks[image_id]
        else:
            rles = _resampled(classes, masks, donors, rng)
        name = f"sim-{Path(image_id).stem}.png"
        scan.entries.append(_entry(name, rles, seed))
    return scan


def sim_test_entries(cfg: Mapping[str, Any], count: int = TEST_IMAGES) -> list[Entry]:
    """`count` test images whose class sets are drawn from the training flags' distribution."""
    labels, flags, seed = _inputs(cfg)
    masks = _real_masks(labels)
    donors = _donors(masks)
    targets = [classes for _, classes in _flags(flags)]
    rng = np.random.default_rng([seed, 1])
    entries = []
    for index in range(int(count)):
        classes = targets[int(rng.integers(len(targets)))]
        rles = _resampled(classes, masks, donors, rng)
        entries.append(_entry(f"simtest-{index:05d}.png", rles, seed))
    return entries


def _inputs(cfg: Mapping[str, Any]) -> tuple[Path, Path, int]:
    if list(cfg["class_names"]) != ["1", "2", "3", "4"]:
        raise SourceError(
            f"dataset.class_names={list(cfg['class_names'])}: the stand-in paints Severstal's "
            'four classes, named ["1", "2", "3", "4"]'
        )
    root = Path(cfg["root"])
    paths = (root / cfg["labels_csv"], root / cfg["flags_csv"])
    for path in paths:
        if not path.is_file():
            raise SourceError(f"{path}: not found (dataset.root={cfg['root']!r})")
    return paths[0], paths[1], int(cfg["seed"])


def _entry(name: str, rles: tuple[str, ...], seed: int) -> Entry:
    return Entry(name, HEIGHT, WIDTH, rles, functools.partial(render_sim, seed, name, rles))


def _names(classes: tuple[int, ...]) -> str:
    return "{" + ", ".join(str(k + 1) for k in classes) + "}" if classes else "none"


def _class_set(rles: Sequence[str]) -> tuple[int, ...]:
    return tuple(k for k, encoded in enumerate(rles) if encoded)


def _real_masks(labels: Path) -> dict[str, tuple[str, ...]]:
    """image -> its four RLE strings, from a Kaggle train.csv (either layout), each checked."""
    found: dict[str, list[str]] = {}
    for number, image_id, class_index, encoded in read_label_rows(labels, NUM_CLASSES):
        where = f"{labels} row {number}, image {image_id}, class {class_index + 1}"
        try:
            rle.parse(encoded, HEIGHT, WIDTH, where=where)
        except rle.RLEError as exc:
            raise SourceError(str(exc)) from None
        found.setdefault(image_id, [""] * NUM_CLASSES)[class_index] = " ".join(encoded.split())
    return {image_id: tuple(rles) for image_id, rles in found.items()}


def _flags(flags: Path) -> list[tuple[str, tuple[int, ...]]]:
    """(image, class set) per row of a 0/1 flags CSV (`ImageId_ClassId,1,2,3,4`), sorted by id."""
    with flags.open(newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows or [c.strip() for c in rows[0][1:]] != ["1", "2", "3", "4"]:
        raise SourceError(f"{flags}: expected a header ImageId_ClassId,1,2,3,4")
    result = []
    for number, fields in enumerate(rows[1:], start=2):
        if len(fields) != 5 or any(v not in ("0", "1") for v in fields[1:]):
            raise SourceError(f"{flags} row {number}: expected an image id and four 0/1 flags")
        result.append((fields[0], tuple(k for k in range(NUM_CLASSES) if fields[k + 1] == "1")))
    return sorted(result)


def _donors(masks: Mapping[str, tuple[str, ...]]) -> dict[tuple[int, ...], list[str]]:
    """class set -> the labelled images that have exactly it, sorted."""
    donors: dict[tuple[int, ...], list[str]] = {}
    for image_id in sorted(masks):
        donors.setdefault(_class_set(masks[image_id]), []).append(image_id)
    return donors


def _resampled(
    classes: tuple[int, ...],
    masks: Mapping[str, tuple[str, ...]],
    donors: Mapping[tuple[int, ...], list[str]],
    rng: np.random.Generator,
) -> tuple[str, ...]:
    """Masks for an image with `classes`: a same-set donor's, or one single-class donor per
    class when no labelled image has the set; flipped left-right and up-down at random."""
    flips = rng.random(2) < 0.5
    if not classes:
        return ("",) * NUM_CLASSES
    if classes in donors:
        pool = donors[classes]
        chosen = masks[pool[int(rng.integers(len(pool)))]]
    else:
        chosen = tuple([""] * NUM_CLASSES)
        for k in classes:
            pool = donors.get((k,)) or [i for i in masks if masks[i][k]]
            if not pool:
                raise SourceError(f"no labelled image has class {k + 1}; cannot resample it")
            chosen = tuple(
                masks[pool[int(rng.integers(len(pool)))]][c] if c == k else chosen[c]
                for c in range(NUM_CLASSES)
            )
    return tuple(_flipped(encoded, flips) for encoded in chosen)


def _flipped(encoded: str, flips: np.ndarray) -> str:
    if not encoded or not flips.any():
        return encoded
    mask = rle.decode(encoded, HEIGHT, WIDTH)
    if flips[0]:
        mask = mask[:, ::-1]
    if flips[1]:
        mask = mask[::-1, :]
    return rle.encode(mask)


# --- painting -------------------------------------------------------------------------------


def render_sim(seed: int, name: str, rles: Sequence[str]) -> np.ndarray:
    """Grey uint8 (256, 1600) pixels of the stand-in image `name` with masks `rles`."""
    rng = np.random.default_rng([seed, *name.encode()])
    masks = [rle.decode(encoded, HEIGHT, WIDTH) if encoded else None for encoded in rles]
    surface = _steel(rng)
    _blemishes(rng, surface)
    # Large classes first, so a small defect inside a large one stays visible.
    for k in (3, 2, 0, 1):
        if masks[k] is not None:
            _PAINT[k](rng, surface, _soft(masks[k]))
    _off_strip_edge(rng, surface, masks)
    return np.clip(surface, 0, 255).astype(np.uint8)


def _box_blur(field: np.ndarray, radius: int, axis: int) -> np.ndarray:
    """Mean over a window of 2 * radius + 1 along `axis` (edges use the pixels there are)."""
    if radius <= 0:
        return field
    field = np.moveaxis(field, axis, 0)
    padded = np.concatenate([np.zeros((1, *field.shape[1:]), field.dtype), field], axis=0)
    cum = np.cumsum(padded, axis=0, dtype=np.float64)
    n = field.shape[0]
    hi = np.minimum(np.arange(n) + radius + 1, n)
    lo = np.maximum(np.arange(n) - radius, 0)
    shape = (-1,) + (1,) * (field.ndim - 1)
    mean = (cum[hi] - cum[lo]) / (hi - lo).reshape(shape)
    return np.moveaxis(mean.astype(np.float32), 0, axis)


def _blur(field: np.ndarray, radius: int) -> np.ndarray:
    return _box_blur(_box_blur(field, radius, 0), radius, 1)


def _smooth_noise(rng: np.random.Generator, cell: tuple[int, int]) -> np.ndarray:
    """Zero-mean, unit-ish noise varying over `cell`-sized features, at full size."""
    coarse = rng.normal(0.0, 1.0, (HEIGHT // cell[0] + 2, WIDTH // cell[1] + 2)).astype(np.float32)
    full = np.repeat(np.repeat(coarse, cell[0], axis=0), cell[1], axis=1)[:HEIGHT, :WIDTH]
    return _box_blur(_box_blur(full, cell[0] // 2, 0), cell[1] // 2, 1) * 1.7


def _soft(mask: np.ndarray) -> np.ndarray:
    """A mask's alpha with a 2-pixel soft edge, so defects do not end in a painted line."""
    return _blur(mask.astype(np.float32), 2)


def _steel(rng: np.random.Generator) -> np.ndarray:
    # Rolled strip: a brightness per image, rolling marks along the columns, slow shading,
    # and fine grain.
    base = rng.uniform(75.0, 135.0)
    columns = _box_blur(rng.normal(0.0, 6.0, (1, WIDTH)).astype(np.float32), 3, 1)
    shading = 6.0 * _smooth_noise(rng, (128, 400))
    grain = rng.normal(0.0, 5.0, (HEIGHT, WIDTH)).astype(np.float32)
    return (base + columns + shading + grain).astype(np.float32)


def _pitting(rng: np.random.Generator, surface: np.ndarray, alpha: np.ndarray) -> None:
    dots = (rng.random(surface.shape) < rng.uniform(0.05, 0.12)).astype(np.float32)
    dots = _blur(dots, 1) * 9.0
    surface -= alpha * (rng.uniform(8.0, 14.0) + rng.uniform(35.0, 55.0) * np.minimum(dots, 1.0))


def _lines(rng: np.random.Generator, surface: np.ndarray, alpha: np.ndarray) -> None:
    columns = (rng.random((1, WIDTH)) < 0.3).astype(np.float32)
    columns = _box_blur(columns, 1, 1)
    surface += alpha * (rng.uniform(40.0, 55.0) * columns - 8.0)


def _scratches(rng: np.random.Generator, surface: np.ndarray, alpha: np.ndarray) -> None:
    streaks = _box_blur(rng.normal(0.0, 1.0, (HEIGHT, WIDTH)).astype(np.float32), 40, 1) * 6.0
    sign = 1.0 if rng.random() < 0.6 else -1.0
    surface += alpha * (sign * rng.uniform(14.0, 22.0) + 14.0 * streaks)


def _rough_patch(rng: np.random.Generator, surface: np.ndarray, alpha: np.ndarray) -> None:
    rough = _smooth_noise(rng, (8, 8))
    surface -= alpha * (rng.uniform(35.0, 50.0) + 12.0 * rough)


_PAINT = (_pitting, _lines, _scratches, _rough_patch)


def _blemishes(rng: np.random.Generator, surface: np.ndarray) -> None:
    """Unlabelled marks on about a third of the images: faint stains and short faint streaks."""
    if rng.random() >= 0.35:
        return
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    for _ in range(int(rng.integers(1, 4))):
        cy, cx = rng.uniform(0, HEIGHT), rng.uniform(0, WIDTH)
        ry, rx = rng.uniform(8, 40), rng.uniform(15, 120)
        blob = np.exp(-(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2))
        surface += rng.choice([-1.0, 1.0]) * rng.uniform(6.0, 12.0) * blob


def _off_strip_edge(rng: np.random.Generator, surface: np.ndarray, masks: Sequence) -> None:
    """A dark band past the strip's edge on one side of some images, where no mask lies."""
    if rng.random() >= 0.15:
        return
    used = np.zeros(WIDTH, bool)
    for mask in masks:
        if mask is not None:
            used |= mask.any(axis=0)
    left = bool(rng.random() < 0.5)
    free = int(np.argmax(used)) if used.any() else WIDTH  # columns free of masks on the left
    if not left:
        free = int(np.argmax(used[::-1])) if used.any() else WIDTH
    width = min(int(rng.uniform(40, 400)), free)
    if width <= 0:
        return
    band = rng.uniform(8.0, 25.0) + rng.normal(0.0, 3.0, (HEIGHT, width))
    if left:
        surface[:, :width] = band
    else:
        surface[:, WIDTH - width :] = band
