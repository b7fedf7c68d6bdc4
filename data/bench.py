"""Data-pipeline benchmark on the real Severstal sample (1600x256 images, all four masks).

    python -m data.bench [root=../shared/data/severstal/sample] [seconds=8] [batch_size=8]

Measures, in one run:
(a) `naive`: a paper-style generator: an OpenCV grayscale read per image plus a per-row
    Python RLE decode (a loop over runs) from the CSV, stacked into float32 batches;
(b) `uint8`: shards -> data.reader.make_dataset as training, promotion and predict read them:
    uint8 images and masks, which the model scales and the loss casts on the device; also
    `float32` (the same tensors scaled on the CPU) and `uint8_stream` (cache=none: every
    epoch re-reads and re-verifies the shard);
(c) `copy bound`: a memcpy of one sample (image + four masks), float32 and uint8;
and the microseconds per (non-empty, real) mask of the vectorised RLE codec against the plain
Python-loop codec. The last line printed is one JSON object with the figures and the machine
they were measured on: its CPU, the CPUs this process may use (run it under `taskset -c 0`
for a per-core figure), and TensorFlow's oneDNN and allocator settings.
"""

from __future__ import annotations

import csv
import gc
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data import rle
from data.config import compose_schema, require, run_cli

__all__ = ["main", "paper_rle_decode", "naive_batches"]

HEIGHT, WIDTH, CLASSES = 256, 1600, 4
DEFAULT_ROOT = "../shared/data/severstal/sample"


def paper_rle_decode(encoded: str, height: int, width: int) -> np.ndarray:
    """The Kaggle-kernel decoder the paper's generator used (with its off-by-one fixed)."""
    tokens = encoded.split()
    starts = np.asarray(tokens[0::2], dtype=int) - 1
    lengths = np.asarray(tokens[1::2], dtype=int)
    flat = np.zeros(height * width, dtype=np.uint8)
    for low, high in zip(starts, starts + lengths, strict=True):
        flat[low:high] = 1
    return flat.reshape(width, height).T


