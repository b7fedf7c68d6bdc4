"""A deterministic, seeded procedural steel surface with Severstal's four defect kinds.

Class k (1-based) is drawn as: 1 small pits (clusters of dark dots), 2 thin bright scratches,
3 large rough patches, 4 dark blobs. Image i depends only on (seed, i), so any subset or
size is reproducible without generating the rest.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from data import rle
from data.sources._base import Entry, Scan, SourceError

__all__ = ["render", "scan_synthetic", "DEFECT_KINDS"]

DEFECT_KINDS = ("pits", "scratches", "patches", "blobs")


def render(
    index: int, *, height: int, width: int, seed: int, clean_fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """(grey uint8 (H, W), bool masks (H, W, 4)) of synthetic image `index`."""
    rng = np.random.default_rng([seed, index])
    surface = _steel_texture(rng, height, width)
    masks = np.zeros((height, width, len(DEFECT_KINDS)), bool)
    if rng.random() >= clean_fraction:
        count = int(rng.choice([1, 1, 1, 2, 2, 3]))
        for kind in sorted(rng.choice(len(DEFECT_KINDS), size=count, replace=False)):
            masks[..., kind] = _DRAW[kind](rng, surface)
    return np.clip(surface, 0, 255).astype(np.uint8), masks


def _steel_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    # Rolled steel: rows share a brightness offset (rolling streaks) plus fine grain.
    rows = rng.normal(0.0, 5.0, (height, 1))
    columns = 6.0 * np.sin(np.linspace(0, rng.uniform(2, 8) * np.pi, width))[None, :]
    grain = rng.normal(0.0, 6.0, (height, width))
    return rng.uniform(95, 140) + rows + columns + grain


def _grid(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    return np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)


def _ellipse(shape: tuple[int, ...], centre, radii, angle: float) -> np.ndarray:
    yy, xx = _grid(shape)
    dy, dx = yy - centre[0], xx - centre[1]
    cos, sin = np.cos(angle), np.sin(angle)
    u, v = (dx * cos + dy * sin) / radii[1], (-dx * sin + dy * cos) / radii[0]
    return u * u + v * v <= 1.0


def _pits(rng: np.random.Generator, surface: np.ndarray) -> np.ndarray:
    height, width = surface.shape
    mask = np.zeros(surface.shape, bool)
    centre = rng.uniform(0.15, 0.85, 2) * (height, width)
    spread = 0.12 * min(height, width)
    for _ in range(int(rng.integers(3, 12))):
        radius = rng.uniform(1.0, max(1.5, 0.025 * min(height, width)))
        mask |= _ellipse(surface.shape, centre + rng.normal(0, spread, 2), (radius, radius), 0.0)
    surface[mask] -= rng.uniform(40, 70)
    return mask


def _scratches(rng: np.random.Generator, surface: np.ndarray) -> np.ndarray:
    height, width = surface.shape
    yy, xx = _grid(surface.shape)
    mask = np.zeros(surface.shape, bool)
    for _ in range(int(rng.integers(1, 4))):
        start = rng.uniform(0, 1, 2) * (height, width)
        angle = rng.uniform(0, np.pi)
        length = rng.uniform(0.3, 0.8) * max(height, width)
        direction = np.array([np.sin(angle), np.cos(angle)])
        along = (yy - start[0]) * direction[0] + (xx - start[1]) * direction[1]
        across = np.abs(-(yy - start[0]) * direction[1] + (xx - start[1]) * direction[0])
        mask |= (across <= rng.uniform(0.6, 1.6)) & (along >= 0) & (along <= length)
    surface[mask] += rng.uniform(40, 60)
    return mask


def _patches(rng: np.random.Generator, surface: np.ndarray) -> np.ndarray:
    height, width = surface.shape
    mask = np.zeros(surface.shape, bool)
    centre = rng.uniform(0.3, 0.7, 2) * (height, width)
    for _ in range(int(rng.integers(2, 5))):
        radii = rng.uniform(0.12, 0.3, 2) * (height, width)
        offset = rng.normal(0, 0.1, 2) * (height, width)
        mask |= _ellipse(surface.shape, centre + offset, radii, rng.uniform(0, np.pi))
    surface[mask] += rng.uniform(20, 35) + rng.normal(0, 14, int(mask.sum()))
    return mask


def _blobs(rng: np.random.Generator, surface: np.ndarray) -> np.ndarray:
    height, width = surface.shape
    mask = np.zeros(surface.shape, bool)
    for _ in range(int(rng.integers(1, 3))):
        centre = rng.uniform(0.1, 0.9, 2) * (height, width)
        radii = rng.uniform(0.06, 0.16, 2) * min(height, width) * np.array([1.0, 1.6])
        mask |= _ellipse(surface.shape, centre, radii, rng.uniform(0, np.pi))
    surface[mask] -= rng.uniform(55, 75)
    return mask


_DRAW: tuple[Callable[[np.random.Generator, np.ndarray], np.ndarray], ...] = (
    _pits,
    _scratches,
    _patches,
    _blobs,
)


def scan_synthetic(cfg: Mapping[str, Any], problems: object = None) -> Scan:
    del problems  # generated data has no bad records
    if len(cfg["class_names"]) != len(DEFECT_KINDS):
        raise SourceError(
            f"dataset.class_names has {len(cfg['class_names'])} names; the synthetic source "
            f"draws exactly {len(DEFECT_KINDS)} kinds ({', '.join(DEFECT_KINDS)})"
        )
    options = {
        "height": int(cfg["height"]),
        "width": int(cfg["width"]),
        "seed": int(cfg["seed"]),
        "clean_fraction": float(cfg["clean_fraction"]),
    }
    if options["height"] < 8 or options["width"] < 8 or int(cfg["num_images"]) < 1:
        raise SourceError(
            f"dataset.height={options['height']}, width={options['width']}, "
            f"num_images={cfg['num_images']}: expected sizes >= 8 and at least one image"
        )
    scan = Scan(entries=[])
    scan.add_to_fingerprint("synthetic", sorted(options.items()), int(cfg["num_images"]))
    for index in range(int(cfg["num_images"])):
        _, masks = render(index, **options)
        rles = tuple(rle.encode(masks[..., k]) for k in range(masks.shape[-1]))
        load = functools.partial(_pixels, index, options)
        scan.entries.append(
            Entry(f"synthetic_{index:06d}.png", options["height"], options["width"], rles, load)
        )
    return scan


def _pixels(index: int, options: Mapping[str, Any]) -> np.ndarray:
    return render(index, **options)[0]
