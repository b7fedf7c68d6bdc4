"""Seconds per training step of one architecture, for a few batch sizes.

    python -m models.bench_step [--model unet] [--hparam filters=64 ...] [--size 32]
        [--batches 8 16] [--threads 1] [--steps 3] [--precision float32|auto|mixed_bfloat16|...]

Random inputs and masks at size x size, Adam, BCE; the first step (tracing) is timed apart
from the median of the rest. This is what tells whether a model's step cost follows the
pixels it sees or its parameter count (the search's embedded default is sized by it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence

__all__ = ["main", "step_seconds"]


def _value(text: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def step_seconds(
    name: str,
    hparams: dict,
    *,
    size: int,
    batch: int,
    steps: int,
    num_classes: int = 4,
    precision: str = "float32",
) -> dict[str, float]:
    """{first_s, median_s, params} of `steps` training steps at one batch size."""
    import keras
    import numpy as np

    from models.losses import get_loss
    from models.registry import build_model

    keras.backend.clear_session()
    from models.precision import wrap_optimizer

    model = build_model(
        name,
        input_shape=(None, None, 1),
        num_classes=num_classes,
        precision=precision,
        **hparams,
    )
    optimizer = wrap_optimizer(keras.optimizers.Adam(1e-3), precision=precision)
    model.compile(optimizer=optimizer, loss=get_loss("bce"))
    rng = np.random.default_rng(0)
    x = rng.random((batch, size, size, 1), dtype=np.float32)
    y = (rng.random((batch, size, size, num_classes)) > 0.9).astype(np.float32)
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - started)
    return {
        "first_s": round(times[0], 2),
        "median_s": round(statistics.median(times[1:] or times), 2),
        "params": int(model.count_params()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.bench_step", description=__doc__)
    parser.add_argument("--model", default="unet")
    parser.add_argument("--hparam", nargs="*", default=["filters=64"], metavar="KEY=VALUE")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batches", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument(
        "--precision",
        default="float32",
        help="auto | float32 | mixed_float16 | mixed_bfloat16 (auto: what a trial would pick here)",
    )
    args = parser.parse_args(argv)
    hparams = {}
    for item in args.hparam:
        key, sep, text = item.partition("=")
        if not sep or not key:
            parser.error(f"--hparam {item!r}: expected KEY=VALUE")
        hparams[key] = _value(text)
    if args.steps < 1:
        parser.error(f"--steps {args.steps}: expected at least 1")

    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    except RuntimeError:  # TensorFlow already started in this process (e.g. under pytest)
        pass
    threads = tf.config.threading.get_intra_op_parallelism_threads()  # what is in force
    from models.precision import resolve_precision

    try:
        precision = resolve_precision(args.precision)
    except ValueError as exc:
        parser.error(f"--precision {args.precision!r}: {exc}")
    for batch in args.batches:
        result = step_seconds(
            args.model,
            hparams,
            size=args.size,
            batch=batch,
            steps=args.steps,
            precision=precision,
        )
        print(
            json.dumps(
                {
                    "model": args.model,
                    **hparams,
                    "size": args.size,
                    "batch": batch,
                    "threads": threads,
                    "precision": precision,
                    **result,
                }
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
