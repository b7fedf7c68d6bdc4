"""Dataset statistics: clean/defective counts, images per class, classes per image, areas.

    python -m data.stats shards=DIR_OR_URI [json=true]
    python -m data.stats labels=CSV [json=true]

`shards=` reads the shards (verifying each) and prints the figures per split and overall.
`labels=` computes them from a labels file alone (Kaggle old-layout train.csv, or a
per-class 0/1 flags CSV) when no images are at hand. `json=true` prints JSON instead.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from data import rle
from data.config import ConfigError, compose_schema, require, run_cli

__all__ = [
    "empty_prediction_score",
    "label_stats",
    "stats_from_rles",
    "labels_from_csv",
    "shard_stats",
    "main",
]


def label_stats(
    presence: np.ndarray, areas: np.ndarray | None, class_names: Sequence[str]
) -> dict[str, Any]:
    """Figures from per-image, per-class presence (N, C) and, if known, pixel areas (N, C)."""
    presence = np.asarray(presence, bool).reshape(-1, len(class_names))
    per_image = presence.sum(axis=1)
    stats: dict[str, Any] = {
        "images": int(presence.shape[0]),
        "defective": int((per_image > 0).sum()),
        "clean": int((per_image == 0).sum()),
        "images_per_class": {n: int(presence[:, k].sum()) for k, n in enumerate(class_names)},
        "images_with_n_classes": {
            str(n): int((per_image == n).sum()) for n in range(1, len(class_names) + 1)
        },
    }
    if areas is not None:
        areas = np.asarray(areas, np.int64).reshape(presence.shape)
        stats["area_pixels"] = {
            name: _distribution(areas[presence[:, k], k]) for k, name in enumerate(class_names)
        }
    return stats


def _distribution(values: np.ndarray) -> dict[str, float]:
    if values.size == 0:
        return {"count": 0}
    q = np.percentile(values, [0, 25, 50, 75, 100])
    return {
        "count": int(values.size),
        "mean": round(float(values.mean()), 1),
        "min": int(q[0]),
        "p25": float(q[1]),
        "median": float(q[2]),
        "p75": float(q[3]),
        "max": int(q[4]),
    }


def stats_from_rles(rles: Iterable[Sequence[str]], class_names: Sequence[str]) -> dict[str, Any]:
    """Figures from one RLE string per class per image (areas from run lengths, no decode)."""
    areas = np.array([[rle.area(s) for s in row] for row in rles], np.int64)
    areas = areas.reshape(-1, len(class_names))
    return label_stats(areas > 0, areas, class_names)


def labels_from_csv(path: Path) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """(presence, areas or None, class names) from a labels-only CSV.

    Accepts Kaggle's old layout (`ImageId_ClassId,EncodedPixels`, four rows per image, so
    clean images are listed) and a flags file (`ImageId_ClassId,1,2,3,4` with 0/1 values).
    The new layout lists only defective images, so it cannot give clean counts: refused.
    """
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    header = rows[0] if rows else []
    if header == ["ImageId_ClassId", "EncodedPixels"]:
        return _old_layout(path, rows[1:])
    if header[:1] in (["ImageId_ClassId"], ["ImageId"]) and all(h.isdigit() for h in header[1:]):
        flags = np.array([[v == "1" for v in row[1:]] for row in rows[1:]], bool)
        for number, row in enumerate(rows[1:], start=2):
            if len(row) != len(header) or any(v not in ("0", "1") for v in row[1:]):
                raise ValueError(f"{path} row {number}: expected {len(header) - 1} flags of 0/1")
        return flags, None, header[1:]
    raise ValueError(
        f"{path}: header {header} is not a labels-only layout; expected "
        "ImageId_ClassId,EncodedPixels (Kaggle old layout) or ImageId_ClassId,1,2,3,4 (flags). "
        "The new ImageId,ClassId,EncodedPixels layout omits clean images: build shards instead"
    )


def _old_layout(path: Path, rows: list[list[str]]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    index: dict[str, dict[int, int]] = {}
    for number, (key, encoded) in enumerate(rows, start=2):
        image_id, _, class_text = key.rpartition("_")
        classes = index.setdefault(image_id, {})
        if int(class_text) in classes:
            raise ValueError(f"{path} row {number}: duplicate row for {key}")
        classes[int(class_text)] = rle.area(encoded)
    names = sorted({c for classes in index.values() for c in classes})
    areas = np.array([[classes.get(c, 0) for c in names] for classes in index.values()])
    return areas > 0, areas, [str(c) for c in names]


def empty_prediction_score(uri: str, split: str, *, limit: int | None = None) -> dict[str, Any]:
    """The score of predicting no defect anywhere on a split's first `limit` images.

    Under the Kaggle metric an empty prediction scores 1 on an (image, class) pair whose mask
    is empty and 0 on any other, so the score is the share of empty pairs, read from the RLE
    column without decoding a pixel. Returns {"split", "images", "kaggle_dice", "per_class"}:
    the floor any model's score on the same images must clear to have learned anything.
    """
    from data.shards import read_manifest, read_split_rles

    manifest = read_manifest(uri)
    rles = read_split_rles(manifest, split)
    if limit is not None:
        rles = rles[:limit]
    if not rles:
        raise ValueError(f"{uri}: split {split!r} has no images to score")
    empty = np.array([[not text.strip() for text in row] for row in rles], dtype=bool)
    return {
        "split": split,
        "images": int(empty.shape[0]),
        "kaggle_dice": float(empty.mean()),
        "per_class": {
            name: float(empty[:, k].mean()) for k, name in enumerate(manifest.class_names)
        },
    }


def shard_stats(uri: str) -> dict[str, Any]:
    """Figures per split and overall, recomputed from the shards' RLE column."""
    from data.shards import read_manifest, read_split_rles

    manifest = read_manifest(uri)
    result: dict[str, Any] = {}
    everything: list[Sequence[str]] = []
    for split in manifest.splits:
        rles = read_split_rles(manifest, split)
        everything += rles
        result[split] = stats_from_rles(rles, manifest.class_names)
    result["all"] = stats_from_rles(everything, manifest.class_names)
    if manifest.dropped_clean:
        result["all"]["clean_left_out_of_train"] = manifest.dropped_clean
    if "dataset" in manifest.stats:
        # Every usable source image, also the clean ones that keep_clean=false left out of
        # the shards: the figures to compare with the source's published ones.
        result["source"] = manifest.stats["dataset"]
    return result