def _read_rows(root: Path) -> dict[str, dict[int, str]]:
    rows: dict[str, dict[int, str]] = {}
    with (root / "train.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            rows.setdefault(row["ImageId"], {})[int(row["ClassId"])] = row["EncodedPixels"]
    return rows


def naive_batches(root: Path, batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Endless (image (B,H,W,1), masks (B,H,W,4)) float32 batches, the paper's way."""
    import cv2

    rows = _read_rows(root)
    names = sorted(p.name for p in (root / "train_images").iterdir())
    position = 0
    while True:
        images = np.empty((batch_size, HEIGHT, WIDTH, 1), np.float32)
        masks = np.empty((batch_size, HEIGHT, WIDTH, CLASSES), np.float32)
        for slot in range(batch_size):
            name = names[position % len(names)]
            position += 1
            grey = cv2.imread(str(root / "train_images" / name), cv2.IMREAD_GRAYSCALE)
            images[slot, ..., 0] = grey / 255.0
            labels = rows.get(name, {})
            for k in range(CLASSES):
                text = labels.get(k + 1, "")
                masks[slot, ..., k] = (
                    paper_rle_decode(text, HEIGHT, WIDTH) if text else np.zeros((HEIGHT, WIDTH))
                )
        yield images, masks


def _rate(batches: Iterator[object], batch_size: int, seconds: float) -> float:
    """Samples per second over at least `seconds`, after one warm-up batch."""
    next(batches)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        next(batches)
        count += batch_size
    return count / (time.perf_counter() - start)


def _pipeline_batches(
    root: Path, shards: Path, batch_size: int, dtype: str = "float32", cache: str = "auto"
) -> Iterator[object]:
    from data.datasets import severstal_config
    from data.prepare import prepare
    from data.reader import make_dataset

    dataset = severstal_config(root, name="severstal-sample", image_shape=(HEIGHT, WIDTH))
    prepare(dataset, out=str(shards))
    dataset = make_dataset(
        str(shards), "train", batch_size=batch_size, repeat=True, dtype=dtype, cache=cache
    )
    return iter(dataset)


def _copy_rate(seconds: float, dtype: str = "float32") -> float:
    source = np.random.default_rng(0).integers(0, 2, (HEIGHT, WIDTH, 1 + CLASSES)).astype(dtype)
    target = np.empty_like(source)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        np.copyto(target, source)
        count += 1
    return count / (time.perf_counter() - start)


def _microseconds(function: Callable[[object], object], inputs: Sequence[object]) -> float:
    """Mean microseconds per call over all inputs, repeated for at least 0.5 s."""
    calls, start = 0, time.perf_counter()
    while calls == 0 or time.perf_counter() - start < 0.5:
        for item in inputs:
            function(item)
        calls += len(inputs)
    return (time.perf_counter() - start) / calls * 1e6


def codec_figures(root: Path) -> dict[str, float]:
    texts = [t for labels in _read_rows(root).values() for t in labels.values() if t]
    masks = [rle.decode(t, HEIGHT, WIDTH) for t in texts]
    return {
        "rle_decode_us": _microseconds(lambda t: rle.decode(t, HEIGHT, WIDTH), texts),
        "rle_decode_loop_us": _microseconds(lambda t: rle.decode_loop(t, HEIGHT, WIDTH), texts),
        "rle_encode_us": _microseconds(rle.encode, masks),
        "rle_encode_loop_us": _microseconds(rle.encode_loop, masks),
    }


def machine() -> dict[str, object]:
    """What the figures depend on: the CPU, how many of its CPUs this process may use, and
    TensorFlow's oneDNN and CPU-allocator settings (read after the pipeline ran)."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cpus": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        # TensorFlow's default: oneDNN on where the CPU has AVX512-VNNI, AVX512-BF16 or AMX.
        "tf_enable_onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
        "tf_cpu_allocator_use_bfc": os.environ.get("TF_CPU_ALLOCATOR_USE_BFC", "unset"),
    }


@dataclass
class BenchConfig:
    """`python -m data.bench`'s keys."""

    root: str = DEFAULT_ROOT  # a Kaggle folder: train.csv, train_images/
    seconds: float = 8.0  # time per throughput figure
    batch_size: int = 8


def main(argv: Sequence[str]) -> int:
    args = compose_schema(BenchConfig, argv, __doc__ or "")
    root = Path(args.root)
    require(
        (root / "train.csv").is_file() and (root / "train_images").is_dir(),
        f"root={args.root}: expected a Kaggle folder with train.csv, train_images/",
    )
    require(args.seconds > 0, f"seconds={args.seconds}: must be > 0")
    require(args.batch_size >= 1, f"batch_size={args.batch_size}: must be >= 1")
    figures: dict[str, float] = {}
    figures["naive_samples_per_s"] = _rate(
        naive_batches(root, args.batch_size), args.batch_size, args.seconds
    )
    print(f"naive generator: {figures['naive_samples_per_s']:.1f} samples/s", flush=True)
    legs = {  # figure: (dtype, cache)
        "uint8_samples_per_s": ("uint8", "auto"),
        "float32_samples_per_s": ("float32", "auto"),
        "uint8_stream_samples_per_s": ("uint8", "none"),
    }
    with tempfile.TemporaryDirectory() as folder:
        for key, (dtype, cache) in legs.items():
            batches = _pipeline_batches(root, Path(folder), args.batch_size, dtype, cache)
            figures[key] = _rate(batches, args.batch_size, args.seconds)
            print(
                f"shards -> tf.data, dtype={dtype}, cache={cache}: {figures[key]:.1f} samples/s",
                flush=True,
            )
        del batches  # stop the prefetch threads before the shard folder goes away
        gc.collect()
    copy_seconds = min(args.seconds, 2.0)
    figures["copy_bound_samples_per_s"] = _copy_rate(copy_seconds, "float32")
    figures["uint8_copy_bound_samples_per_s"] = _copy_rate(copy_seconds, "uint8")
    figures.update(codec_figures(root))
    naive = figures["naive_samples_per_s"]
    print(
        f"uint8 pipeline / naive: {figures['uint8_samples_per_s'] / naive:.2f}x "
        f"(float32 {figures['float32_samples_per_s'] / naive:.2f}x); decode "
        f"{figures['rle_decode_loop_us'] / figures['rle_decode_us']:.0f}x, encode "
        f"{figures['rle_encode_loop_us'] / figures['rle_encode_us']:.0f}x faster than loops"
    )
    print(json.dumps({**{k: round(v, 1) for k, v in figures.items()}, **machine()}))
    return 0


if __name__ == "__main__":
    run_cli(main)
