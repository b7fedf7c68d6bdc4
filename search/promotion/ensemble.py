"""Ensembles: mean of probabilities, greedy forward selection on validation, flip TTA.

Greedy selection follows Caruana et al. (2004), "Ensemble selection from libraries of
models": start from the best single model, then repeatedly add whichever model (a model may
be added again: selection WITH replacement) most raises the validation score of the mean of
the chosen members' probabilities; stop when nothing raises it. With replacement, a member
chosen twice gets twice the weight, so the result is a weighted mean whose weights are
counts / total, and a weak model never dilutes a strong one just by being present.

The selection score is the validation Kaggle Dice after the best per-class probability
threshold, computed from per-image histograms so that each candidate costs one pass over the
probabilities. The full post-processing (min areas, gates) is tuned afterwards on the
chosen ensemble by `search.promotion.postprocess.tune`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from search.promotion.postprocess import LEVELS, PostprocessParams, cut, dice_from_counts

__all__ = [
    "EnsembleSpec",
    "Member",
    "Mixture",
    "Selection",
    "greedy_selection",
    "mean_probabilities",
    "predict_with_tta",
    "single_model_spec",
    "threshold_tuned_dice",
    "TTA_FLIPS",
]

# Axes of an (B, H, W, C) batch: "h" mirrors left-right (W), "v" mirrors top-bottom (H).
TTA_FLIPS: dict[str, tuple[int, ...]] = {"none": (), "h": (2,), "v": (1,)}


def mean_probabilities(
    probabilities: Sequence[np.ndarray], weights: Sequence[float] | None = None
) -> np.ndarray:
    """Weighted mean of same-shaped probability arrays.

    float32 for float members; for uint8 levels (`search.promotion.postprocess.quantise`) the
    mean is rounded back to uint8 levels, the one rule shared by promotion and
    `search.predict`.
    """
    if not probabilities:
        raise ValueError("an ensemble needs at least one member")
    shape = probabilities[0].shape
    for i, probs in enumerate(probabilities):
        if probs.shape != shape:
            raise ValueError(f"member {i} has probabilities of shape {probs.shape}, not {shape}")
    weights = np.ones(len(probabilities)) if weights is None else np.asarray(weights, float)
    if weights.shape != (len(probabilities),) or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(
            f"weights must be {len(probabilities)} non-negative numbers, got {weights}"
        )
    levels = all(np.asarray(p).dtype == np.uint8 for p in probabilities)
    if levels and np.count_nonzero(weights) == 1:
        return np.asarray(probabilities[int(np.flatnonzero(weights)[0])])
    total = np.zeros(shape, dtype=np.float32)
    for probs, weight in zip(probabilities, weights / weights.sum(), strict=True):
        if weight > 0:
            total += np.float32(weight) * np.asarray(probs).astype(np.float32, copy=False)
    if levels:
        return np.rint(np.clip(total, 0, LEVELS)).astype(np.uint8)
    return total


class Mixture:
    """The weighted mean of members that may be memory-mapped, computed a slice at a time:
    `mixture[lo:hi]` reads only those images of every member. Has `shape` and `dtype`, so
    chunked scorers (`threshold_tuned_dice`, `search.promotion.postprocess.tune`) take it for
    an array."""

    def __init__(self, members: Sequence[np.ndarray], weights: Sequence[float]) -> None:
        self.members = [m for m, w in zip(members, weights, strict=True) if w > 0]
        self.weights = [w for w in weights if w > 0]
        self.shape = members[0].shape
        self.dtype = members[0].dtype
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: slice) -> np.ndarray:
        if not isinstance(index, slice):
            raise TypeError("a Mixture is read by slices of images: mixture[lo:hi]")
        return mean_probabilities([m[index] for m in self.members], self.weights)


def predict_with_tta(
    predict: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
    *,
    flips: Sequence[str] = ("none", "h", "v"),
) -> np.ndarray:
    """Mean of `predict` over flipped copies of a batch, each flipped back before averaging."""
    unknown = [f for f in flips if f not in TTA_FLIPS]
    if unknown or not flips:
        raise ValueError(f"unknown TTA flips {unknown or flips}; valid: {sorted(TTA_FLIPS)}")
    total = None
    for name in flips:
        axes = TTA_FLIPS[name]
        view = np.flip(images, axis=axes) if axes else images
        probs = np.asarray(predict(np.ascontiguousarray(view)), dtype=np.float32)
        probs = np.flip(probs, axis=axes) if axes else probs
        total = probs if total is None else total + probs
    return total / np.float32(len(flips))


def threshold_tuned_dice(
    probs: np.ndarray, truth: np.ndarray, *, bins: int = 20, chunk: int = 16
) -> float:
    """Kaggle Dice with the best per-class threshold from {1/bins, ..., (bins-1)/bins}.

    A pixel with probability p is predicted at threshold k/bins when floor(p * bins) >= k (on
    uint8 levels q: when q >= cut(k/bins), as post-processing decides), so per-image
    histograms of all pixels and of true pixels give every threshold's Dice at once.
    `probs` and `truth` are read `chunk` images at a time (memory maps and `Mixture` serve).
    """
    n, _, _, classes = probs.shape
    level_bins = _level_bins(bins)  # for uint8 levels: each level's bin, looked up
    pred_hist = np.zeros((classes, n, bins), dtype=np.int64)
    true_hist = np.zeros((classes, n, bins), dtype=np.int64)
    for lo in range(0, n, chunk):
        p = np.asarray(probs[lo : lo + chunk])
        t = np.asarray(truth[lo : lo + chunk]) > 0.5
        k = p.shape[0]
        image = np.arange(k).reshape(k, 1, 1) * bins
        for c in range(classes):  # one class at a time: the int64 bins of a chunk are big
            if p.dtype == np.uint8:
                binned = level_bins[p[..., c]]
            else:
                binned = np.clip((p[..., c] * bins).astype(np.int64), 0, bins - 1)
            index = (binned + image).reshape(-1)
            pred_hist[c, lo : lo + k] = np.bincount(index, minlength=k * bins).reshape(k, bins)
            hits = index[t[..., c].reshape(-1)]
            true_hist[c, lo : lo + k] = np.bincount(hits, minlength=k * bins).reshape(k, bins)
    # Pixels at or above bin k, for every k: reverse cumulative sums.
    pred_sum = np.cumsum(pred_hist[..., ::-1], axis=-1)[..., ::-1][..., 1:]
    inter = np.cumsum(true_hist[..., ::-1], axis=-1)[..., ::-1][..., 1:]
    truth_sum = true_hist.sum(axis=-1, keepdims=True)
    dice = dice_from_counts(inter, pred_sum + truth_sum)  # (C, N, bins-1)
    return float(dice.mean(axis=1).max(axis=1).mean())


def _level_bins(bins: int) -> np.ndarray:
    """For every uint8 level, how many of the thresholds 1/bins..(bins-1)/bins it reaches."""
    cuts = np.asarray([cut(k / bins) for k in range(1, bins)])
    return (np.arange(LEVELS + 1)[:, None] >= cuts[None, :]).sum(axis=1).astype(np.int64)


@dataclass(frozen=True)
class Selection:
    counts: tuple[int, ...]  # times each candidate was chosen
    score: float  # validation score of the selected ensemble
    history: tuple[tuple[int, float], ...]  # (candidate added, score after adding it)
    rejected: str | None = None  # why a larger mixture was set aside for the single model

    @property
    def weights(self) -> tuple[float, ...]:
        total = sum(self.counts)
        return tuple(c / total for c in self.counts)

    @property
    def members(self) -> tuple[int, ...]:
        return tuple(i for i, c in enumerate(self.counts) if c > 0)


def greedy_selection(
    val_probabilities: Sequence[np.ndarray],
    truth: np.ndarray,
    *,
    max_size: int | None = None,
    score: Callable[[np.ndarray, np.ndarray], float] = threshold_tuned_dice,
    tolerance: float = 1e-6,
    start: int | None = None,
) -> Selection:
    """Greedy forward selection with replacement; ties go to the earlier candidate.

    `start` is the member to start from (the caller's best single model, e.g. by fully tuned
    validation score); None starts from the best candidate by `score`. A model is added only
    while it raises the score by more than `tolerance`, so the start is kept alone when
    nothing improves on it.
    """
    if not val_probabilities:
        raise ValueError("greedy selection needs at least one candidate model")
    max_size = max_size or 2 * len(val_probabilities)
    if start is None:
        singles = [score(p, truth) for p in val_probabilities]
        first = int(np.argmax(singles))
        first_score = singles[first]
    else:
        if not 0 <= start < len(val_probabilities):
            raise ValueError(
                f"start={start}: expected a candidate index in 0..{len(val_probabilities) - 1}"
            )
        first, first_score = start, score(val_probabilities[start], truth)
    counts = [0] * len(val_probabilities)
    counts[first] = 1
    best, history = first_score, [(first, first_score)]
    while sum(counts) < max_size:
        # Each trial mixture is read a chunk at a time by the score: no split-sized sum is
        # held, so the candidates' probabilities may be memory-mapped files of any size.
        trials = []
        for i in range(len(val_probabilities)):
            trial = list(counts)
            trial[i] += 1
            trials.append(score(Mixture(val_probabilities, trial), truth))
        pick = int(np.argmax(trials))
        if trials[pick] <= best + tolerance:
            break
        counts[pick] += 1
        best = trials[pick]
        history.append((pick, best))
    return Selection(tuple(counts), float(best), tuple(history))


@dataclass(frozen=True)
class Member:
    name: str  # e.g. "unet-3f2a1_00001"
    path: str  # model file, relative to the folder holding ensemble.json
    weight: float


@dataclass(frozen=True)
class EnsembleSpec:
    """What `final/ensemble.json` holds: enough to rebuild predictions from the files alone."""

    members: tuple[Member, ...]
    postprocess: PostprocessParams
    class_names: tuple[str, ...]
    tta: bool = False
    flips: tuple[str, ...] = ("none",)
    extra: Mapping = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "members": [m.__dict__ for m in self.members],
                "postprocess": self._named_postprocess().to_dict(),
                "class_names": list(self.class_names),
                "tta": self.tta,
                "flips": list(self.flips),
                **dict(self.extra),
            },
            indent=2,
        )

    def _named_postprocess(self) -> PostprocessParams:
        """The post-processing with the ensemble's class names, when it carries none."""
        post = self.postprocess
        if post.class_names:
            return post
        return PostprocessParams(post.classes, self.class_names, post.connectivity)

    @classmethod
    def from_json(cls, text: str, *, where: str) -> EnsembleSpec:
        try:
            data = json.loads(text)
            members = tuple(
                Member(str(m["name"]), str(m["path"]), float(m["weight"])) for m in data["members"]
            )
            class_names = tuple(str(c) for c in data["class_names"])
            flips = tuple(data.get("flips", ["none"]))
            tta = bool(data.get("tta", False))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"{where}: not a valid ensemble description ({exc}); expected keys members "
                "[{name, path, weight}], postprocess, class_names, tta, flips"
            ) from exc
        if not members:
            raise ValueError(f"{where}: the ensemble has no members")
        if "postprocess" not in data:
            raise ValueError(f"{where}: no postprocess parameters")
        post = PostprocessParams.from_dict(data["postprocess"], where=where)
        if post.class_names and post.class_names != class_names:
            raise ValueError(
                f"{where}: the post-processing is for classes {list(post.class_names)} but the "
                f"ensemble's class_names are {list(class_names)}"
            )
        return cls(members, post, class_names, tta, flips)


def single_model_spec(
    name: str,
    model_file: str,
    post: PostprocessParams,
    class_names: Sequence[str],
    *,
    tta: bool = False,
    flips: Sequence[str] = ("none",),
) -> EnsembleSpec:
    """The sidecar JSON of one promoted model: an ensemble of one member with weight 1."""
    return EnsembleSpec(
        (Member(name, model_file, 1.0),), post, tuple(class_names), tta, tuple(flips)
    )
