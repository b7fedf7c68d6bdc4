"""Kaggle Severstal layout: `train.csv` (either Kaggle layout) and `train_images/`.

Old layout `ImageId_ClassId,EncodedPixels`: four rows per image, empty for no defect.
New layout `ImageId,ClassId,EncodedPixels`: only (image, class) pairs with a defect.
In both, an image in `train_images/` without any row is clean.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from data import rle
from data.images import ImageError, image_size
from data.sources._base import Entry, Problems, Scan, SourceError, load_image_file

__all__ = ["scan_severstal", "read_label_rows"]

OLD_HEADER = ["ImageId_ClassId", "EncodedPixels"]
NEW_HEADER = ["ImageId", "ClassId", "EncodedPixels"]


def read_label_rows(csv_path: Path, num_classes: int) -> list[tuple[int, str, int, str]]:
    """Rows of a Kaggle train.csv in either layout as (row, image, class 0-based, rle).

    Raises SourceError naming the file and row for a bad header, class id or row shape.
    Row numbers count the header as row 1, as a spreadsheet shows them.
    """
    with csv_path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header not in (OLD_HEADER, NEW_HEADER):
            raise SourceError(
                f"{csv_path}: header {header} is neither Kaggle layout "
                f"{','.join(OLD_HEADER)} nor {','.join(NEW_HEADER)}"
            )
        old = header == OLD_HEADER
        return [
            _parse_row(csv_path, number, fields, old, num_classes)
            for number, fields in enumerate(reader, start=2)
            if fields
        ]


def _parse_row(
    csv_path: Path, number: int, fields: list[str], old: bool, num_classes: int
) -> tuple[int, str, int, str]:
    expected = 2 if old else 3
    if len(fields) != expected:
        raise SourceError(f"{csv_path} row {number}: {len(fields)} fields, expected {expected}")
    if old:
        image_id, _, class_text = fields[0].rpartition("_")
        encoded = fields[1]
    else:
        image_id, class_text, encoded = fields
    if not class_text.isdigit() or not 1 <= int(class_text) <= num_classes:
        raise SourceError(
            f"{csv_path} row {number}: class id {class_text!r} for image {image_id!r}; "
            f"expected an integer 1..{num_classes}"
        )
    return number, image_id, int(class_text) - 1, encoded


def scan_severstal(cfg: Mapping[str, Any], problems: Problems) -> Scan:
    root = Path(cfg["root"])
    csv_path = root / cfg["csv"]
    image_dir = root / cfg["image_dir"]
    for path in (csv_path, image_dir):
        if not path.exists():
            raise SourceError(f"{path}: not found (dataset.root={cfg['root']!r})")
    class_names = list(cfg["class_names"])
    expected_shape = tuple(cfg["image_shape"]) if cfg.get("image_shape") else None
    rows = read_label_rows(csv_path, len(class_names))
    files = {p.name: p for p in sorted(image_dir.iterdir()) if p.is_file()}
    scan = Scan(entries=[])
    scan.add_to_fingerprint(csv_path.read_bytes())
    labels, bad_images = _group_rows(csv_path, rows, files, problems)
    for name, path in files.items():
        if name in bad_images:
            continue
        stat = path.stat()
        scan.add_to_fingerprint(name, stat.st_size, stat.st_mtime_ns)
        entry = _entry(path, labels.get(name, {}), class_names, expected_shape, csv_path, problems)
        if entry is not None:
            scan.entries.append(entry)
    return scan


def _group_rows(
    csv_path: Path,
    rows: list[tuple[int, str, int, str]],
    files: Mapping[str, Path],
    problems: Problems,
) -> tuple[dict[str, dict[int, tuple[int, str]]], set[str]]:
    """image -> class -> (row, rle); images whose rows are bad (skipped) are returned apart."""
    labels: dict[str, dict[int, tuple[int, str]]] = {}
    bad: set[str] = set()
    for number, image_id, class_index, encoded in rows:
        if image_id in bad:
            continue
        if image_id not in files:
            bad.add(image_id)
            problems.report(
                f"{csv_path.name} row {number}",
                f"{csv_path} row {number}: image {image_id!r} is not in {csv_path.parent}/"
                f"{_image_dir_name(files)} (a label without its image)",
            )
            continue
        classes = labels.setdefault(image_id, {})
        if class_index in classes:
            bad.add(image_id)
            first = classes[class_index][0]
            problems.report(
                f"{csv_path.name} row {number}",
                f"{csv_path} row {number}: duplicate of row {first} "
                f"(image {image_id!r}, class {class_index + 1}); each pair must appear once",
            )
            continue
        classes[class_index] = (number, encoded)
    for image_id in bad:
        labels.pop(image_id, None)
    return labels, bad


def _image_dir_name(files: Mapping[str, Path]) -> str:
    first = next(iter(files.values()), None)
    return first.parent.name if first is not None else "train_images"


def _entry(
    path: Path,
    classes: Mapping[int, tuple[int, str]],
    class_names: list[str],
    expected_shape: tuple[int, ...] | None,
    csv_path: Path,
    problems: Problems,
) -> Entry | None:
    try:
        height, width = image_size(path)
    except ImageError as exc:
        problems.report(path.name, str(exc))
        return None
    if expected_shape is not None and (height, width) != expected_shape:
        problems.report(
            path.name,
            f"{path}: image is {height}x{width} (HxW), expected {expected_shape[0]}x"
            f"{expected_shape[1]} (dataset.image_shape; set it to null to allow any size)",
        )
        return None
    rles = []
    for class_index in range(len(class_names)):
        number, encoded = classes.get(class_index, (0, ""))
        where = f"{csv_path} row {number}, image {path.name}, class {class_index + 1}"
        try:
            rle.parse(encoded, height, width, where=where)
        except rle.RLEError as exc:
            problems.report(f"{csv_path.name} row {number}", str(exc))
            return None
        rles.append(" ".join(encoded.split()))
    load = functools.partial(load_image_file, path, height, width)
    return Entry(path.name, height, width, tuple(rles), load)
