"""Images plus same-named mask files, in one of two layouts (`dataset.layout`).

- `flat`: integer-label masks (0 = background, 1..K = classes), flat
  (`<root>/<image_dir>/*.jpg` + `<root>/<mask_dir>/*.png`) or split into subfolders
  (`<root>/<image_dir>/<subset>/...`, e.g. NEU-Seg's img_dir/ann_dir with train/val/test).
- `class_dirs`: one folder per class (`dataset.class_dirs: {NAME: folder}`, in class order)
  and folders of defect-free images (`dataset.clean_dirs`). A mask is binary: 0 is
  background, any nonzero value (0/1 or 0/255) is its folder's class. Masks sit beside their
  images (`x.jpg` with `x.png`; `dataset.image_suffixes` tells them apart) or, with
  `dataset.mask_dir_suffix=_masks`, in a parallel folder (`crazing/` and `crazing_masks/`).
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


LAYOUTS = ("flat", "class_dirs")


def class_names_for(cfg: Mapping[str, Any]) -> list[str]:
    """The class names a folder dataset has: `class_names`, or with layout=class_dirs the
    class_dirs' keys (a class_names that says otherwise is an error); flat with none: ["1"]."""
    layout = cfg.get("layout", "flat")
    names = cfg.get("class_names")
    if layout != "class_dirs":
        return ["1"] if names is None else list(names)
    class_dirs = cfg.get("class_dirs")
    if not isinstance(class_dirs, Mapping) or not class_dirs:
        raise SourceError(
            f"dataset.class_dirs={class_dirs!r}: layout=class_dirs needs a mapping of class "
            "name -> folder (relative to dataset.root), in class order"
        )
    keys = [str(k) for k in class_dirs]
    if names is not None and list(names) != keys:
        raise SourceError(
            f"dataset.class_names={list(names)} differs from dataset.class_dirs' names {keys}: "
            "with layout=class_dirs the classes are class_dirs' keys; leave class_names null"
        )
    return keys


def scan_folder(cfg: Mapping[str, Any], problems: Problems) -> Scan:
    layout = cfg.get("layout", "flat")
    if layout not in LAYOUTS:
        raise SourceError(f"dataset.layout={layout!r}: expected one of {', '.join(LAYOUTS)}")
    if layout == "class_dirs":
        return _scan_class_dirs(cfg, problems)
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
                _fingerprint(scan, root, image_path, mask_path)
                scan.entries.append(entry)
    if not scan.entries and not problems.skipped:
        raise SourceError(f"{image_root}: no images with suffix {sorted(suffixes)} found")
    return scan


def _fingerprint(scan: Scan, root: Path, *paths: Path) -> None:
    """Name, size and mtime of each file an entry was read from: a change re-prepares."""
    for path in paths:
        stat = path.stat()
        scan.add_to_fingerprint(str(path.relative_to(root)), stat.st_size, stat.st_mtime_ns)


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