def format_stats(title: str, stats: dict[str, Any]) -> str:
    lines = [
        f"## {title}",
        f"images {stats['images']}  defective {stats['defective']}  clean {stats['clean']}"
        + (
            f"  (+{stats['clean_left_out_of_train']} clean left out of train)"
            if "clean_left_out_of_train" in stats
            else ""
        ),
        "images per class: " + "  ".join(f"{k}: {v}" for k, v in stats["images_per_class"].items()),
        "images with n classes: "
        + "  ".join(f"{k}: {v}" for k, v in stats["images_with_n_classes"].items()),
    ]
    for name, dist in stats.get("area_pixels", {}).items():
        figures = "  ".join(f"{k} {v}" for k, v in dist.items())
        lines.append(f"area of class {name} (pixels): {figures}")
    return "\n".join(lines)


@dataclass
class StatsConfig:
    """`python -m data.stats`'s keys: one of `shards` and `labels`."""

    shards: str | None = None  # a shard directory or URI (holds manifest.json)
    labels: str | None = None  # a labels-only CSV instead of shards
    json: bool = False  # print JSON instead of text


def main(argv: Sequence[str]) -> int:
    args = compose_schema(StatsConfig, argv, __doc__ or "")
    require(
        bool(args.shards) != bool(args.labels),
        f"shards={args.shards}, labels={args.labels}: give either shards=DIR_OR_URI or labels=CSV",
    )
    try:
        if args.labels:
            presence, areas, names = labels_from_csv(Path(args.labels))
            result = {"all": label_stats(presence, areas, names)}
        else:
            result = shard_stats(args.shards)
    except OSError as exc:
        key, value = ("labels", args.labels) if args.labels else ("shards", args.shards)
        raise ConfigError(f"{key}={value}: {exc.strerror or exc}") from None
    except ValueError as exc:  # ShardError and the CSV's errors name the file and row
        raise ConfigError(str(exc)) from None
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print("\n\n".join(format_stats(name, stats) for name, stats in result.items()))
    return 0


if __name__ == "__main__":
    run_cli(main)
