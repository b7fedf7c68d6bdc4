"""Seconds per training step of one architecture, for a few batch sizes.

    python -m models.bench_step [model=unet] ['hparam={filters:64,depth:5}'] ['filters=[8,16]']
        [size=32 | size=256x1600] ['batches=[8,16]'] [threads=1] [steps=3]
        [precision=float32|auto|mixed_float16|mixed_bfloat16] [backend=tensorflow|jax]
        [concurrent=1]

Random inputs and masks at H x W, Adam, BCE; the first step (tracing, XLA compilation) is
timed apart from the median of the rest. Each line is JSON: seconds per step, images/s, the
peak device memory (GPU; null on a CPU) and the process's peak host memory. This is what
tells whether a model's step cost follows the pixels it sees or its parameter count (the
search's embedded default is sized by it), and what a GPU trial of a model costs.

`hparam={KEY:VALUE,...}` is the model's hyperparameters, replacing the default
`{filters:64}` as a whole. Quote list and mapping values in a shell (`'filters=[8,16]'`):
unquoted, the shell expands the braces and may glob the brackets.

`filters=[8,16,32,64]` runs each value in its own process (added to `hparam`), so every peak
is that model's alone. The processes compile at once and then take turns to time their
steps, so compile time (about a minute each at 256x1600 on a GPU) overlaps while no two
timings do. `concurrent=N` runs N copies of one model at once and times them together: the
packing of N trials on one device (`gpus_per_trial=1/N`); a last line gives their summed
images/s. `backend=` re-runs the command under that Keras backend (`KERAS_BACKEND`); on a
machine without TensorFlow, set `KERAS_BACKEND=jax` yourself, since Keras loads its backend
when `models` is imported. Child processes grow device memory as they need it (JAX's
preallocation and TensorFlow's grab-all are turned off), so they can share one GPU.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from data.config import compose_schema, require, run_cli
from models.precision import PRECISION_CHOICES

__all__ = ["BenchStepConfig", "main", "parse_size", "step_seconds"]

DEFAULT_HPARAMS = {"filters": 64}
# The parent's barrier for its child processes (see _Sync), as JSON in their environment.
SYNC_ENV = "BENCH_STEP_SYNC"
# The keys the parent decides for each child process (one filters value, the backend).
_PARENT_KEYS = ("filters", "backend", "concurrent")


class Backend(StrEnum):
    tensorflow = "tensorflow"
    jax = "jax"


# auto: what a trial would pick on this machine; or a policy.
Precision = StrEnum("Precision", {name: name for name in PRECISION_CHOICES})


@dataclass
class BenchStepConfig:
    """`python -m models.bench_step`'s keys (see the module docstring)."""

    model: str = "unet"
    hparam: Any = None  # a mapping {key: value}; None: DEFAULT_HPARAMS
    size: str = "32x32"  # N (square) or HxW
    filters: list[int] = field(default_factory=list)  # each value in its own process
    concurrent: int = 1  # N processes of one model timed at once
    backend: Backend | None = None  # None: the backend Keras loaded
    batches: list[int] = field(default_factory=lambda: [8, 16])
    threads: int = 1
    steps: int = 3
    precision: Precision = Precision["float32"]


def parse_size(text: str, key: str = "size") -> tuple[int, int]:
    """`32` (square) or `256x1600` (height x width); ConfigError naming `key` otherwise."""
    parts = str(text).lower().split("x")
    try:
        sides = tuple(int(p) for p in parts)
    except ValueError:
        sides = ()
    if len(sides) == 1:
        sides = sides * 2
    require(
        len(sides) == 2 and min(sides) >= 1,
        f"{key}={text}: expected N or HxW with positive integers",
    )
    return sides


