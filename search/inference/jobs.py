"""Promotion's inference: each candidate model's uint8 probabilities for the val and test splits.

One job per model: load the checkpoint, predict both splits (flip TTA optional) in batches of
one image size, quantise, write `<name>.<split>.levels.npy` into the work folder, and export
the model without its optimizer state as `<name>.keras` there for `final/`. Under a running
Ray (the search's own, or a cluster joined by `search.run`), each job is a Ray task with the
GPU share a trial had, so prediction runs on the GPU workers (the work folder sits in the
experiment folder, which a cluster keeps on its shared file system). Without Ray, the jobs run
one after another in one spawned child process. Either way the driver loads no model and
predicts nothing: its memory is the chunks it scores, not a model's activations at 256x1600.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from search.memory import peak_rss_mib
from search.promotion.arrays import OnDisk, PromotionError, Split, open_array, reopen_split

__all__ = ["Job", "exported_model", "predict_split", "run_jobs"]


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
                probs = model_probabilities(model, pixels, flips=flips)
                if levels is None:
                    shape = (n, *split.images.shape[1:], probs.shape[-1])
                    levels = open_array(out, shape, np.uint8)
                levels[chosen, :height, :width] = postprocess.quantise(probs)
                bar.update(probs.shape[0])
    return levels  # with `out`, an OnDisk: each batch was written and unmapped as it came


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
    """Predict every split with one model and export it (`exported_model`); returns {files:
    {split: levels file}, host, pid, seconds, peak_rss_mib}. Runs anywhere the work folder is
    mounted: in the child process `run_jobs` spawns, or in a Ray task on a worker.

    The export is the checkpoint's model without its optimizer state (a third of the file for
    Adam): trial checkpoints keep the optimizer for a resumed trial, a promoted model only
    predicts. Loaded and saved uncompiled, so loading it builds no optimizer either."""
    from search.inference.loading import ModelLoadError, check_classes, load_keras_model

    started = time.perf_counter()
    try:
        model = load_keras_model(job.model_file, compile=False)
        check_classes(model, class_names, job.model_file, f"the shards {uri}")
    except ModelLoadError as exc:
        raise PromotionError(f"trial {job.trial_id} ({job.model}): {exc}") from exc
    exported = exported_model(folder, job.name)
    model.save(exported)
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
    import keras

    del model
    keras.backend.clear_session()  # the next job in this process starts from a clean graph
    # The process's peak so far (in the child, over its jobs so far).
    where = {"host": socket.gethostname(), "pid": os.getpid(), "peak_rss_mib": peak_rss_mib()}
    seconds = round(time.perf_counter() - started, 2)
    return {"files": written, **where, "seconds": seconds}


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
    """({split name: levels `OnDisk`} per job, {host, pid, seconds, peak_rss_mib} per job), in
    the jobs' order; each job's model exported at `exported_model(folder, job.name)`.

    Under a running Ray, one task per job with `cpus` and `gpus` (the trials' share), at
    most as many at once as Ray can place; otherwise in one spawned child process, one model
    at a time (a fresh interpreter: nothing of TensorFlow comes back into this one).
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
        files = _in_child(jobs, folder, index, tuple(class_names), uri, progress, kwargs)
    levels = [{name: OnDisk(Path(path)) for name, path in f["files"].items()} for f in files]
    return levels, [{k: v for k, v in f.items() if k != "files"} for f in files]


def exported_model(folder: Path, job_name: str) -> Path:
    """Where `_predict_job` exported the model of job `job_name` in the work folder."""
    return Path(folder) / f"{job_name}.keras"


def _in_child(
    jobs: Sequence[Job],
    folder: Path,
    index: Sequence[tuple[str, list[str], np.ndarray]],
    class_names: tuple[str, ...],
    uri: str,
    progress: bool,
    kwargs: dict[str, Any],
) -> list[dict[str, Any]]:
    """`_predict_job` for every job, in order, in one spawned process (spawn, not fork: the
    child imports TensorFlow itself and inherits no threads or locks of the driver)."""
    context = multiprocessing.get_context("spawn")
    files = []
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        for job in jobs:
            future = pool.submit(
                _predict_job, job, folder, index, class_names, uri, progress=progress, **kwargs
            )
            try:
                files.append(future.result())
            except BrokenProcessPool as exc:
                raise PromotionError(
                    f"trial {job.trial_id} ({job.model}): the prediction process died while "
                    f"predicting {job.model_file} (killed, or out of memory: try a smaller "
                    "batch_size)"
                ) from exc
    return files


def _ray_running() -> bool:
    try:
        import ray
    except ImportError:  # pragma: no cover - ray[tune] is a dependency
        return False
    return ray.is_initialized()
