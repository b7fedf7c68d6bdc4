"""Validation throughput on images of many sizes against one size of the same pixel count.

    python -m search.bench.sizes [images=200] [batch_size=8] [filters=8] [depth=5]
        [repeats=3] [threads=0] [out=DIR]

Writes two folder datasets of the same synthetic grey images and masks into `out` (a
temporary folder when empty), prepares their shards, and evaluates one U-Net (Keras
`evaluate`, loss and Dice metrics, as a trial's validation) on each:

- `mixed`: `images` images of random heights 150..250 and widths 150..350 (nearly every one a
  size of its own); the reader batches them by size (`data.reader`), so most batches are short;
- `uniform`: the same number of square images whose total pixel count matches `mixed`'s.

The first pass of each also traces the model for the sizes it meets; the figures are the
best of `repeats` passes after it, in megapixels per second. It prints one line per dataset
and a JSON line last, whose `ratio` is uniform's throughput over mixed's (target <= 2).
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from data.config import ConfigError, compose_schema, run_cli

__all__ = ["main", "mixed_sizes", "write_folder"]


@dataclass
class SizesConfig:
    images: int = 200
    batch_size: int = 8
    filters: int = 8
    depth: int = 5
    repeats: int = 3
    threads: int = 0  # 0 = TensorFlow's choice
    out: str = ""  # "" = a scratch folder


def mixed_sizes(count: int, seed: int = 0) -> list[tuple[int, int]]:
    """`count` (height, width) pairs, heights 150..250 and widths 150..350."""
    rng = np.random.default_rng(seed)
    return [(int(rng.integers(150, 251)), int(rng.integers(150, 351))) for _ in range(count)]


def write_folder(root: Path, sizes: Sequence[tuple[int, int]], seed: int = 0) -> None:
    """images/i.png (grey noise with a bright box) and masks/i.png (class 1 on the box)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for index, (height, width) in enumerate(sizes):
        image = rng.normal(110, 15, (height, width)).clip(0, 255).astype(np.uint8)
        labels = np.zeros((height, width), np.uint8)
        top, left = int(rng.integers(0, height - 40)), int(rng.integers(0, width - 40))
        labels[top : top + 30, left : left + 36] = 1
        image[labels > 0] = 200
        Image.fromarray(image).save(root / "images" / f"i{index:04d}.png")
        Image.fromarray(labels).save(root / "masks" / f"i{index:04d}.png")


def _prepare(root: Path, out: Path) -> str:
    from data.datasets import folder_config
    from data.prepare import prepare

    prepare(folder_config(root, ["box"], name=root.name), out=str(out))
    return str(out)


def _evaluate(model: Any, uri: str, batch_size: int, repeats: int) -> dict[str, Any]:
    from data.reader import open_split

    records = open_split(uri, "train", cache="memory")
    pixels = batches = 0
    for _, masks in records.dataset(batch_size=batch_size):  # also fills the cache
        pixels += int(np.prod(masks.shape[:3]))
        batches += 1
    seconds = []
    for _ in range(repeats + 1):  # the first pass traces the model for the sizes it meets
        started = time.perf_counter()
        model.evaluate(records.dataset(batch_size=batch_size), verbose=0)
        seconds.append(time.perf_counter() - started)
    best = min(seconds[1:])
    return {
        "images": records.examples,
        "batches": batches,
        "megapixels": round(pixels / 1e6, 3),
        "first_pass_s": round(seconds[0], 2),
        "best_s": round(best, 3),
        "megapixels_per_s": round(pixels / 1e6 / best, 3),
        "images_per_s": round(records.examples / best, 1),
    }


def main(argv: Sequence[str]) -> int:
    args = asdict(compose_schema(SizesConfig, argv, __doc__ or ""))
    for key in ("images", "batch_size", "filters", "depth", "repeats"):
        if args[key] < 1:
            raise ConfigError(f"{key}={args[key]}: must be >= 1")
    if args["threads"] < 0:
        raise ConfigError(f"threads={args['threads']}: must be >= 0 (0 = TensorFlow's choice)")
    import tensorflow as tf

    if args["threads"]:
        tf.config.threading.set_intra_op_parallelism_threads(args["threads"])
        tf.config.threading.set_inter_op_parallelism_threads(min(2, args["threads"]))
    import keras

    import models
    from models.losses import get_loss
    from models.metrics import dice_metrics

    with tempfile.TemporaryDirectory(prefix="bench-sizes-") as scratch:
        out = Path(args["out"] or scratch)
        sizes = mixed_sizes(args["images"])
        side = round(math.sqrt(sum(h * w for h, w in sizes) / len(sizes)))
        results = {}
        for name, chosen in (("mixed", sizes), ("uniform", [(side, side)] * len(sizes))):
            write_folder(out / name, chosen)
            uri = _prepare(out / name, out / f"{name}-shards")
            keras.utils.set_random_seed(0)
            model = models.build_model(
                "unet",
                input_shape=(None, None, 1),
                num_classes=1,
                filters=args["filters"],
                depth=args["depth"],
            )
            model.compile(loss=get_loss("bce_dice"), metrics=dice_metrics(["box"]))
            results[name] = _evaluate(model, uri, args["batch_size"], args["repeats"])
            results[name]["distinct_sizes"] = len(set(chosen))
            row = results[name]
            print(
                f"{name:8s} {row['images']} images in {row['distinct_sizes']} sizes, "
                f"{row['batches']} batches, {row['megapixels']} MP: best pass "
                f"{row['best_s']} s = {row['megapixels_per_s']} MP/s "
                f"({row['images_per_s']} images/s); first pass {row['first_pass_s']} s",
                flush=True,
            )
    ratio = results["uniform"]["megapixels_per_s"] / results["mixed"]["megapixels_per_s"]
    summary = {**results, "ratio": round(ratio, 3), "target": "<= 2", "args": args}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    run_cli(main)