def _reset_peak() -> None:
    """Start a new device-memory peak where the backend can (TensorFlow on a GPU)."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        for gpu in tf.config.list_logical_devices("GPU")[:1]:
            tf.config.experimental.reset_memory_stats(gpu.name)


def device_memory() -> tuple[str, float | None]:
    """The accelerator's name and its peak memory in MiB (None on a CPU).

    Under JAX the peak cannot be reset: it is the process's, so `filters=` runs each model
    in its own process.
    """
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            details = tf.config.experimental.get_device_details(
                tf.config.list_physical_devices("GPU")[0]
            )
            peak = tf.config.experimental.get_memory_info(gpus[0].name)["peak"]
            return str(details.get("device_name", gpus[0].name)), round(peak / 2**20, 1)
    elif backend == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform != "cpu":
            stats = device.memory_stats() or {}
            peak = stats.get("peak_bytes_in_use")
            return device.device_kind, None if peak is None else round(peak / 2**20, 1)
    return _cpu_name(), None


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return "CPU: " + line.partition(":")[2].strip()
    except OSError:
        pass
    return "CPU"


def step_seconds(
    name: str,
    hparams: dict,
    *,
    size: int | tuple[int, int],
    batch: int,
    steps: int,
    num_classes: int = 4,
    precision: str = "float32",
    ready: Callable[[], object] | None = None,
) -> dict[str, float]:
    """{first_s, median_s, images_per_s, steps, window_s, params}: a first step, then `steps`.

    The batch is put on the device once, as the backend's tensors, so the timing is the
    step's and not the host-to-device copy of random data. `ready`, if given, is called
    between the first step and the timed ones (a barrier or a lock, see `_Sync`); it may
    return a context manager that is held while the timed steps run.
    """
    import keras
    import numpy as np

    from models.losses import get_loss
    from models.precision import wrap_optimizer
    from models.registry import build_model

    keras.backend.clear_session()
    model = build_model(
        name,
        input_shape=(None, None, 1),
        num_classes=num_classes,
        precision=precision,
        **hparams,
    )
    optimizer = wrap_optimizer(keras.optimizers.Adam(1e-3), precision=precision)
    model.compile(optimizer=optimizer, loss=get_loss("bce"))
    height, width = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(0)
    x = keras.ops.convert_to_tensor(rng.integers(0, 256, (batch, height, width, 1), dtype=np.uint8))
    y = keras.ops.convert_to_tensor(
        (rng.random((batch, height, width, num_classes)) > 0.9).astype(np.float32)
    )
    started = time.perf_counter()
    model.train_on_batch(x, y)  # returns the loss as a number: the step has finished
    first = time.perf_counter() - started
    held = ready() if ready is not None else None
    times = []
    with held or contextlib.nullcontext():
        window = time.perf_counter()
        for _ in range(steps):
            started = time.perf_counter()
            model.train_on_batch(x, y)
            times.append(time.perf_counter() - started)
        window = time.perf_counter() - window
    median = statistics.median(times)
    return {
        "first_s": round(first, 4),
        "median_s": round(median, 4),
        "images_per_s": round(batch / median, 1),
        "steps": steps,
        "window_s": round(window, 4),
        "params": int(model.count_params()),
    }


class _Sync:
    """Processes of one command meeting in a folder: a barrier, then a lock or none.

    Each process creates `ready.<rank>` once compiled, and waits for all `world` files. With
    `turns`, each then times its steps holding an exclusive lock on `turn.lock`, one after
    another; without, all time at once (the packing measurement).
    """

    def __init__(self, folder: str, rank: int, world: int, turns: bool) -> None:
        self.folder, self.rank, self.world, self.turns = Path(folder), rank, world, turns

    @classmethod
    def from_env(cls) -> _Sync | None:
        """The parent's barrier, in a child process (`SYNC_ENV` set); None in the parent."""
        text = os.environ.get(SYNC_ENV)
        if not text:
            return None
        spec = json.loads(text)
        return cls(spec["folder"], spec["rank"], spec["world"], spec["turns"])

    def to_env(self) -> str:
        folder, rank, world, turns = str(self.folder), self.rank, self.world, self.turns
        return json.dumps({"folder": folder, "rank": rank, "world": world, "turns": turns})

    def __call__(self) -> object:
        (self.folder / f"ready.{self.rank}").touch()
        deadline = time.monotonic() + 1800
        while len(list(self.folder.glob("ready.*"))) < self.world:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.folder}: not all {self.world} processes got ready")
            time.sleep(0.02)
        return _Turn(self.folder / "turn.lock") if self.turns else None


