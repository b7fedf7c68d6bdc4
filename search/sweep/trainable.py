"""The Tune trainable: the one place that runs inside a Ray trial.

`train_segmentation(config)` builds the data and the model, trains epoch by epoch and reports
metrics plus a checkpoint (`model.keras` with the optimizer state, and `state.json`) to Tune
after every epoch through a Keras callback. A restarted trial resumes from
`tune.get_checkpoint()` at the next epoch, with the same data order it would have had.

`config` is `{"point": {...}, "settings": {...}}`: the trial's grid point and the run-wide
settings (shards URI, class names, train section, seed, threads), all plain values.
"""

from __future__ import annotations

import json
import math
import os
import socket
import tempfile
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "NaNLossError",
    "TrialData",
    "configure_backend",
    "new_model",
    "prepare_trial",
    "train_segmentation",
    "CHECKPOINT_MODEL",
    "CHECKPOINT_STATE",
    "epoch_batches",
    "open_splits",
    "val_batches",
    "trial_batches",
    "steps_per_epoch",
    "learning_rate",
]

CHECKPOINT_MODEL = "model.keras"
CHECKPOINT_STATE = "state.json"


class NaNLossError(FloatingPointError):
    """The training loss became NaN or infinite: this trial's configuration diverged."""


def configure_backend(threads: int, backend: str = "tensorflow") -> None:
    import keras
    import tensorflow as tf

    if keras.backend.backend() != backend:
        raise RuntimeError(
            f"train.backend={backend} but this worker's Keras runs on "
            f"{keras.backend.backend()} (KERAS_BACKEND={os.environ.get('KERAS_BACKEND')!r}): "
            "the worker imported Keras before the search set its backend"
        )
    # A reused actor (TuneConfig reuse_actors) keeps TF initialised: the settings below then
    # raise RuntimeError and are already in force; the previous trial's graph state goes.
    keras.backend.clear_session()
    try:
        if backend != "tensorflow":  # TensorFlow only feeds the data: the GPU is the model's
            tf.config.set_visible_devices([], "GPU")
        # Trials share a GPU only if none grabs all of its memory up front.
        for gpu in tf.config.list_physical_devices("GPU"):
            tf.config.experimental.set_memory_growth(gpu, True)
        # One trial per CPU it was given: more threads would fight the other trials for cores.
        tf.config.threading.set_intra_op_parallelism_threads(max(1, threads))
        tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, threads)))
    except RuntimeError:
        # A reused worker: TensorFlow keeps the settings of its first trial. Going on is right
        # (the results do not depend on them), but a different thread count is said.
        in_force = tf.config.threading.get_intra_op_parallelism_threads()
        if in_force != max(1, threads):
            warnings.warn(
                f"this reused worker keeps {in_force} TensorFlow thread(s) from its first "
                f"trial; this trial asked for {max(1, threads)} (it runs, at that speed)",
                RuntimeWarning,
                stacklevel=2,
            )


def assigned_share() -> tuple[float, float]:
    """(CPUs, GPUs) Ray gave this worker: its placement bundle's (keys CPU_group_...)."""
    import ray

    assigned = ray.get_runtime_context().get_assigned_resources()

    def largest(kind: str) -> float:
        return max((float(v) for k, v in assigned.items() if k.split("_")[0] == kind), default=0.0)

    return largest("CPU"), largest("GPU")


def _optimizer(name: str, learning_rate: Any) -> Any:
    import keras

    if name == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate)
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate=learning_rate)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.9)
    raise ValueError(f"train.optimizer={name!r}: expected adam, adamw or sgd")


