"""Per-class post-processing tuned on validation probabilities to maximise the Kaggle metric.

Three knobs per class, as the 1st-place Severstal solution used them:
- `threshold`: a pixel is predicted when its probability is >= threshold;
- `min_area_fraction`: connected components (8-connected) smaller than this fraction of their
  image's pixels are removed. A fraction, not a pixel count, so a setting tuned on one image
  size means the same at any other (the Kaggle winners' 600-3,000 px on 409,600-px images is
  0.15%-0.7%); each image's own size counts, not the padded size of a mixed-size split;
- `gate`: the whole class mask of an image is dropped when the image's largest probability for
  that class is below `gate` (an image-level classifier made from the segmentation itself).
  `gate=0` means no gate.

The Kaggle metric is the mean over every (image, class) pair of Dice, where empty/empty = 1.
Every class sees the same images, so it is the mean of the per-class means and each class can
be tuned on its own. The search is exhaustive over the grids but cheap: for each threshold the
components are labelled once, and every (min_area, gate) pair is scored from per-component
areas and ground-truth overlaps, never from the pixels again.

Probabilities come as floats in [0, 1] or, as promotion stores them, as uint8 levels
(`quantise`: round(255 p)). On levels a threshold t means `level >= cut(t)` with
cut(t) = ceil(255 t), the same decision as `level / 255 >= t`; `search.predict` quantises
before it post-processes, so the promoted scores are exactly what the shipped model does.
Tuning runs over chunks of images (a Dice per image, summed), so its memory does not grow
with the split and memory-mapped probabilities are read a chunk at a time.

Only NumPy: components are labelled on horizontal runs (a run is a maximal row segment of
foreground pixels), runs on adjacent rows that touch are linked, and the run graph is
resolved by vectorised union-find (hook to the smaller root, then pointer jumping).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from search.promotion.components import (
    component_runs,
    components_of_runs,
    label_components,
    paint,
    runs_of_pixels,
)
from search.records import METRIC

__all__ = [
    "ClassParams",
    "PostprocessParams",
    "TuneGrid",
    "apply",
    "apply_class",
    "component_runs",
    "cut",
    "default_grid",
    "image_pixels",
    "label_components",
    "quantise",
    "raw_params",
    "tune",
]


@dataclass(frozen=True)
class ClassParams:
    threshold: float = 0.5
    min_area_fraction: float = 0.0  # of the image's pixels; 0 = keep every component
    gate: float = 0.0  # 0 = no gate

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold!r}")
        if not 0.0 <= self.min_area_fraction < 1.0:
            raise ValueError(
                f"min_area_fraction must be a fraction of the image in [0, 1), got "
                f"{self.min_area_fraction!r}"
            )
        if not 0.0 <= self.gate <= 1.0:
            raise ValueError(f"gate must be in [0, 1] (0 = off), got {self.gate!r}")


@dataclass(frozen=True)
class PostprocessParams:
    """One ClassParams per class, in the dataset's class order."""

    classes: tuple[ClassParams, ...]
    class_names: tuple[str, ...] = ()
    connectivity: int = 8

    def __post_init__(self) -> None:
        if self.connectivity not in (4, 8):
            raise ValueError(f"connectivity must be 4 or 8, got {self.connectivity!r}")
        if self.class_names and len(self.class_names) != len(self.classes):
            raise ValueError(
                f"{len(self.class_names)} class names for {len(self.classes)} class parameters"
            )

    def to_dict(self) -> dict:
        names = self.class_names or tuple(str(i) for i in range(len(self.classes)))
        return {
            "connectivity": self.connectivity,
            "classes": [{"name": n, **asdict(c)} for n, c in zip(names, self.classes, strict=True)],
        }

    @classmethod
    def from_dict(cls, data: Mapping, *, where: str = "post-processing") -> PostprocessParams:
        entries = data.get("classes") if isinstance(data, Mapping) else None
        if isinstance(entries, list) and any(
            isinstance(e, Mapping) and "min_area" in e and "min_area_fraction" not in e
            for e in entries
        ):
            raise ValueError(
                f"{where}: min_area is in pixels of the tuning images, written before minimum "
                "areas became fractions of the image; run python -m search.promote again"
            )
        try:
            classes = tuple(
                ClassParams(float(e["threshold"]), float(e["min_area_fraction"]), float(e["gate"]))
                for e in entries  # type: ignore[union-attr]
            )
            names = tuple(str(e["name"]) for e in entries)  # type: ignore[union-attr]
            return cls(classes, names, int(data["connectivity"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"{where}: bad post-processing parameters ({type(exc).__name__}: {exc}); "
                "expected {'connectivity': 4 or 8, 'classes': [{'name', 'threshold', "
                "'min_area_fraction', 'gate'}, ...]}"
            ) from exc


def raw_params(num_classes: int, *, threshold: float = 0.5) -> PostprocessParams:
    """Plain thresholding: what 'raw' scores use."""
    return PostprocessParams(tuple(ClassParams(threshold) for _ in range(num_classes)))


@dataclass(frozen=True)
class TuneGrid:
    thresholds: tuple[float, ...]
    min_area_fractions: tuple[float, ...]  # of each image's pixels; must include 0.0 (off)
    gates: tuple[float, ...]  # must include 0.0 (off)


AREA_FRACTIONS = (0.0, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2)


def default_grid(*, gate: bool = True) -> TuneGrid:
    """Thresholds 0.05..0.95; min areas off or 0.01%..2% of the image; gates off or 0.5..0.95.

    The same grid suits 200x200 NEU-Seg and 256x1600 Severstal: the areas are fractions.
    """
    gates = (0.0, *np.round(np.arange(0.5, 0.951, 0.05), 2).tolist()) if gate else (0.0,)
    thresholds = tuple(np.round(np.arange(0.05, 0.951, 0.05), 2).tolist())
    return TuneGrid(thresholds, AREA_FRACTIONS, tuple(gates))


def image_pixels(sizes: np.ndarray | None, n: int, height: int, width: int) -> np.ndarray:
    """Each image's own pixel count (float64 (N,)): from `sizes` (N, 2) of a padded split,
    else every image is the array's height x width."""
    if sizes is None:
        return np.full(n, float(height * width))
    sizes = np.asarray(sizes).reshape(-1, 2)
    if sizes.shape[0] != n:
        raise ValueError(f"{sizes.shape[0]} image sizes for {n} images")
    return (sizes[:, 0] * sizes[:, 1]).astype(np.float64)


# --- quantised probabilities ----------------------------------------------------------------

LEVELS = 255  # uint8 probabilities: level = round(255 p), p = level / 255
TUNE_CHUNK = 16  # images per chunk while tuning: bounds memory on any split size


def quantise(probs: np.ndarray) -> np.ndarray:
    """Float probabilities in [0, 1] -> uint8 levels round(255 p); uint8 passes through."""
    if probs.dtype == np.uint8:
        return probs
    scaled = np.rint(np.clip(probs, 0.0, 1.0) * np.float32(LEVELS))
    return scaled.astype(np.uint8)


def cut(threshold: float) -> int:
    """The lowest uint8 level at or above `threshold`: ceil(255 t), robust to 255 * 0.2 =
    51.000000000000014."""
    return int(np.ceil(round(threshold * LEVELS, 6)))


def _at_least(probs: np.ndarray, threshold: float) -> np.ndarray:
    """probs >= threshold, on floats or on uint8 levels."""
    if probs.dtype == np.uint8:
        return probs >= cut(threshold)
    return probs >= threshold


def _check_probs(probs: np.ndarray, num_classes: int | None = None) -> None:
    if probs.ndim != 4:
        raise ValueError(f"expected probabilities of shape (N, H, W, C), got {probs.shape}")
    if num_classes is not None and probs.shape[-1] != num_classes:
        raise ValueError(
            f"probabilities have {probs.shape[-1]} classes but the post-processing has "
            f"{num_classes}"
        )


def apply_class(
    probs: np.ndarray,
    params: ClassParams,
    *,
    connectivity: int = 8,
    sizes: np.ndarray | None = None,
) -> np.ndarray:
    """(N, H, W) probabilities of one class -> (N, H, W) bool masks; `sizes` (N, 2) are the
    images' own sizes when they are padded (the minimum area is a fraction of those)."""
    n, height, width = probs.shape
    mask = _at_least(probs, params.threshold)
    if params.gate > 0:
        mask &= _at_least(probs.reshape(n, -1).max(axis=1), params.gate)[:, None, None]
    if params.min_area_fraction <= 0 or not mask.any():
        return mask
    row, start, end, component, num = component_runs(mask, connectivity=connectivity)
    area = np.bincount(component, weights=end - start, minlength=int(num))
    least = params.min_area_fraction * image_pixels(sizes, n, height, width)
    keep = area[component] >= least[row // height]
    painted = paint(
        row[keep], start[keep], end[keep], np.ones(keep.sum(), np.int64), n * height, width
    )
    return painted.reshape(n, height, width) > 0


def apply(
    probs: np.ndarray, params: PostprocessParams, *, sizes: np.ndarray | None = None
) -> np.ndarray:
    """(N, H, W, C) probabilities -> (N, H, W, C) bool masks with the tuned post-processing;
    `sizes` (N, 2): the images' own sizes, when they are padded to (H, W)."""
    _check_probs(probs, len(params.classes))
    out = np.empty(probs.shape, dtype=bool)
    for c, class_params in enumerate(params.classes):
        out[..., c] = apply_class(
            probs[..., c], class_params, connectivity=params.connectivity, sizes=sizes
        )
    return out


# --- tuning -----------------------------------------------------------------------------------


def dice_from_counts(inter: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Dice from pixel counts (intersection, predicted + true), elementwise; the Kaggle rule
    that an empty prediction of an empty mask scores 1 (`models.metrics.pair_dice`'s too)."""
    return np.where(total > 0, 2.0 * inter / np.maximum(total, 1), 1.0)


def _dice(inter: np.ndarray, pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    return dice_from_counts(inter, pred + truth)


def _scores_for_runs(
    runs: tuple[np.ndarray, np.ndarray, np.ndarray],
    shape: tuple[int, int, int],
    truth_cum: np.ndarray,
    truth_sum: np.ndarray,
    max_prob: np.ndarray,
    pixels: np.ndarray,
    grid: TuneGrid,
    connectivity: int,
) -> np.ndarray:
    """Summed Dice for every (min_area_fraction, gate), given the runs (row, start, end) of
    one threshold's mask of a (N, H, W) chunk: shape (areas, gates)."""
    n, height, width = shape
    row, start, end = runs
    component, num = components_of_runs(
        row, start, end, width=width, height=height, connectivity=connectivity
    )
    k = int(num)
    length = end - start
    run_overlap = truth_cum[row, end] - truth_cum[row, start]
    area = np.bincount(component, weights=length, minlength=k)
    overlap = np.bincount(component, weights=run_overlap, minlength=k)
    image = np.zeros(k, dtype=np.int64)
    image[component] = row // height
    kept_images = np.stack([_at_least(max_prob, g) for g in grid.gates])  # (G, N)
    empty_truth = (truth_sum == 0).astype(np.float64)
    component_pixels = pixels[image]
    scores = np.empty((len(grid.min_area_fractions), len(grid.gates)))
    for i, fraction in enumerate(grid.min_area_fractions):
        keep = area >= fraction * component_pixels
        pred_sum = np.bincount(image[keep], weights=area[keep], minlength=n)
        inter = np.bincount(image[keep], weights=overlap[keep], minlength=n)
        dice = _dice(inter, pred_sum, truth_sum)  # (N,)
        scores[i] = np.where(kept_images, dice[None, :], empty_truth[None, :]).sum(axis=1)
    return scores


def tune_class(
    probs: np.ndarray,
    truth: np.ndarray,
    grid: TuneGrid,
    *,
    connectivity: int = 8,
    chunk: int = TUNE_CHUNK,
    sizes: np.ndarray | None = None,
) -> tuple[ClassParams, float, np.ndarray]:
    """Best ClassParams for one class; returns (params, mean Dice, score cube (T, A, G)).

    `probs` and `truth` are (N, H, W) and may be memory-mapped: `chunk` images are read at a
    time, and the cube is the sum of every chunk's per-image Dice over N.
    """
    n, height, width = probs.shape
    pixels = image_pixels(sizes, n, height, width)
    cube = np.zeros((len(grid.thresholds), len(grid.min_area_fractions), len(grid.gates)))
    for lo in range(0, n, chunk):
        cube += _chunk_cube(
            np.asarray(probs[lo : lo + chunk]),
            np.asarray(truth[lo : lo + chunk]) > 0.5,
            grid,
            connectivity,
            pixels[lo : lo + chunk],
        )
    cube /= n
    t, a, g = _best_index(cube, grid)
    return _params_at(grid, t, a, g), float(cube[t, a, g]), cube


def _params_at(grid: TuneGrid, t: int, a: int, g: int) -> ClassParams:
    return ClassParams(
        float(grid.thresholds[t]), float(grid.min_area_fractions[a]), float(grid.gates[g])
    )


def _chunk_cube(
    probs: np.ndarray, truth: np.ndarray, grid: TuneGrid, connectivity: int, pixels: np.ndarray
) -> np.ndarray:
    """Summed per-image Dice (T, A, G) of one chunk of images of one class; `pixels` (N,) is
    each image's own pixel count."""
    n, height, width = probs.shape
    truth_sum = truth.reshape(n, -1).sum(axis=1, dtype=np.int64).astype(np.float64)
    max_prob = probs.reshape(n, -1).max(axis=1)
    # Row-wise prefix sums of the truth give any run's overlap with it in O(1).
    truth_cum = np.zeros((n * height, width + 1), dtype=np.int32)
    np.cumsum(truth.reshape(n * height, width), axis=1, dtype=np.int32, out=truth_cum[:, 1:])
    # One pass over the pixels: those at or above the lowest threshold, in row-major order.
    # Every threshold's mask is a subset of them, so its runs come from them alone, in time
    # proportional to the candidates (a few percent of a mostly empty Severstal chunk).
    flat = probs.reshape(-1)
    candidates = np.flatnonzero(_at_least(flat, min(grid.thresholds)))
    levels = flat[candidates]
    return np.stack(
        [
            _scores_for_runs(
                runs_of_pixels(candidates[_at_least(levels, t)], width),
                (n, height, width),
                truth_cum,
                truth_sum,
                max_prob,
                pixels,
                grid,
                connectivity,
            )
            for t in grid.thresholds
        ]
    )


def _best_index(cube: np.ndarray, grid: TuneGrid) -> tuple[int, int, int]:
    """Argmax; ties go to the simplest setting: no/lower gate, smaller area, threshold near 0.5."""
    best = cube.max()
    tied = np.argwhere(cube >= best - 1e-12)
    thresholds = np.asarray(grid.thresholds)
    order = sorted(
        map(tuple, tied),
        key=lambda ix: (
            grid.gates[ix[2]],
            grid.min_area_fractions[ix[1]],
            abs(thresholds[ix[0]] - 0.5),
        ),
    )
    t, a, g = order[0]
    return int(t), int(a), int(g)


def tune(
    probs: np.ndarray,
    truth: np.ndarray,
    *,
    class_names: Sequence[str] = (),
    grid: TuneGrid | None = None,
    gate: bool = True,
    connectivity: int = 8,
    sizes: np.ndarray | None = None,
) -> tuple[PostprocessParams, dict]:
    """Tune every class on validation probabilities (N, H, W, C) against masks (N, H, W, C).

    Both are read `TUNE_CHUNK` images at a time (arrays, memory maps, or anything sliced by
    images, such as `search.promotion.arrays.OnDisk`); probabilities may be uint8 levels.
    `sizes` (N, 2) are the images' own sizes when a mixed-size split is padded.

    Returns the parameters and a summary: the tuned Kaggle Dice on this data, per class, and the
    raw (threshold 0.5) score for comparison.
    """
    _check_probs(probs)
    if truth.shape != probs.shape:
        raise ValueError(f"masks {truth.shape} and probabilities {probs.shape} differ in shape")
    if probs.shape[0] == 0:
        raise ValueError("cannot tune post-processing on zero images")
    # Masks: float {0,1} from the reader, or bool; compared > 0.5 a chunk at a time.
    grid = grid or default_grid(gate=gate)
    if 0.0 not in grid.gates or 0.0 not in grid.min_area_fractions:
        raise ValueError(
            "the grid must contain gate 0.0 (off) and min_area_fraction 0.0 (keep everything)"
        )
    n, height, width, classes = probs.shape
    pixels = image_pixels(sizes, n, height, width)
    # One pass over the images, a chunk at a time, every class of a chunk at once.
    shape = (classes, len(grid.thresholds), len(grid.min_area_fractions), len(grid.gates))
    cubes = np.zeros(shape)
    for lo in range(0, n, TUNE_CHUNK):
        chunk_probs = np.asarray(probs[lo : lo + TUNE_CHUNK])
        chunk_truth = np.asarray(truth[lo : lo + TUNE_CHUNK]) > 0.5
        chunk_pixels = pixels[lo : lo + TUNE_CHUNK]
        for c in range(classes):
            cubes[c] += _chunk_cube(
                chunk_probs[..., c], chunk_truth[..., c], grid, connectivity, chunk_pixels
            )
    cubes /= n
    per_class, scores = [], []
    for c in range(classes):
        t, a, g = _best_index(cubes[c], grid)
        per_class.append(_params_at(grid, t, a, g))
        scores.append(float(cubes[c, t, a, g]))
    result = PostprocessParams(tuple(per_class), tuple(class_names), connectivity)
    summary = {METRIC: float(np.mean(scores)), "val_dice_per_class": scores}
    return result, summary
