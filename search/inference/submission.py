"""Kaggle-format submission files for Severstal-style segmentation.

Two layouts, both with Kaggle's RLE (1-indexed, column-major, sorted `start length` pairs,
see `data.rle`) and 1-based class ids (Severstal's ClassId 1..4; NEU-Seg's 1..3):

- `kaggle_old`: the competition's original layout, `ImageId_ClassId,EncodedPixels`, with one
  row for EVERY image x class (`0000f269f.jpg_1,...`) and an empty EncodedPixels for an
  empty mask. This is the layout of the original sample_submission.csv.
- `kaggle_new`: the layout Kaggle switched the data to later (the shared sample's train.csv),
  `ImageId,ClassId,EncodedPixels`, with rows only for non-empty masks; a missing
  (image, class) pair means "no defect". Kaggle's scorer reads columns by header name.

Every RLE string written is parsed back through `data.rle.parse`, which rejects unsorted or
overlapping runs, so a file this module writes is valid by construction.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from data import rle

__all__ = ["FORMATS", "SubmissionWriter", "read_submission", "score_submission", "write_submission"]

FORMATS: dict[str, tuple[str, ...]] = {
    "kaggle_old": ("ImageId_ClassId", "EncodedPixels"),
    "kaggle_new": ("ImageId", "ClassId", "EncodedPixels"),
}


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"format={fmt!r} is not a submission layout; valid: {', '.join(FORMATS)}")


class SubmissionWriter:
    """Streams (image_id, masks (H, W, C)) into a CSV; the file appears only on `close()`.

    It writes to a temporary file beside `path` and renames it when complete, so an
    interrupted prediction never leaves a half-written submission.csv that looks finished.
    """

    def __init__(self, path: str | Path, *, fmt: str, class_ids: Sequence[int]) -> None:
        _check_format(fmt)
        self.path = Path(path)
        self.fmt = fmt
        self.class_ids = tuple(int(c) for c in class_ids)
        self.rows = 0
        self._seen: set[str] = set()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, self._tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        self._file = os.fdopen(handle, "w", newline="")
        self._csv = csv.writer(self._file)
        self._csv.writerow(FORMATS[fmt])

    def add(self, image_id: str, masks: np.ndarray) -> None:
        if masks.ndim != 3 or masks.shape[-1] != len(self.class_ids):
            raise ValueError(
                f"{image_id}: expected masks of shape (H, W, {len(self.class_ids)}), "
                f"got {masks.shape}"
            )
        if image_id in self._seen:
            raise ValueError(f"{image_id}: image id written twice to {self.path}")
        self._seen.add(image_id)
        height, width = masks.shape[:2]
        for c, class_id in enumerate(self.class_ids):
            encoded = rle.encode(masks[..., c])
            rle.parse(encoded, height, width, where=f"{image_id} class {class_id}")
            if self.fmt == "kaggle_old":
                self._csv.writerow((f"{image_id}_{class_id}", encoded))
                self.rows += 1
            elif encoded:
                self._csv.writerow((image_id, class_id, encoded))
                self.rows += 1

    def close(self) -> Path:
        self._file.close()
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        self._file.close()
        Path(self._tmp).unlink(missing_ok=True)

    def __enter__(self) -> SubmissionWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_submission(
    path: str | Path,
    predictions: Iterable[tuple[str, np.ndarray]],
    *,
    fmt: str = "kaggle_old",
    class_ids: Sequence[int],
) -> int:
    """Write every (image_id, masks (H, W, C)) pair; returns the number of data rows."""
    with SubmissionWriter(path, fmt=fmt, class_ids=class_ids) as writer:
        for image_id, masks in predictions:
            writer.add(image_id, masks)
    return writer.rows


def read_submission(
    path: str | Path,
    *,
    shapes: dict[str, tuple[int, int]],
    class_ids: Sequence[int],
    fmt: str | None = None,
) -> dict[str, np.ndarray]:
    """Decode a submission back into {image_id: bool masks (H, W, C)} through `data.rle`.

    `shapes` gives each image's (H, W); images absent from a kaggle_new file are all empty.
    """
    path = Path(path)
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = tuple(next(reader, ()))
        found = next((name for name, cols in FORMATS.items() if cols == header), None)
        if found is None or (fmt is not None and found != fmt):
            want = FORMATS[fmt] if fmt else " or ".join(",".join(c) for c in FORMATS.values())
            raise ValueError(f"{path}: header {','.join(header)!r} is not {want}")
        column = {c: i for i, c in enumerate(class_ids)}
        masks = {
            image: np.zeros((*shape, len(class_ids)), dtype=bool) for image, shape in shapes.items()
        }
        for line, row in enumerate(reader, start=2):
            image, class_id, encoded = _split_row(row, found, path, line)
            if image not in masks or class_id not in column:
                raise ValueError(f"{path} row {line}: unknown image {image!r} or class {class_id}")
            height, width = shapes[image]
            where = f"{path} row {line}, image {image}, class {class_id}"
            masks[image][..., column[class_id]] = rle.decode(encoded, height, width, where=where)
    return masks


def _split_row(row: list[str], fmt: str, path: Path, line: int) -> tuple[str, int, str]:
    try:
        if fmt == "kaggle_old":
            key, encoded = row
            image, class_id = key.rsplit("_", 1)
        else:
            image, class_id, encoded = row
        return image, int(class_id), encoded
    except ValueError as exc:
        raise ValueError(f"{path} row {line}: cannot read {row!r} as {fmt} ({exc})") from exc


def _pixels(encoded: str, size: int, where: str) -> np.ndarray:
    """The 1-indexed pixel numbers an RLE sets, sorted (a mask's area, not its image)."""
    starts, lengths = rle.parse(encoded, size, 1, where=where)
    if starts.size == 0:
        return starts
    offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(starts, lengths) + offsets


def _pairs(path: Path) -> dict[tuple[str, int], str]:
    """{(image, class id): RLE} of a submission or solution in either layout."""
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = tuple(next(reader, ()))
        fmt = next((name for name, cols in FORMATS.items() if cols == header), None)
        if fmt is None:
            layouts = " or ".join(",".join(c) for c in FORMATS.values())
            raise ValueError(f"{path}: header {','.join(header)!r} is not {layouts}")
        pairs: dict[tuple[str, int], str] = {}
        for line, row in enumerate(reader, start=2):
            image, class_id, encoded = _split_row(row, fmt, path, line)
            if (image, class_id) in pairs:
                raise ValueError(f"{path} row {line}: image {image!r} class {class_id} twice")
            pairs[(image, class_id)] = encoded
    return pairs


def score_submission(
    submission: str | Path, solution: str | Path, *, image_pixels: int = 256 * 1600
) -> dict[str, object]:
    """Kaggle Dice of a submission against a solution (both either layout), as Kaggle scores
    it: the mean over the solution's every (image, class) pair, empty/empty = 1; a pair the
    submission leaves out is an empty prediction. Also the predict-nothing score of the same
    pairs. Works on the RLE runs, one pair at a time: memory does not grow with the images.

    An image or class the solution does not have is an error naming the row's pair."""
    submission, solution = Path(submission), Path(solution)
    truth = _pairs(solution)
    predicted = _pairs(submission)
    unknown = sorted(set(predicted) - set(truth))
    if unknown:
        image, class_id = unknown[0]
        raise ValueError(
            f"{submission}: image {image!r} class {class_id} is not in {solution} "
            f"({len(unknown)} such pair(s))"
        )
    classes = sorted({c for _, c in truth})
    dice: dict[int, list[float]] = {c: [] for c in classes}
    empty: dict[int, list[float]] = {c: [] for c in classes}
    for (image, class_id), encoded in truth.items():
        where = f"image {image} class {class_id}"
        true = _pixels(encoded, image_pixels, f"{solution}, {where}")
        pred = _pixels(predicted.get((image, class_id), ""), image_pixels, f"{submission}, {where}")
        total = true.size + pred.size
        common = np.intersect1d(true, pred, assume_unique=True).size if total else 0
        dice[class_id].append(1.0 if total == 0 else 2.0 * common / total)
        empty[class_id].append(1.0 if true.size == 0 else 0.0)
    every = [d for c in classes for d in dice[c]]
    nothing = [d for c in classes for d in empty[c]]
    return {
        "images": len({image for image, _ in truth}),
        "kaggle_dice": float(np.mean(every)),
        "per_class": {str(c): float(np.mean(dice[c])) for c in classes},
        "predict_nothing": float(np.mean(nothing)),
        "lift": float(np.mean(every) - np.mean(nothing)),
    }
