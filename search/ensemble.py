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
chosen ensemble by `search.postprocess.tune`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from search.postprocess import PostprocessParams

__all__ = [
    "EnsembleSpec",
    "Member",
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
    """Weighted mean of same-shaped probability arrays (float32)."""
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
    total = np.zeros(shape, dtype=np.float32)
    for probs, weight in zip(probabilities, weights / weights.sum(), strict=True):
        if weight > 0:
            total += np.float32(weight) * probs.astype(np.float32, copy=False)
    return total


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
    probs: np.ndarray, truth: np.ndarray, *, bins: int = 20, chunk: int = 64
) -> float:
    """Kaggle Dice with the best per-class threshold from {1/bins, ..., (bins-1)/bins}.

    A pixel with probability p is predicted at threshold k/bins when floor(p * bins) >= k, so
    per-image histograms of all pixels and of true pixels give every threshold's Dice at once.
    """
    n, _, _, classes = probs.shape
    pred_hist = np.zeros((classes, n, bins), dtype=np.int64)
    true_hist = np.zeros((classes, n, bins), dtype=np.int64)
    for lo in range(0, n, chunk):
        p = probs[lo : lo + chunk]
        t = truth[lo : lo + chunk] > 0.5
        k = p.shape[0]
        binned = np.clip((p * bins).astype(np.int64), 0, bins - 1)
        image = np.arange(k).reshape(k, 1, 1, 1) * bins
        for c in range(classes):
            index = (binned[..., c] + image[..., 0]).reshape(-1)
            pred_hist[c, lo : lo + k] = np.bincount(index, minlength=k * bins).reshape(k, bins)
            hits = index[t[..., c].reshape(-1)]
            true_hist[c, lo : lo + k] = np.bincount(hits, minlength=k * bins).reshape(k, bins)
    # Pixels at or above bin k, for every k: reverse cumulative sums.
    pred_sum = np.cumsum(pred_hist[..., ::-1], axis=-1)[..., ::-1][..., 1:]
    inter = np.cumsum(true_hist[..., ::-1], axis=-1)[..., ::-1][..., 1:]
    truth_sum = true_hist.sum(axis=-1, keepdims=True)
    total = pred_sum + truth_sum
    dice = np.where(total > 0, 2.0 * inter / np.maximum(total, 1), 1.0)  # (C, N, bins-1)
    return float(dice.mean(axis=1).max(axis=1).mean())


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
    total = val_probabilities[first].astype(np.float32)
    best, history = first_score, [(first, first_score)]
    while sum(counts) < max_size:
        size = sum(counts)
        trials = [
            score((total + p.astype(np.float32)) / np.float32(size + 1), truth)
            for p in val_probabilities
        ]
        pick = int(np.argmax(trials))
        if trials[pick] <= best + tolerance:
            break
        counts[pick] += 1
        total += val_probabilities[pick].astype(np.float32)
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
                "postprocess": self.postprocess.to_dict(),
                "class_names": list(self.class_names),
                "tta": self.tta,
                "flips": list(self.flips),
                **dict(self.extra),
            },
            indent=2,
        )

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
        post = PostprocessParams.from_dict(data.get("postprocess", {}), where=where)
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
