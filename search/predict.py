"""Predict masks for a folder of images with a promoted model or the promoted ensemble.

    python -m search.predict model=PATH images=FOLDER out=submission.csv [format=kaggle_old]
        [batch_size=8] [tta=true|false]

PATH is either `results/NAME/final/` (or its `ensemble.json`): the ensemble, or one promoted
model `results/NAME/final/models/<name>.keras`, whose tuned post-processing sits beside it in
`<name>.json`. Both JSON files have the same layout
(`search.promotion.ensemble.EnsembleSpec`; a single model is an ensemble of one), so
predictions are rebuilt from the files alone.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import MISSING

from data.config import ConfigError, compose_schema, require, run_cli
from search.inference.loading import (
    ModelLoadError,
    check_classes,
    load_keras_model,
    model_probabilities,
)
from search.inference.submission import FORMATS, SubmissionWriter
from search.promotion import ensemble, postprocess
from search.promotion.ensemble import EnsembleSpec

__all__ = [
    "IMAGE_SUFFIXES",
    "Predictor",
    "check_images",
    "image_batches",
    "list_images",
    "load_predictor",
    "main",
    "predict_folder",
    "predict_images",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


@dataclass
class Predictor:
    """Loaded members plus the tuned post-processing: images in, probabilities or masks out."""

    spec: EnsembleSpec
    members: list[Any]

    @property
    def flips(self) -> tuple[str, ...]:
        return self.spec.flips if self.spec.tta else ("none",)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """float32 probabilities: the members' weighted mean."""
        per_member = [model_probabilities(m, images, flips=self.flips) for m in self.members]
        return ensemble.mean_probabilities(per_member, [m.weight for m in self.spec.members])

    def levels(self, images: np.ndarray) -> np.ndarray:
        """uint8 levels, as promotion tuned on them: each member quantised, then the weighted
        mean rounded (`search.promotion.ensemble.mean_probabilities` on levels)."""
        per_member = [
            postprocess.quantise(model_probabilities(m, images, flips=self.flips))
            for m in self.members
        ]
        return ensemble.mean_probabilities(per_member, [m.weight for m in self.spec.members])

    def masks(self, images: np.ndarray) -> np.ndarray:
        return postprocess.apply(self.levels(images), self.spec.postprocess)


def _spec_path(path: Path) -> Path:
    if path.is_dir():
        return path / "ensemble.json"
    if path.suffix == ".keras":
        return path.with_suffix(".json")
    return path


