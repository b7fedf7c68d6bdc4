"""Images plus same-named integer-label mask PNGs (0 = background, 1..K = classes).

Flat (`<root>/<image_dir>/*.jpg` + `<root>/<mask_dir>/*.png`) or split into subfolders
(`<root>/<image_dir>/<subset>/...`, e.g. NEU-Seg's img_dir/ann_dir with train/val/test).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from data import rle
from data.images import ImageError, image_size
from data.sources._base import Entry, Problems, Scan, SourceError, load_image_file

__all__ = ["scan_folder"]


def scan_folder(cfg: Mapping[str, Any], problems: Problems) -> Scan:
    root = Path(cfg["root"])
    image_root, mask_root = root / cfg["image_dir"], root / cfg["mask_dir"]
    for path in (image_root, mask_root):
        if not path.is_dir():
            raise SourceError(f"{path}: folder not found (dataset.root={cfg['root']!r})")
    suffixes = {s.lower() for s in cfg["image_suffixes"]}
    num_classes = len(cfg["class_names"])
    scan = Scan(entries=[])
    for subset, image_dir in _subsets(image_root):
        mask_dir = mask_root / subset if subset else mask_root
        for image_path in sorted(image_dir.iterdir()):
            if image_path.suffix.lower() not in suffixes or not image_path.is_file():
                continue
            mask_path = mask_dir / (image_path.stem + cfg["mask_suffix"])
            entry = _entry(image_path, mask_path, subset, num_classes, problems)
            if entry is not None:
                for path in (image_path, mask_path):
                    stat = path.stat()
                    scan.add_to_fingerprint(
                        str(path.relative_to(root)), stat.st_size, stat.st_mtime_ns
                    )
                scan.entries.append(entry)
    if not scan.entries and not problems.skipped:
        raise SourceError(f"{image_root}: no images with suffix {sorted(suffixes)} found")
    return scan


def _subsets(image_root: Path) -> list[tuple[str | None, Path]]:
    """[(None, root)] when flat, else one (name, folder) per subfolder."""
    folders = sorted(p for p in image_root.iterdir() if p.is_dir())
    if folders and not any(p.is_file() for p in image_root.iterdir()):
        return [(p.name, p) for p in folders]
    return [(None, image_root)]


def _entry(
    image_path: Path, mask_path: Path, subset: str | None, num_classes: int, problems: Problems
) -> Entry | None:
    image_id = f"{subset}/{image_path.name}" if subset else image_path.name
    if not mask_path.is_file():
        problems.report(image_id, f"{image_path}: no mask file {mask_path}")
        return None
    try:
        height, width = image_size(image_path)
        labels = _read_labels(mask_path, num_classes)
    except (ImageError, SourceError) as exc:
        problems.report(image_id, str(exc))
        return None
    if labels.shape != (height, width):
        problems.report(
            image_id,
            f"{mask_path}: mask is {labels.shape[0]}x{labels.shape[1]} (HxW) but its image "
            f"{image_path} is {height}x{width}",
        )
        return None
    rles = tuple(rle.encode(labels == k) for k in range(1, num_classes + 1))
    load = functools.partial(load_image_file, image_path, height, width)
    return Entry(image_id, height, width, rles, load, subset)


def _read_labels(mask_path: Path, num_classes: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(mask_path) as image:
            image.load()
            if image.mode not in ("L", "P", "I", "I;16"):
                raise SourceError(
                    f"{mask_path}: mask mode {image.mode}; expected one channel of class ids "
                    f"0..{num_classes} (mode L or P)"
                )
            labels = np.asarray(image)
    except UnidentifiedImageError:
        raise SourceError(f"{mask_path}: not a readable mask image") from None
    except OSError as exc:
        raise SourceError(f"{mask_path}: unreadable or truncated mask ({exc})") from None
    top = int(labels.max(initial=0))
    if top > num_classes:
        raise SourceError(
            f"{mask_path}: class id {top} in mask, but only {num_classes} classes are named "
            f"(expected ids 0..{num_classes}; set dataset.class_names)"
        )
    return labels
