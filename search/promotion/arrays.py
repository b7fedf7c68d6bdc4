"""Promotion's arrays: each split's images and masks, each model's probabilities as uint8.

On full Severstal a split of about 1,260 images at 256x1600 holds 0.5 GB of images and 2 GB
of masks (one byte per pixel and class), and a model's float32 probabilities for it are
8 GB. Promotion therefore keeps them in `.npy` files in a work folder of the experiment,
opened as memory maps, and every stage after prediction reads `CHUNK` images at a time:
the driver's memory does not grow with the split or with the number of models.

Probabilities are stored as uint8 levels (`search.promotion.postprocess.quantise`, round(255 p)): a
quarter of float32, and exact for what follows, since post-processing and `search.predict`
decide on the same levels (`search.promotion.postprocess.cut`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CHUNK",
    "IMAGES",
    "OnDisk",
    "Split",
    "chunks",
    "load_split",
    "open_array",
    "pair_dice",
    "score",
    "score_levels",
]

# Images read at a time by every chunked stage: at 256x1600 with 4 classes, 16 images are
# 26 MB of levels, and an ensemble's float32 mean of them 105 MB.
CHUNK = 16


class PromotionError(RuntimeError):
    """Promotion cannot go on; the message names the file, trial or split."""


@dataclass
class Split:
    """One split. Images smaller than the split's largest are zero-padded at the bottom and
    right: padding is never predicted on (`predict_split` leaves its levels at 0) and holds no
    truth, so it adds nothing to a Dice, a component's area or an RLE.

    `images` and `masks` are arrays, or `OnDisk` files (`load_split(..., folder=...)`)."""

    name: str
    image_ids: list[str]
    images: Any  # uint8 (N, H, W): an array, or OnDisk
    masks: Any  # bool (N, H, W, C): an array, or OnDisk
    sizes: np.ndarray  # int (N, 2): each image's own height and width

    def size_groups(self) -> list[tuple[tuple[int, int], np.ndarray]]:
        """((height, width), indices) for every image size, in the order sizes first occur."""
        groups: dict[tuple[int, int], list[int]] = {}
        for index, (height, width) in enumerate(self.sizes.tolist()):
            groups.setdefault((height, width), []).append(index)
        return [(size, np.asarray(indices)) for size, indices in groups.items()]

    def __len__(self) -> int:
        return len(self.image_ids)


class OnDisk:
    """A `.npy` file read a slice at a time. Each read maps the file, copies what it asked
    for and unmaps it, so the pages read do not stay in the process's resident memory (a
    memory map kept open would hold every page it ever touched: gigabytes on Severstal)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        view = np.load(self.path, mmap_mode="r")
        self.shape, self.dtype = tuple(view.shape), view.dtype
        self.ndim = len(self.shape)
        del view

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: Any) -> np.ndarray:
        view = np.load(self.path, mmap_mode="r")
        try:
            return np.array(view[index])
        finally:
            del view

    def __setitem__(self, index: Any, value: Any) -> None:
        """Write a slice the same way: map, write, unmap. The written pages go to the page
        cache and leave this process (a map kept open for the whole split held them all)."""
        view = np.load(self.path, mmap_mode="r+")
        try:
            view[index] = value  # dirty pages in the page cache: the next map reads them
        finally:
            del view

    def flush(self) -> None:
        """Nothing to do: every write was flushed and unmapped as it was made."""

    def __repr__(self) -> str:
        return f"OnDisk({str(self.path)!r}, shape={self.shape}, dtype={self.dtype})"


def open_array(path: Path | None, shape: tuple[int, ...], dtype: Any) -> Any:
    """Zeros of `shape`: in memory (path None), or a new `.npy` file at `path` written and
    read a slice at a time (`OnDisk`), so that the process never holds the file's pages."""
    if path is None:
        return np.zeros(shape, dtype=dtype)
    created = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    del created  # a sparse file of zeros with its header: nothing of it stays mapped
    return OnDisk(path)