def _read_mask(mask_path: Path, modes: tuple[str, ...], expected: str) -> np.ndarray:
    """A one-channel mask image's values; SourceError naming the file otherwise."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(mask_path) as image:
            image.load()
            if image.mode not in modes:
                raise SourceError(f"{mask_path}: mask mode {image.mode}; expected {expected}")
            return np.asarray(image)
    except UnidentifiedImageError:
        raise SourceError(f"{mask_path}: not a readable mask image") from None
    except OSError as exc:
        raise SourceError(f"{mask_path}: unreadable or truncated mask ({exc})") from None


def _read_labels(mask_path: Path, num_classes: int) -> np.ndarray:
    labels = _read_mask(
        mask_path,
        ("L", "P", "I", "I;16"),
        f"one channel of class ids 0..{num_classes} (mode L or P)",
    )
    top = int(labels.max(initial=0))
    if top > num_classes:
        raise SourceError(
            f"{mask_path}: class id {top} in mask, but only {num_classes} classes are named "
            f"(expected ids 0..{num_classes}; set dataset.class_names)"
        )
    return labels


def _scan_class_dirs(cfg: Mapping[str, Any], problems: Problems) -> Scan:
    root = Path(cfg["root"])
    names = class_names_for(cfg)
    suffixes = {x.lower() for x in cfg["image_suffixes"]}
    mask_suffix = str(cfg["mask_suffix"])
    beside = not cfg.get("mask_dir_suffix")
    if beside and mask_suffix.lower() in suffixes:
        raise SourceError(
            f"dataset.image_suffixes={sorted(suffixes)} include the mask suffix {mask_suffix!r} "
            "while masks sit beside their images: list the images' suffixes only (e.g. "
            "dataset.image_suffixes=[.jpg]), or put masks in a parallel folder with "
            "dataset.mask_dir_suffix"
        )
    clean_dirs = cfg.get("clean_dirs") or []
    folders = [(k, str(rel)) for k, rel in enumerate(cfg["class_dirs"].values(), start=1)]
    folders += [(0, str(rel)) for rel in clean_dirs]
    seen: dict[str, Path] = {}
    scan = Scan(entries=[])
    for class_id, rel in folders:
        folder = root / rel
        if not folder.is_dir():
            raise SourceError(f"{folder}: folder not found (dataset.root={cfg['root']!r})")
        mask_folder = (
            folder.with_name(folder.name + cfg["mask_dir_suffix"]) if not beside else folder
        )
        for image_path in sorted(folder.iterdir()):
            if image_path.suffix.lower() not in suffixes or not image_path.is_file():
                continue
            if image_path.name in seen:
                raise SourceError(
                    f"{image_path.name} is in two class folders: {seen[image_path.name]} and "
                    f"{image_path}; an image belongs to one class folder (or to a clean one)"
                )
            seen[image_path.name] = image_path
            mask_path = mask_folder / (image_path.stem + mask_suffix)
            entry = _class_dir_entry(image_path, mask_path, rel, class_id, len(names), problems)
            if entry is None:
                continue
            # A clean image may have no mask: only files that exist are read, and hashed.
            _fingerprint(scan, root, *(p for p in (image_path, mask_path) if p.is_file()))
            scan.entries.append(entry)
    if not scan.entries and not problems.skipped:
        raise SourceError(f"{root}: no images with suffix {sorted(suffixes)} in the class folders")
    return scan


def _class_dir_entry(
    image_path: Path, mask_path: Path, rel: str, class_id: int, num_classes: int, problems: Problems
) -> Entry | None:
    image_id = f"{rel}/{image_path.name}"
    try:
        height, width = image_size(image_path)
        if not mask_path.is_file():
            if class_id:  # a defect folder's image needs its mask; a clean one's may have none
                problems.report(image_id, f"{image_path}: no mask file {mask_path}")
                return None
            defect = None
        else:
            defect = _read_binary_mask(mask_path)
    except (ImageError, SourceError) as exc:
        problems.report(image_id, str(exc))
        return None
    if defect is not None and defect.shape != (height, width):
        problems.report(
            image_id,
            f"{mask_path}: mask is {defect.shape[0]}x{defect.shape[1]} (HxW) but its image "
            f"{image_path} is {height}x{width}",
        )
        return None
    if class_id == 0 and defect is not None and defect.any():
        raise SourceError(
            f"{mask_path}: a clean folder's mask marks {int(defect.sum())} defect pixel(s); "
            "a clean image's mask must be empty (move the image to its class folder)"
        )
    rles = tuple(
        rle.encode(defect) if k == class_id and defect is not None else ""
        for k in range(1, num_classes + 1)
    )
    load = functools.partial(load_image_file, image_path, height, width)
    return Entry(image_id, height, width, rles, load, None)


def _read_binary_mask(mask_path: Path) -> np.ndarray:
    """A mask's defect pixels: any nonzero value (0/1 or 0/255 masks alike)."""
    modes = ("1", "L", "P", "I", "I;16")
    return _read_mask(mask_path, modes, "one channel (0 background, nonzero defect)") != 0