def load_predictor(path: str | Path, *, tta: bool | None = None, raw: bool = False) -> Predictor:
    """A Predictor from a final/ folder, an ensemble.json, or a promoted .keras model.

    `raw=True` replaces the tuned post-processing with a plain 0.5 threshold.
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"model={path}: no such file or folder")
    spec_file = _spec_path(path)
    if not spec_file.is_file():
        raise ConfigError(
            f"model={path}: expected a promoted model with its {spec_file.name} beside it, a "
            "final/ folder or an ensemble.json (see `python -m search.promote`)"
        )
    spec = EnsembleSpec.from_json(spec_file.read_text(), where=str(spec_file))
    if raw:
        post = postprocess.raw_params(len(spec.class_names))
        spec = EnsembleSpec(spec.members, post, spec.class_names, spec.tta, spec.flips)
    if tta is not None and tta != spec.tta and not raw:
        tuned = "with" if spec.tta else "without"
        raise ConfigError(
            f"tta={str(tta).lower()}: the post-processing in {spec_file} was tuned {tuned} "
            "flip TTA, on the probabilities it averages; promote with the same tta, or "
            "give postprocess=raw to threshold at 0.5"
        )
    if tta is not None:
        flips = spec.flips if len(spec.flips) > 1 else ("none", "h", "v")
        spec = EnsembleSpec(spec.members, spec.postprocess, spec.class_names, tta, flips)
    members = []
    for member in spec.members:
        model = load_keras_model(spec_file.parent / member.path)
        check_classes(model, spec.class_names, spec_file.parent / member.path, str(spec_file))
        members.append(model)
    return Predictor(spec, members)


def list_images(folder: Path) -> list[Path]:
    """Image files in `folder`, sorted by name; other files are reported on stderr."""
    if not folder.is_dir():
        raise ConfigError(f"images={folder}: not a folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    others = [p.name for p in files if p.suffix.lower() not in IMAGE_SUFFIXES]
    if others:
        print(
            f"note: skipping {len(others)} non-image file(s) in {folder}: {', '.join(others[:5])}"
            f"{' ...' if len(others) > 5 else ''} (read: {', '.join(IMAGE_SUFFIXES)})",
            file=sys.stderr,
        )
    if not images:
        raise ConfigError(f"images={folder}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    return images


def check_images(paths: Sequence[Path]) -> None:
    """Decode every image before predicting, so a bad file fails in seconds, not at the end.

    Raises data.images.ImageError naming the first unreadable file and how many others are bad.
    """
    from data.images import ImageError, read_grey

    bad: list[str] = []
    for path in paths:
        try:
            read_grey(path)
        except ImageError as exc:
            bad.append(str(exc))
    if bad:
        more = f" (and {len(bad) - 1} more unreadable file(s))" if len(bad) > 1 else ""
        raise ImageError(f"{bad[0]}{more}; remove or replace it and run again")


def image_batches(paths: Sequence[Path], batch_size: int) -> Iterator[tuple[list[str], np.ndarray]]:
    """(names, uint8 (B, H, W, 1) pixels, as the models take them); a batch never mixes image
    sizes."""
    from data.images import read_grey

    names: list[str] = []
    pixels: list[np.ndarray] = []
    for path in paths:
        image = read_grey(path)
        if pixels and (image.shape != pixels[0].shape or len(pixels) == batch_size):
            yield names, np.stack(pixels)[..., None]
            names, pixels = [], []
        names.append(path.name)
        pixels.append(image)
    if pixels:
        yield names, np.stack(pixels)[..., None]


def predict_images(
    predictor: Predictor,
    paths: Sequence[Path],
    out: str | Path,
    *,
    fmt: str = "kaggle_old",
    batch_size: int = 8,
    progress: bool = True,
) -> int:
    """Write a submission for these image files (ids = file names); returns the image count."""
    from tqdm import tqdm

    class_ids = range(1, len(predictor.spec.class_names) + 1)
    with (
        SubmissionWriter(out, fmt=fmt, class_ids=class_ids) as writer,
        tqdm(total=len(paths), desc="predict", unit="img", disable=not progress) as bar,
    ):
        for names, images in image_batches(paths, batch_size):
            for name, masks in zip(names, predictor.masks(images), strict=True):
                writer.add(name, masks)
            bar.update(len(names))
    return len(paths)


def predict_folder(
    predictor: Predictor,
    folder: str | Path,
    out: str | Path,
    *,
    fmt: str = "kaggle_old",
    batch_size: int = 8,
    progress: bool = True,
) -> int:
    """Check, then predict every image in `folder` into a submission; returns the image count."""
    paths = list_images(Path(folder))
    check_images(paths)
    return predict_images(predictor, paths, out, fmt=fmt, batch_size=batch_size, progress=progress)


SubmissionFormat = Enum("SubmissionFormat", {name: name for name in FORMATS}, type=str)


class Postprocess(StrEnum):
    tuned = "tuned"  # each class's threshold, minimum area and gate as promotion tuned them
    raw = "raw"  # threshold 0.5, nothing removed


@dataclass
class PredictConfig:
    """`python -m search.predict`'s keys (see the module docstring)."""

    model: str = MISSING
    images: str = MISSING
    out: str = "submission.csv"
    format: SubmissionFormat = SubmissionFormat["kaggle_old"]
    batch_size: int = 8
    tta: bool | None = None  # None = as promoted; true/false overrides
    postprocess: Postprocess = Postprocess.tuned


def main(argv: Sequence[str]) -> int:
    args = compose_schema(PredictConfig, argv, __doc__ or "")
    require(args.batch_size >= 1, f"batch_size={args.batch_size}: must be >= 1")
    fmt = args.format.value
    try:
        paths = list_images(Path(args.images))
        check_images(paths)  # before the (slow) model load: a bad file fails at once
        raw = args.postprocess == Postprocess.raw
        predictor = load_predictor(args.model, tta=args.tta, raw=raw)
        count = predict_images(predictor, paths, args.out, fmt=fmt, batch_size=args.batch_size)
    except (ModelLoadError, ValueError) as exc:  # ImageError/RLEError are ValueErrors too
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(str(exc)) from exc
    print(f"wrote {args.out}: {count} images, format {fmt}")
    return 0


if __name__ == "__main__":
    run_cli(main)