class _Turn:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> None:
        self.handle = open(self.path, "a")  # noqa: SIM115 (held for the block)
        fcntl.flock(self.handle, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


def _hparams(value: Any) -> dict[str, Any]:
    if value is None:
        return dict(DEFAULT_HPARAMS)
    require(
        isinstance(value, dict),
        f"hparam={value}: expected a mapping such as 'hparam={{filters:64,depth:5}}'",
    )
    return dict(value)


def _check(args: BenchStepConfig) -> None:
    require(args.steps >= 1, f"steps={args.steps}: expected at least 1")
    require(args.concurrent >= 1, f"concurrent={args.concurrent}: expected at least 1")
    require(
        bool(args.batches) and min(args.batches) >= 1,
        f"batches={args.batches}: expected one or more batch sizes >= 1",
    )
    require(
        args.concurrent == 1 or len(args.filters) <= 1,
        f"filters={args.filters}: concurrent={args.concurrent} packs copies of one model, "
        "give one filters value",
    )
    require(
        args.concurrent == 1 or len(args.batches) == 1,
        f"batches={args.batches}: concurrent={args.concurrent} times one batch size, "
        "give one batches value",
    )


def main(argv: Sequence[str]) -> int:
    args = compose_schema(BenchStepConfig, argv, __doc__ or "")
    hparams = _hparams(args.hparam)
    size = parse_size(args.size)
    _check(args)
    import keras

    backend = args.backend.value if args.backend is not None else keras.backend.backend()
    sync = _Sync.from_env()
    many = len(args.filters) > 1 or args.concurrent > 1
    if sync is None and (many or backend != keras.backend.backend()):
        return _in_children(argv, args.filters or [None], backend, args.concurrent)
    if args.filters:
        hparams["filters"] = args.filters[0]
    threads = _set_threads(args.threads)
    from models.precision import resolve_precision

    precision = resolve_precision(args.precision.value)
    for index, batch in enumerate(args.batches):
        result = step_seconds(
            args.model,
            hparams,
            size=size,
            batch=batch,
            steps=args.steps,
            precision=precision,
            # The barrier holds once: later batch sizes of one process run in its turn.
            ready=sync if index == 0 else None,
        )
        device, peak = device_memory()
        line = {
            "model": args.model,
            **hparams,
            "size": f"{size[0]}x{size[1]}",
            "batch": batch,
            "threads": threads,
            "precision": precision,
            "backend": keras.backend.backend(),
            "device": device,
            **result,
            "peak_device_mib": peak,
            # ru_maxrss is KiB on Linux: the process's peak, every batch size so far.
            "peak_host_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
        print(json.dumps(line), flush=True)
        _reset_peak()
    return 0


def _set_threads(threads: int) -> int | None:
    """Intra-op threads in force: TensorFlow's setting (it runs the CPU ops or feeds them)."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return None  # XLA's CPU threads are set by XLA_FLAGS before JAX starts
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow already started in this process (e.g. under pytest)
        pass
    return tf.config.threading.get_intra_op_parallelism_threads()


def _in_children(
    argv: Sequence[str], filters: Sequence[int | None], backend: str, concurrent: int
) -> int:
    """Run the command in fresh processes on `backend`: one per filters value, taking turns
    to time, or `concurrent` copies of one model timed at once. Prints their lines in order."""
    base = [a for a in argv if a.split("=", 1)[0].lstrip("+~") not in _PARENT_KEYS]
    env = {
        **os.environ,
        "KERAS_BACKEND": backend,
        # Grow device memory on demand, so processes can share one GPU and peaks are real.
        "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
        "TF_FORCE_GPU_ALLOW_GROWTH": "true",
    }
    runs = [[] if v is None else [f"filters=[{v}]"] for v in filters] * concurrent
    with tempfile.TemporaryDirectory(prefix="bench_step.") as folder:
        children = [
            subprocess.Popen(
                [sys.executable, "-m", "models.bench_step", *base, *extra, f"backend={backend}"],
                env={**env, SYNC_ENV: _Sync(folder, rank, len(runs), concurrent == 1).to_env()},
                stdout=subprocess.PIPE,
                text=True,
            )
            for rank, extra in enumerate(runs)
        ]
        outputs, failed = [], 0
        for child in children:
            out, _ = child.communicate()
            outputs.append(out)
            if child.returncode != 0:
                failed = failed or child.returncode
                for other in children:  # a sibling waiting at the barrier would wait alone
                    if other.poll() is None:
                        other.kill()
    lines = []
    for out in outputs:
        sys.stdout.write(out)
        lines += [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    if failed:
        return failed
    if concurrent > 1:
        images = sum(x["batch"] * x["steps"] for x in lines)
        print(
            json.dumps(
                {
                    "concurrent": concurrent,
                    "model": lines[0]["model"],
                    "size": lines[0]["size"],
                    "batch": lines[0]["batch"],
                    "device": lines[0]["device"],
                    # Summed over processes that ran at once: images done / the longest window.
                    "total_images_per_s": round(images / max(x["window_s"] for x in lines), 1),
                    "sum_median_images_per_s": round(sum(x["images_per_s"] for x in lines), 1),
                }
            ),
            flush=True,
        )
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    run_cli(main)
