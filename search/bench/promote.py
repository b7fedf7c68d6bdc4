"""Peak driver memory of promotion at Severstal's sizes, with simulated predictions.

    python -m search.bench.promote [val=566] [test=1257] [models=7] [size=256x1600]
        [classes=4] [folder=DIR]

What promotion's driver does after the models have predicted (on the workers): tune each
model's post-processing on validation, score it raw and tuned on validation and test, select
and tune the ensemble, pick the report's overlays; `search.promote`'s own functions on
`OnDisk` files. The splits' masks are blobs and each model's uint8 levels are the truth
blurred by its own noise, written to `folder=` first (about 3 GB a model at the defaults,
which are full Severstal's: 566 val and 1,257 test images of 256x1600, 4 classes).

Prints one JSON line: the peak of the process's anonymous resident memory (what the driver
holds), the peak of its whole resident set (also file pages mapped at the time), the
largest `ru_maxrss`, seconds, and the bytes on disk. Sampled every 20 ms by a thread.
"""

from __future__ import annotations

import importlib
import json
import resource
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from data.config import compose_schema, require, run_cli

__all__ = ["main"]


class _Peak(threading.Thread):
    """Samples /proc/self/status (RssAnon, VmRSS) until stopped; keeps the maxima in MiB."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.anon = self.rss = 0.0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            fields = {}
            for line in Path("/proc/self/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("RssAnon", "VmRSS"):
                    fields[key] = int(value.split()[0]) / 1024
            self.anon = max(self.anon, fields.get("RssAnon", 0.0))
            self.rss = max(self.rss, fields.get("VmRSS", 0.0))
            self._stop_event.wait(0.02)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def _write(path: Path, shape: tuple[int, ...], dtype: object, fill) -> None:
    from search.promotion.arrays import CHUNK, open_array

    out = open_array(path, shape, dtype)
    for lo in range(0, shape[0], CHUNK):
        out[lo : lo + CHUNK] = fill(lo, min(lo + CHUNK, shape[0]))
    out.flush()
    del out


def _blobs(rng: np.random.Generator, n: int, height: int, width: int, classes: int) -> np.ndarray:
    """(n, H, W, C) bool: about half the (image, class) pairs get one rectangle of defect."""
    masks = np.zeros((n, height, width, classes), bool)
    for i in range(n):
        for c in range(classes):
            if rng.random() < 0.5:
                h = int(rng.integers(max(1, height // 32), max(2, height // 2)))
                w = int(rng.integers(max(1, width // 100), max(2, width // 4)))
                y, x = int(rng.integers(0, height - h)), int(rng.integers(0, width - w))
                masks[i, y : y + h, x : x + w, c] = True
    return masks


def simulate(folder: Path, *, val: int, test: int, models: int, size, classes: int):
    """Splits and per-model levels on disk, as promotion's work folder holds them."""
    from search.promotion.arrays import OnDisk, Split

    height, width = size
    splits, levels = {}, [dict() for _ in range(models)]
    for name, n in (("val", val), ("test", test)):
        rng = np.random.default_rng(len(name))
        masks_path = folder / f"{name}.masks.npy"
        _write(
            masks_path,
            (n, height, width, classes),
            np.bool_,
            lambda lo, hi, rng=rng: _blobs(rng, hi - lo, height, width, classes),
        )
        _write(folder / f"{name}.images.npy", (n, height, width), np.uint8, lambda lo, hi: 0)
        masks = OnDisk(masks_path)
        ids = [f"{name}{i:05d}.jpg" for i in range(n)]
        sizes = np.tile([height, width], (n, 1))
        splits[name] = Split(name, ids, OnDisk(folder / f"{name}.images.npy"), masks, sizes)
        for m in range(models):
            noise = np.random.default_rng(100 * m + len(name))

            def fill(lo: int, hi: int, noise=noise, masks=masks, m=m) -> np.ndarray:
                # Smooth noise (drawn on a 16x coarser grid): false blobs and ragged edges,
                # as a segmentation model makes, rather than per-pixel speckle.
                truth = masks[lo:hi].astype(np.float32)
                k, _, _, c = truth.shape
                coarse = noise.random((k, -(-height // 16), -(-width // 16), c), np.float32)
                smooth = coarse.repeat(16, axis=1).repeat(16, axis=2)[:, :height, :width]
                p = truth * (0.3 + 0.04 * m) + smooth * 0.65
                return np.rint(np.clip(p, 0, 1) * 255).astype(np.uint8)

            path = folder / f"model{m}.{name}.levels.npy"
            _write(path, (n, height, width, classes), np.uint8, fill)
            levels[m][name] = OnDisk(path)
    return splits, levels


def run(folder: Path, *, val: int, test: int, models: int, size, classes: int) -> dict:
    from search import promote

    started = time.perf_counter()
    splits, levels = simulate(folder, val=val, test=test, models=models, size=size, classes=classes)
    written_s = time.perf_counter() - started
    names = tuple(f"class{c + 1}" for c in range(classes))
    # Imports done before the baseline is read (models.metrics brings TensorFlow).
    importlib.import_module("models.metrics")

    before = _Peak()
    before.start()
    time.sleep(0.1)
    before.stop()
    peak = _Peak()
    peak.start()
    started = time.perf_counter()
    candidates = [SimpleNamespace(name=f"model{m}") for m in range(models)]
    val_probs = [by_split["val"] for by_split in levels]
    test_probs = [by_split["test"] for by_split in levels]
    results = {
        c.name: promote.evaluate(v, t, splits["val"], splits["test"], class_names=names, gate=True)
        for c, v, t in zip(candidates, val_probs, test_probs, strict=True)
    }
    selection, result, ens_test = promote.choose_ensemble(
        candidates,
        results,
        val_probs,
        test_probs,
        splits["val"],
        splits["test"],
        class_names=names,
        gate=True,
    )
    promote.overlay_examples(splits["test"], ens_test, params=result["postprocess"])
    seconds = time.perf_counter() - started
    peak.stop()
    disk = sum(p.stat().st_size for p in folder.iterdir())
    return {
        "val": val,
        "test": test,
        "models": models,
        "size": f"{size[0]}x{size[1]}",
        "classes": classes,
        "ensemble_members": len(selection.members),
        "ensemble_test_tuned": round(result["test"]["tuned"]["kaggle_dice"], 4),
        "anon_before_mib": round(before.anon, 1),  # the process with its imports, at rest
        "peak_anon_mib": round(peak.anon, 1),
        "peak_rss_mib": round(peak.rss, 1),
        "ru_maxrss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "driver_s": round(seconds, 1),
        "simulate_s": round(written_s, 1),
        "disk_gib": round(disk / 2**30, 2),
    }


@dataclass
class BenchPromoteConfig:
    """`python -m search.bench.promote`'s keys (the defaults: full Severstal)."""

    val: int = 566
    test: int = 1257
    models: int = 7
    size: str = "256x1600"  # HxW, or N for N x N
    classes: int = 4
    folder: str | None = None  # where the arrays go (None: the system's temporary folder)


def main(argv: Sequence[str]) -> int:
    from models.bench_step import parse_size

    args = compose_schema(BenchPromoteConfig, argv, __doc__ or "")
    for key in ("val", "test", "models", "classes"):
        value = getattr(args, key)
        require(value >= 1, f"{key}={value}: expected at least 1")
    size = parse_size(args.size)
    folder = Path(tempfile.mkdtemp(prefix="bench_promote.", dir=args.folder or None))
    try:
        line = run(
            folder,
            val=args.val,
            test=args.test,
            models=args.models,
            size=size,
            classes=args.classes,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    run_cli(main)