def learning_rate(point: Mapping[str, Any], train: Mapping[str, Any], steps_per_epoch: int) -> Any:
    """The optimizer's learning rate: the point's (or train's) rate, constant, or with
    `train.lr_schedule=cosine` a cosine decay from it to 0 over the trial's epochs x steps.

    The schedule is a function of the optimizer's iteration count, which the checkpoint holds,
    so a resumed trial continues the same curve.
    """
    import keras

    rate = float(point.get("learning_rate", train["learning_rate"]))
    schedule = train["lr_schedule"]
    if schedule == "constant":
        return rate
    if schedule == "cosine":
        epochs = int(point.get("epochs", train["epochs"]))
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=rate, decay_steps=max(1, epochs * int(steps_per_epoch))
        )
    raise ValueError(f"train.lr_schedule={schedule!r}: expected constant or cosine")


def new_model(
    point: Mapping[str, Any], settings: Mapping[str, Any], precision: str, steps_per_epoch: int
) -> Any:
    import keras

    import models
    from models.losses import get_loss
    from models.metrics import dice_metrics
    from search.sweep.spaces import model_hparams

    train = settings["train"]
    keras.utils.set_random_seed(int(settings["seed"]))
    model = models.build_model(
        point["model"],
        input_shape=(None, None, 1),
        num_classes=len(settings["class_names"]),
        precision=precision,
        **model_hparams(point),
    )
    rate = learning_rate(point, train, steps_per_epoch)
    model.compile(
        # Explicit loss scaling under mixed_float16, so a resumed trial keeps its optimizer state.
        optimizer=models.wrap_optimizer(_optimizer(train["optimizer"], rate), precision=precision),
        loss=get_loss(point.get("loss", "bce")),
        metrics=dice_metrics(settings["class_names"]),
    )
    return model


def _restore(checkpoint: Any) -> tuple[Any, int, list[dict[str, Any]]]:
    """The compiled model (optimizer state included), the number of epochs done and the
    metrics of each of those epochs (the checkpoint's `history`)."""
    import models

    with checkpoint.as_directory() as folder:
        state = json.loads((Path(folder) / CHECKPOINT_STATE).read_text())
        model = models.load_model(Path(folder) / CHECKPOINT_MODEL)
    return model, int(state["epoch"]), list(state.get("history") or [])


def open_splits(settings: Mapping[str, Any]) -> tuple[Any, Any]:
    """The trial's training and validation records (each read from the shards once, cached
    when they fit): one input pipeline for the whole trial, not one per epoch."""
    from data.reader import open_split

    train = settings["train"]
    records = open_split(settings["shards"], "train", limit=train["limit_train"])
    val = open_split(settings["shards"], "val", limit=train["limit_val"])
    return records, val


def val_batches(val: Any, settings: Mapping[str, Any], dtype: str = "uint8") -> Any:
    """The validation dataset, in the order of the split, as the model takes its images
    (`models.inputs.input_dtype`: uint8, or float32 for a checkpoint from before)."""
    return val.dataset(
        batch_size=int(settings["train"]["batch_size"]), deterministic=True, dtype=dtype
    )


@dataclass(frozen=True)
class TrialData:
    """What a trial trains and validates on, opened once for all its epochs."""

    records: Any  # the training split (data.reader.SplitRecords)
    val: Any  # the validation split (data.reader.SplitRecords): `val_batches` reads it
    steps: int  # optimizer steps an epoch
    precision: str  # train.precision resolved on this machine


def prepare_trial(settings: Mapping[str, Any], threads: int) -> TrialData:
    """Configure this process's backend and open the trial's data: the steps a trial runs
    before its first epoch (`train_segmentation`, and `search.bench.trial`'s plain fit)."""
    configure_backend(threads, settings["train"]["backend"])
    from models import resolve_precision

    records, val = open_splits(settings)
    return TrialData(
        records,
        val,
        steps_per_epoch(records, settings),
        resolve_precision(settings["train"]["precision"]),
    )


def epoch_seed(settings: Mapping[str, Any], epoch: int) -> int:
    return int(settings["seed"]) * 100_003 + epoch


