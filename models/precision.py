"""Dtype policies: choosing one for the hardware (`precision="auto"`), applying it only while
a model is built (so no global state leaks out), and the optimizer that goes with it."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import keras

from models.hparams import PRECISIONS

__all__ = [
    "PRECISION_CHOICES",
    "choose_precision",
    "cpu_flags",
    "dtype_policy",
    "gpu_capabilities",
    "resolve_precision",
    "wrap_optimizer",
]

# What a user may ask for: a policy, or "auto" (resolved on the machine that trains).
PRECISION_CHOICES = ("auto", *PRECISIONS)
# CPU instruction sets that make bfloat16 matrix work faster than float32 (x86 /proc/cpuinfo
# names): AVX-512 BF16 (Cooper Lake, Zen 4) and AMX (Sapphire Rapids). Without them oneDNN
# emulates bfloat16 and mixed_bfloat16 is slower than float32.
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
# Tensor cores with float16 arithmetic arrive with compute capability 7.0 (Volta); bfloat16
# ones, at the same rate, with 8.0 (Ampere). bfloat16 has float32's range, so it needs no loss
# scaling (and no LossScaleOptimizer state in checkpoints).
FLOAT16_MIN_CAPABILITY = (7, 0)
BFLOAT16_MIN_CAPABILITY = (8, 0)


def choose_precision(
    *, gpu_capabilities: Sequence[tuple[int, int]], cpu_flags: Collection[str]
) -> str:
    """The policy `auto` means for this hardware.

    - CUDA GPUs, all of compute capability >= 8.0 (Ampere, Hopper): mixed_bfloat16; all
      >= 7.0 (Volta, Turing): mixed_float16; any older GPU: float32.
    - No GPU, an x86 CPU with AVX512_BF16 or AMX-BF16: mixed_bfloat16.
    - Anything else: float32.
    """
    if gpu_capabilities:
        oldest = min(tuple(c) for c in gpu_capabilities)
        if oldest >= BFLOAT16_MIN_CAPABILITY:
            return "mixed_bfloat16"
        return "mixed_float16" if oldest >= FLOAT16_MIN_CAPABILITY else "float32"
    if BF16_CPU_FLAGS & set(cpu_flags):
        return "mixed_bfloat16"
    return "float32"


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags as Linux lists them; empty where there is no such file."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def gpu_capabilities() -> list[tuple[int, int]]:
    """Compute capabilities of the GPUs this process may use, through the Keras backend."""
    backend = keras.backend.backend()
    found: list[tuple[int, int]] = []
    if backend == "tensorflow":
        import tensorflow as tf

        for gpu in tf.config.list_physical_devices("GPU"):
            capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
            found.append(tuple(capability) if capability else (0, 0))
    elif backend == "jax":
        import jax

        for device in jax.devices():
            if device.platform == "gpu":
                major, _, minor = str(getattr(device, "compute_capability", "0.0")).partition(".")
                found.append((int(major), int(minor or 0)))
    elif backend == "torch":
        import torch

        for index in range(torch.cuda.device_count()):
            found.append(tuple(torch.cuda.get_device_capability(index)))
    return found


def resolve_precision(precision: str) -> str:
    """`precision` itself, or for "auto" the policy `choose_precision` picks on this machine."""
    if precision not in PRECISION_CHOICES:
        raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISION_CHOICES)}")
    if precision != "auto":
        return precision
    return choose_precision(gpu_capabilities=gpu_capabilities(), cpu_flags=cpu_flags())


@contextmanager
def dtype_policy(precision: str) -> Iterator[None]:
    """Layers created inside use `precision`; each layer stores its policy, so reloading keeps it."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def wrap_optimizer(
    optimizer: keras.optimizers.Optimizer, *, precision: str
) -> keras.optimizers.Optimizer:
    """The optimizer to compile a `precision` model with: loss-scaled under mixed_float16.

    Keras would add the loss scaling itself at compile time, but it saves only the inner
    optimizer in the compile config; a reloaded checkpoint (whose model-level policy reads
    float32) then builds a plain optimizer and silently drops the saved optimizer state.
    Wrapping explicitly makes the loss scaling part of the saved config, so resuming works.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "mixed_float16" and not isinstance(
        optimizer, keras.optimizers.LossScaleOptimizer
    ):
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
