"""Deterministic train/val/test assignment from a seed.

Each split's images are stored in a seeded random order (not by image id), so the first N
records of a split (`limit=N` in the reader, `train.limit_train` in a search) are a uniform
random sample of it. Sources whose ids follow the classes (NEU-Seg numbers its images class by
class) would otherwise hand a small limit one class only.

`test` is held out from the full distribution (clean and defective images in proportion).
`train`/`val` split the remaining defective images (the paper: 95/5); the remaining clean
images join them only with keep_clean, otherwise they are left out and counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from data.config import ConfigError
from data.sources import Entry

__all__ = ["SPLIT_NAMES", "assign_splits"]

SPLIT_NAMES = ("train", "val", "test")


def assign_splits(
    entries: Sequence[Entry], split: Mapping[str, Any]
) -> tuple[dict[str, list[Entry]], list[Entry]]:
    """({split name: entries in the split's seeded order}, the clean images left out of train/val).

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
        for name in ("train", "val"):
            dropped += [e for e in parts[name] if not e.defective]
            parts[name] = [e for e in parts[name] if e.defective]
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


def _seeded_splits(entries: Sequence[Entry], split: Mapping[str, Any]) -> dict[str, list[Entry]]:
    rng = np.random.default_rng(int(split["seed"]))
    parts: dict[str, list[Entry]] = {name: [] for name in SPLIT_NAMES}
    # Defective and clean are drawn apart so the test split keeps their exact proportion.
    for group in ([e for e in entries if e.defective], [e for e in entries if not e.defective]):
        order = [group[i] for i in rng.permutation(len(group))]
        n_test = _portion(len(order), float(split["test_fraction"]))
        rest = order[n_test:]
        n_val = _portion(len(rest), float(split["val_fraction"]))
        parts["test"] += order[:n_test]
        parts["val"] += rest[:n_val]
        parts["train"] += rest[n_val:]
    return parts


def _portion(count: int, fraction: float) -> int:
    """round(fraction * count), but at least one when the fraction is positive and count >= 2."""
    if fraction <= 0 or count < 2:
        return 0
    return min(count - 1, max(1, round(fraction * count)))