def load_split(uri: str, split: str, *, limit: int | None, folder: Path | None = None) -> Split:
    """One split of the shards, in the shards' order (deterministic), zero-padded to its
    largest image. With `folder`, images and masks are written to `<split>.images.npy` and
    `<split>.masks.npy` there, one example decoded at a time, and read back as `OnDisk`."""
    from data.reader import iter_examples, split_index

    ids, sizes, classes = split_index(uri, split, limit=limit)
    if not ids:
        raise PromotionError(f"{uri}: split {split!r} has no rows to evaluate on")
    height, width = (int(v) for v in sizes.max(axis=0))
    where = (lambda kind: Path(folder) / f"{split}.{kind}.npy") if folder else (lambda kind: None)
    images = open_array(where("images"), (len(ids), height, width), np.uint8)
    masks = open_array(where("masks"), (len(ids), height, width, classes), np.bool_)
    for index, example in enumerate(iter_examples(uri, split, limit=limit)):
        h, w = example.image.shape[:2]
        images[index, :h, :w] = example.image
        masks[index, :h, :w] = example.masks.astype(bool, copy=False)
    return Split(split, ids, images, masks, sizes)  # with `folder`, OnDisk files


def reopen_split(folder: Path, split: str, ids: list[str], sizes: np.ndarray) -> Split:
    """A split that `load_split(..., folder=folder)` wrote, read a slice at a time."""
    images = OnDisk(Path(folder) / f"{split}.images.npy")
    masks = OnDisk(Path(folder) / f"{split}.masks.npy")
    return Split(split, ids, images, masks, sizes)


def chunks(n: int, size: int = CHUNK) -> Iterator[slice]:
    for lo in range(0, n, size):
        yield slice(lo, min(lo + size, n))


def pair_dice(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Kaggle Dice of every (image, class) pair (N, C) of boolean masks (N, H, W, C), an empty
    prediction of an empty mask scoring 1: `models.metrics.pair_dice` (a test holds them
    equal) without importing Keras: the tuning workers stay NumPy-sized."""
    from search.promotion.postprocess import dice_from_counts

    truth, pred = np.asarray(truth, dtype=bool), np.asarray(pred, dtype=bool)
    if truth.shape != pred.shape:
        raise ValueError(f"truth has shape {truth.shape} but the prediction {pred.shape}")
    inter = np.logical_and(truth, pred).sum(axis=(1, 2), dtype=np.int64)
    total = truth.sum(axis=(1, 2), dtype=np.int64) + pred.sum(axis=(1, 2), dtype=np.int64)
    return dice_from_counts(inter, total).astype(np.float64)


def score(truth: np.ndarray, pred: np.ndarray, class_names: Sequence[str]) -> dict[str, Any]:
    """Kaggle Dice and per-class Dice of boolean masks (N, H, W, C), read a chunk at a time."""
    parts = [_pairs(np.asarray(truth[s]), np.asarray(pred[s])) for s in chunks(len(truth))]
    return _summary(parts, class_names)


def score_levels(
    truth: np.ndarray,
    levels: Any,
    params: Any,
    class_names: Sequence[str],
    *,
    sizes: np.ndarray | None = None,
) -> dict[str, Any]:
    """`score` of post-processed probabilities (uint8 levels, a memory map or an ensemble
    `Mixture`), post-processing one chunk at a time: components never cross images. `sizes`
    (N, 2): the images' own sizes in a padded split (minimum areas are fractions of them)."""
    from search.promotion import postprocess

    def masks(s: slice) -> np.ndarray:
        own = None if sizes is None else np.asarray(sizes)[s]
        return postprocess.apply(np.asarray(levels[s]), params, sizes=own)

    parts = [_pairs(np.asarray(truth[s]), masks(s)) for s in chunks(len(truth))]
    return _summary(parts, class_names)


# The per-image scores a summary carries for paired comparisons (`scoring.promotion_metrics`
# takes them out before anything is written).
IMAGES = "_image_scores"


def _pairs(truth: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the prediction's pair Dice, predict-nothing's pair Dice), each (N, C)."""
    nothing = (~np.asarray(truth, dtype=bool).any(axis=(1, 2))).astype(np.float64)
    return pair_dice(truth, pred), nothing


def _summary(
    parts: Sequence[tuple[np.ndarray, np.ndarray]], class_names: Sequence[str]
) -> dict[str, Any]:
    """Kaggle Dice with its 95% bootstrap interval over images, the lift over predicting
    nothing on the same images with its paired interval, per-class Dice, and (under
    `IMAGES`) each image's score for later paired comparisons."""
    from search.promotion import intervals

    pairs = np.concatenate([p for p, _ in parts])
    nothing = np.concatenate([n for _, n in parts])
    images = pairs.mean(axis=1)
    return {
        "kaggle_dice": float(pairs.mean()),
        "interval95": intervals.interval(images),
        "lift_over_nothing": intervals.difference(images, nothing.mean(axis=1)),
        "per_class": {n: float(d) for n, d in zip(class_names, pairs.mean(axis=0), strict=True)},
        IMAGES: tuple(images.tolist()),  # a tuple: summaries compare with ==
    }
