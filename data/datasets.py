"""Dataset configs as plain dicts, for `data.prepare.prepare` called from code (tests, benches).

Each builder gives the keys of its `data/conf/dataset/*.yaml` group, with the same values
unless an argument says otherwise, so a built dict and one composed by
`python -m data.prepare dataset=NAME` prepare the same shards. Two defaults differ on
purpose: `split` is `split_config()`, every image in train (no val, no test, clean images
kept), where the YAML files hold the paper's split; and `folder_config` looks for .png images
only. tests/data/test_datasets.py holds them to the YAML files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from data.config import require

__all__ = [
    "FOLDER_LAYOUT_KEYS",
    "folder_config",
    "neu_seg_config",
    "severstal_config",
    "severstal_sim_config",
    "split_config",
    "synthetic_config",
]

# folder.yaml keys that `folder_config` adds only when given: left out, the source reads them
# as layout=flat, and today's configs (hence their shard fingerprints) stay as they are.
FOLDER_LAYOUT_KEYS = ("layout", "class_dirs", "clean_dirs", "mask_dir_suffix")


def split_config(
    *,
    seed: int = 0,
    val_fraction: float = 0.0,
    test_fraction: float = 0.0,
    keep_clean: bool = True,
    use_source_splits: bool = False,
) -> dict[str, Any]:
    """A `dataset.split`; by default every image, clean ones too, goes to train."""
    return {
        "seed": int(seed),
        # float(): 0 and 0.0 hash differently in the shard fingerprint.
        "test_fraction": float(test_fraction),
        "val_fraction": float(val_fraction),
        "keep_clean": bool(keep_clean),
        "use_source_splits": bool(use_source_splits),
    }


def severstal_config(
    root: str | Path,
    *,
    image_shape: Sequence[int] | None = (256, 1600),
    name: str = "severstal",
    csv: str = "train.csv",
    image_dir: str = "train_images",
    class_names: Sequence[str] = ("1", "2", "3", "4"),
    max_images: int | None = None,
    split: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """`dataset=severstal`: Kaggle's train.csv and train_images/ under `root`; every image must
    be `image_shape` (height, width) pixels, or any size with None."""
    shape = None if image_shape is None else [int(n) for n in image_shape]
    return {
        "name": name,
        "source": "severstal",
        "root": str(root),
        "csv": csv,
        "image_dir": image_dir,
        "image_shape": shape,
        "class_names": _names(class_names),
        "max_images": max_images,
        "split": _split(split),
    }


SEVERSTAL_LABELS = "../shared/data/severstal/labels"


def severstal_sim_config(
    root: str | Path = SEVERSTAL_LABELS,
    *,
    seed: int = 0,
    max_images: int | None = None,
    split: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """`dataset=severstal-sim`: the full-scale stand-in, from the real labels under `root`."""
    return {
        "name": "severstal-sim",
        "source": "severstal-sim",
        "root": str(root),
        "labels_csv": "train_7179_old_format.csv",
        "flags_csv": "defect_flags_12568.csv",
        "class_names": ["1", "2", "3", "4"],
        "seed": seed,
        "max_images": max_images,
        "split": _split(split),
    }


def folder_config(
    root: str | Path,
    class_names: Sequence[str],
    *,
    name: str = "folder",
    image_dir: str = "images",
    mask_dir: str = "masks",
    image_suffixes: Sequence[str] = (".png",),
    mask_suffix: str = ".png",
    max_images: int | None = None,
    split: Mapping[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """`dataset=folder`: images plus same-named masks under `root`; `extra` holds any of
    FOLDER_LAYOUT_KEYS (e.g. layout="class_dirs", class_dirs={...})."""
    unknown = sorted(set(extra) - set(FOLDER_LAYOUT_KEYS))
    require(
        not unknown,
        f"folder_config: unknown key(s) {unknown}; expected one of {', '.join(FOLDER_LAYOUT_KEYS)}",
    )
    return {
        "name": name,
        "source": "folder",
        "root": str(root),
        "image_dir": image_dir,
        "mask_dir": mask_dir,
        "image_suffixes": list(image_suffixes),
        "mask_suffix": mask_suffix,
        "class_names": _names(class_names),
        "max_images": max_images,
        "split": _split(split),
        **extra,
    }


def neu_seg_config(
    root: str | Path,
    *,
    max_images: int | None = None,
    split: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """`dataset=neu-seg`: NEU-Seg's img_dir/ and ann_dir/, each with train/val/test folders;
    pass `split_config(use_source_splits=True, ...)` to keep those as the splits."""
    return folder_config(
        root,
        ["inclusion", "patches", "scratches"],
        name="neu-seg",
        image_dir="img_dir",
        mask_dir="ann_dir",
        image_suffixes=[".jpg"],
        max_images=max_images,
        split=split,
    )


def synthetic_config(
    *,
    num_images: int = 256,
    height: int = 128,
    width: int = 128,
    seed: int = 0,
    clean_fraction: float = 0.25,
    class_names: Sequence[str] = ("pits", "scratches", "patches", "blobs"),
    name: str = "synthetic",
    max_images: int | None = None,
    split: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """`dataset=synthetic`: procedural grey steel; `seed` is the generator's, not the split's."""
    return {
        "name": name,
        "source": "synthetic",
        "root": None,
        "class_names": _names(class_names),
        "num_images": num_images,
        "height": height,
        "width": width,
        "seed": seed,
        "clean_fraction": clean_fraction,
        "max_images": max_images,
        "split": _split(split),
    }


def _names(class_names: Sequence[str]) -> list[str]:
    # list("box") would silently make three classes b, o, x.
    require(
        not isinstance(class_names, str),
        f"class_names={class_names!r}: expected a sequence of names, e.g. [{class_names!r}]",
    )
    return list(class_names)


def _split(split: Mapping[str, Any] | None) -> dict[str, Any]:
    return split_config() if split is None else dict(split)