def epoch_batches(
    records: Any, settings: Mapping[str, Any], epoch: int, dtype: str = "uint8"
) -> Any:
    """Epoch `epoch`'s training batches: a function of the seed and the epoch alone, so epoch
    e of a resumed trial sees the same batches as epoch e of an uninterrupted one. uint8
    images and masks by default: the model scales the images and the loss casts the masks."""
    train = settings["train"]
    crop = train["crop"]
    return records.dataset(
        batch_size=int(train["batch_size"]),
        crop=tuple(crop) if crop else None,
        crop_mode=train["crop_mode"],
        flip=bool(train["flip"]),
        shuffle=True,
        seed=epoch_seed(settings, epoch),
        deterministic=True,
        dtype=dtype,
    )


def steps_per_epoch(records: Any, settings: Mapping[str, Any]) -> int:
    return math.ceil(records.examples / int(settings["train"]["batch_size"]))


def trial_batches(
    records: Any, settings: Mapping[str, Any], first: int, last: int, dtype: str = "uint8"
) -> tuple[Any, int]:
    """Epochs first..last-1 as one dataset, and the steps in each: fed to a single `fit`.

    One `fit` call per trial rather than one per epoch: each call costs Keras a new iterator,
    its callbacks' setup and a validation warm-up, which at a few steps an epoch was most of
    the epoch. The epochs share `records`, so the shards are still read once.
    """
    chained = None
    for epoch in range(first, last):
        batches = epoch_batches(records, settings, epoch, dtype)
        chained = batches if chained is None else chained.concatenate(batches)
    return chained, steps_per_epoch(records, settings)


def _reporter(**kwargs: Any) -> Any:
    """Keras callback: NaN check per batch, then metrics + checkpoint to Tune per epoch."""
    import keras

    # Defined here so that importing this module (the driver does) does not import Keras.
    class Reporter(keras.callbacks.Callback):
        def __init__(
            self,
            *,
            class_names,
            train_images,
            started,
            node_id,
            precision,
            share,
            history,
            input_wait,
        ):
            super().__init__()
            # Every epoch's metrics so far, carried in each checkpoint (see _report_epoch).
            self.history = list(history)
            self.precision = precision
            self.share = share  # (CPUs, GPUs) Ray gave the trial: fixed for its life
            self.class_names = list(class_names)
            self.train_images = train_images
            self.started = started
            self.node_id = node_id
            self.input_wait = input_wait  # data.input_wait.InputWait on the training batches
            self.epoch_started = 0.0
            self.trained = 0.0
            self.wait_started = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_started = time.perf_counter()
            self.trained = self.epoch_started
            self.wait_started = self.input_wait.seconds()

        def on_train_batch_end(self, batch, logs=None):
            self.trained = time.perf_counter()  # the last one marks the end of training
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                raise NaNLossError(f"training loss is {float(loss)} at batch {batch}")

        def on_epoch_end(self, epoch, logs=None):
            _report_epoch(self, epoch, dict(logs or {}))

    return Reporter(**kwargs)


