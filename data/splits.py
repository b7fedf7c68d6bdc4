"""Deterministic train/val/test assignment from a seed.

Each split's images are stored in a seeded random order (not by image id), so the first N
records of a split (`limit=N` in the reader, `train.limit_train` in a search) are a uniform
random sample of it. Sources whose ids follow the classes (NEU-Seg numbers its images class by
class) would otherwise hand a small limit one class only.

`test` and `val` are both drawn from the full distribution, stratified by which classes an
image has (its class set: no class, {1}, {1, 3}, ...), so each holds clean images, and every
class combination, in the proportion the dataset does. Post-processing is tuned on val, and its
image gates and minimum areas exist to suppress false positives on clean images: a val without
them would tune those knobs on a distribution test does not have. `keep_clean` decides only
what `train` holds (the paper trained on defective images only); the clean images it leaves
out are returned and counted.

Each stratum's share of a split is its exact proportion rounded by largest remainder, so the
split's size is round(fraction * images) whatever the number of strata.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from data.config import ConfigError
from data.sources import Entry

__all__ = ["SPLIT_METHOD", "SPLIT_NAMES", "assign_splits", "class_set"]

SPLIT_NAMES = ("train", "val", "test")
# Part of the shards' input fingerprint: shards split another way are not current. 2: val and
# test stratified by class set, clean images kept in both (1: clean dropped from val too).
SPLIT_METHOD = 2


def assign_splits(
    entries: Sequence[Entry], split: Mapping[str, Any]
) -> tuple[dict[str, list[Entry]], list[Entry]]:
    """({split name: entries in the split's seeded order}, the clean images left out of train).

    The result depends only on the entries' ids and the seed, never on the input order.
    """
    _check(split)
    ordered = sorted(entries, key=lambda e: e.image_id)
    if split["use_source_splits"]:
        parts = _source_splits(ordered)
    else:
        parts = _seeded_splits(ordered, split)
    dropped: list[Entry] = []
    if not split["keep_clean"]:
        dropped = [e for e in parts["train"] if not e.defective]
        parts["train"] = [e for e in parts["train"] if e.defective]
    return {name: _seeded_order(parts[name], split, name) for name in SPLIT_NAMES}, dropped


def _seeded_order(entries: Sequence[Entry], split: Mapping[str, Any], name: str) -> list[Entry]:
    """The entries sorted by id, then permuted by a generator seeded with (seed, split name)."""
    ordered = sorted(entries, key=lambda e: e.image_id)
    rng = np.random.default_rng([int(split["seed"]), SPLIT_NAMES.index(name)])
    return [ordered[i] for i in rng.permutation(len(ordered))]


def _check(split: Mapping[str, Any]) -> None:
    for key in ("seed", "val_fraction", "test_fraction", "keep_clean", "use_source_splits"):
        if key not in split:
            raise ConfigError(f"dataset.split.{key} is missing; see data/conf/dataset/*.yaml")
    for key in ("val_fraction", "test_fraction"):
        if not 0.0 <= float(split[key]) < 1.0:
            raise ConfigError(f"dataset.split.{key}={split[key]}: expected a fraction in [0, 1)")


def _source_splits(entries: Sequence[Entry]) -> dict[str, list[Entry]]:
    parts: dict[str, list[Entry]] = {name: [] for name in SPLIT_NAMES}
    for entry in entries:
        if entry.subset not in parts:
            raise ConfigError(
                f"dataset.split.use_source_splits=true but {entry.image_id!r} is in subset "
                f"{entry.subset!r}; expected subfolders named {', '.join(SPLIT_NAMES)} "
                "(or set use_source_splits=false)"
            )
        parts[entry.subset].append(entry)
    return parts


def class_set(entry: Entry) -> tuple[int, ...]:
    """The classes an image has (0-based), its stratum: () for a clean image."""
    return tuple(k for k, encoded in enumerate(entry.rles) if encoded)


def _seeded_splits(entries: Sequence[Entry], split: Mapping[str, Any]) -> dict[str, list[Entry]]:
    rng = np.random.default_rng(int(split["seed"]))
    strata: dict[tuple[int, ...], list[Entry]] = {}
    for entry in entries:  # entries come sorted by id, so each stratum is too
        strata.setdefault(class_set(entry), []).append(entry)
    keys = sorted(strata)
    shuffled = {key: [strata[key][i] for i in rng.permutation(len(strata[key]))] for key in keys}
    parts: dict[str, list[Entry]] = {name: [] for name in SPLIT_NAMES}
    n_test = _allocate({k: len(v) for k, v in shuffled.items()}, float(split["test_fraction"]))
    rest = {key: shuffled[key][n_test[key] :] for key in keys}
    n_val = _allocate({k: len(v) for k, v in rest.items()}, float(split["val_fraction"]))
    for key in keys:
        parts["test"] += shuffled[key][: n_test[key]]
        parts["val"] += rest[key][: n_val[key]]
        parts["train"] += rest[key][n_val[key] :]
    return parts


def _allocate(sizes: Mapping[tuple[int, ...], int], fraction: float) -> dict[tuple[int, ...], int]:
    """How many of each stratum go to a split of `fraction` of all images (largest remainder).

    The total is round(fraction * images), at least one when the fraction is positive and there
    are two images or more, and never every image.
    """
    total = sum(sizes.values())
    if fraction <= 0 or total < 2:
        return {key: 0 for key in sizes}
    wanted = min(total - 1, max(1, round(fraction * total)))
    exact = {key: fraction * size for key, size in sizes.items()}
    counts = {key: int(np.floor(value)) for key, value in exact.items()}
    # Largest remainders first; ties go to the larger stratum, then the smaller class set.
    order = sorted(sizes, key=lambda k: (-(exact[k] - counts[k]), -sizes[k], k))
    for key in order[: max(0, wanted - sum(counts.values()))]:
        counts[key] += 1
    return counts
