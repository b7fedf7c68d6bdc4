"""Promotion's inference: each candidate model's uint8 probabilities for the val and test splits.

One job per model: load the checkpoint, predict both splits (flip TTA optional) in batches of
one image size, quantise, write `<name>.<split>.levels.npy` into the work folder. Under a
running Ray (the search's own, or a cluster joined by `search.run`), each job is a Ray task
with the GPU share a trial had, so prediction runs on the GPU workers and the driver only
opens the files they wrote (the work folder sits in the experiment folder, which a cluster
keeps on its shared file system). Without Ray, the jobs run here one after another.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from search.promotion.arrays import OnDisk, PromotionError, Split, open_array, reopen_split

__all__ = ["Job", "predict_split", "run_jobs"]


def predict_split(
    model: Any,
    split: Split,
    *,
    batch_size: int,
    flips: Sequence[str],
    label: str,
    progress: bool,
    out: Path | None = None,
) -> np.ndarray:
    """uint8 levels (N, H, W, C) of the model's probabilities
    (`search.promotion.postprocess.quantise` of what `search.predict` computes), in memory, or
    written to the `.npy` file `out` and returned as `OnDisk`."""
    from tqdm import tqdm

    from search.inference.loading import model_probabilities
    from search.promotion import postprocess

    levels = None
    n = len(split)
    with tqdm(total=n, desc=f"{label} {split.name}", unit="img", disable=not progress) as bar:
        # A batch holds images of one size, cut from the padding: the model sees each image
        # exactly as it would alone, and the padding's levels stay 0.
        for (height, width), indices in split.size_groups():
            for lo in range(0, len(indices), batch_size):
                chosen = indices[lo : lo + batch_size]
                pixels = np.asarray(split.images[chosen, :height, :width])[..., None]
                probs = model_probabilities(model, pixels.astype(np.float32) / 255.0, flips=flips)
                if levels is None:
                    shape = (n, *split.images.shape[1:], probs.shape[-1])
                    levels = open_array(out, shape, np.uint8)
                levels[chosen, :height, :width] = postprocess.quantise(probs)
                bar.update(probs.shape[0])
    if out is None:
        return levels
    levels.flush()
    del levels
    return OnDisk(out)


@dataclass(frozen=True)
class Job:
    """One candidate to predict: its name (file stem), checkpoint file, trial id, architecture."""

    name: str
    model_file: Path
    trial_id: str
    model: str


def _predict_job(
    job: Job,
    folder: Path,
    splits: Sequence[tuple[str, list[str], np.ndarray]],
    class_names: Sequence[str],
    uri: str,
    *,
    batch_size: int,
    flips: Sequence[str],
    progress: bool,
) -> dict[str, Any]:
    """Predict every split with one model; returns {files: {split: levels file}, host, pid,
    seconds}. Runs anywhere the work folder is mounted: here, or in a Ray task on a worker."""
    from search.inference.loading import ModelLoadError, check_classes, load_keras_model

    started = time.perf_counter()
    try:
        model = load_keras_model(job.model_file)
        check_classes(model, class_names, job.model_file, f"the shards {uri}")
    except ModelLoadError as exc:
        raise PromotionError(f"trial {job.trial_id} ({job.model}): {exc}") from exc
    written = {}
    for name, ids, sizes in splits:
        split = reopen_split(folder, name, ids, sizes)
        out = Path(folder) / f"{job.name}.{name}.levels.npy"
        predict_split(
            model,
            split,
            batch_size=batch_size,
            flips=flips,
            label=job.name,
            progress=progress,
            out=out,
        )
        written[name] = str(out)
    where = {"host": socket.gethostname(), "pid": os.getpid()}
    return {"files": written, **where, "seconds": round(time.perf_counter() - started, 2)}


def run_jobs(
    jobs: Sequence[Job],
    folder: Path,
    splits: Sequence[Split],
    class_names: Sequence[str],
    uri: str,
    *,
    batch_size: int,
    flips: Sequence[str],
    progress: bool,
    gpus: float = 0.0,
    cpus: float = 1.0,
) -> tuple[list[dict[str, np.ndarray]], list[dict[str, Any]]]:
    """({split name: levels `OnDisk`} per job, {host, pid, seconds} per job), in the jobs'
    order.

    Under a running Ray, one task per job with `cpus` and `gpus` (the trials' share), at
    most as many at once as Ray can place; otherwise in this process, one model at a time.
    """
    index = [(s.name, list(s.image_ids), np.asarray(s.sizes)) for s in splits]
    kwargs = {"batch_size": batch_size, "flips": tuple(flips)}
    if _ray_running():
        import ray

        task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=1)(_predict_job)
        refs = [
            task.remote(job, folder, index, tuple(class_names), uri, progress=False, **kwargs)
            for job in jobs
        ]
        try:
            files = ray.get(refs)
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause if isinstance(exc.cause, PromotionError) else exc
            raise PromotionError(str(cause)) from exc
    else:
        files = [
            _predict_job(job, folder, index, class_names, uri, progress=progress, **kwargs)
            for job in jobs
        ]
    levels = [{name: OnDisk(Path(path)) for name, path in f["files"].items()} for f in files]
    return levels, [{k: v for k, v in f.items() if k != "files"} for f in files]


def _ray_running() -> bool:
    try:
        import ray
    except ImportError:  # pragma: no cover - ray[tune] is a dependency
        return False
    return ray.is_initialized()