def _report_epoch(callback: Any, epoch: int, logs: dict[str, Any]) -> None:
    import keras
    import ray
    from ray import tune

    now = time.perf_counter()
    seconds = now - callback.epoch_started
    train_s = max(callback.trained - callback.epoch_started, 1e-9)
    # Seconds of the training steps spent waiting for the next batch: only they take training
    # batches (validation reads its own dataset), so the total has not moved since the last
    # step. Above search.records.INPUT_BOUND_SHARE of train_s the trial is input-bound.
    input_wait_s = max(callback.input_wait.seconds() - callback.wait_started, 0.0)
    for key in ("loss", "val_loss"):
        if key in logs and not math.isfinite(float(logs[key])):
            raise NaNLossError(f"{key} is {float(logs[key])} after epoch {epoch + 1}")
    metrics: dict[str, Any] = {k: float(v) for k, v in logs.items()}
    metrics.update(
        epoch=epoch + 1,
        epoch_s=round(seconds, 3),
        train_s=round(train_s, 3),  # the training steps alone; the rest is validation
        val_s=round(now - callback.trained, 3),
        images_per_s=round(callback.train_images / train_s, 2),
        input_wait_s=round(input_wait_s, 3),
        input_wait_share=round(min(input_wait_s / train_s, 1.0), 4),
        params=int(callback.model.count_params()),
        node_id=callback.node_id,
        host=socket.gethostname(),
        precision=callback.precision,
        backend=keras.backend.backend(),
        pid=os.getpid(),
        gpu_ids=",".join(str(i) for i in ray.get_gpu_ids()),
        cpus=callback.share[0],
        gpus=callback.share[1],
        trial_started=callback.started,
    )
    # The checkpoint carries every epoch's metrics, not only this one's: Tune's result.json is
    # copied from the driver to the trial folder in place, so a driver killed mid-copy leaves
    # it truncated (search.bench.chaos found one emptied). A checkpoint folder is written once, by
    # this worker, so search.sweep.leaderboard rebuilds lost epochs from the newest one.
    # Tune's own keys that name the line (the report reads them), besides our metrics.
    entry = dict(metrics, trial_id=tune.get_context().get_trial_id(), training_iteration=epoch + 1)
    callback.history.append(entry)  # a restored history ends at the epoch before this one
    with tempfile.TemporaryDirectory(prefix="ckpt-") as folder:
        callback.model.save(Path(folder) / CHECKPOINT_MODEL)
        state = {"epoch": epoch + 1, "metrics": metrics, "history": callback.history}
        (Path(folder) / CHECKPOINT_STATE).write_text(json.dumps(state, indent=1))
        # report() copies the folder to the trial's storage before it returns.
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


def quiet_ray_chatter() -> None:
    """Ray Train logs "Checkpoint successfully created at: ..." for every checkpoint of every
    trial, and the worker's log reaches the driver's terminal: 48 such lines in a 16-trial
    search. The checkpoint each trial kept is in the leaderboard; Ray's warnings still show."""
    import logging

    logging.getLogger("ray.train._internal.storage").setLevel(logging.WARNING)


def train_segmentation(config: Mapping[str, Any]) -> None:
    """Train one grid point; Tune calls this in a worker process."""
    quiet_ray_chatter()
    settings, point = config["settings"], config["point"]
    cpus, gpus = assigned_share()
    # One thread pool as wide as the CPUs this trial was given (its model's own share).
    threads = max(1, math.ceil(cpus)) if cpus else int(settings["threads"])
    data = prepare_trial(settings, threads)
    records, val, steps, precision = data.records, data.val, data.steps, data.precision
    import keras
    import ray
    from ray import tune

    from data.input_wait import InputWait

    wait = InputWait()
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        model, done, history = _restore(checkpoint)
    else:
        model, done, history = new_model(point, settings, precision, steps), 0, []
    reporter = _reporter(
        class_names=settings["class_names"],
        train_images=records.examples,
        started=time.time(),
        node_id=ray.get_runtime_context().get_node_id(),
        precision=precision,
        share=(cpus, gpus),
        history=history,
        input_wait=wait,
    )
    # Seeded once, with the trial's seed whatever epoch it starts at: TensorFlow's shuffle
    # combines its own seed (the epoch's) with this global one, so a worker that resumed at
    # epoch k under another global seed shuffled its epochs differently from the worker that
    # ran them uninterrupted (search.bench.chaos found it: equal scores, different losses). Crops
    # and flips are stateless. Reseeding every epoch made TensorFlow retrace the train step
    # each epoch (1.5 s of a 2 s epoch for a small U-Net); the models hold no random layers.
    keras.utils.set_random_seed(int(settings["seed"]))
    last = int(point.get("epochs", settings["train"]["epochs"]))
    if done >= last:
        return
    from models.inputs import input_dtype

    dtype = input_dtype(model)  # float32 only for a checkpoint from before uint8 inputs
    batches, _ = trial_batches(records, settings, done, last, dtype)
    model.fit(
        wait.wrap(batches),
        steps_per_epoch=steps,
        validation_data=val_batches(val, settings, dtype),
        initial_epoch=done,
        epochs=last,
        callbacks=[reporter],
        shuffle=False,  # the tf.data pipeline shuffles, seeded per epoch
        verbose=0,
    )
