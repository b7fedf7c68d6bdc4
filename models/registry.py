"""Architectures by name: one registry, one builder per architecture, validated hyperparameters."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import keras

from models.hparams import HParam, HParamError, validate_hparams
from models.precision import dtype_policy

__all__ = ["build_model", "hparam_spec", "load_model", "model_names", "resolve_hparams"]


@dataclass(frozen=True)
class Architecture:
    name: str
    build: Callable[..., keras.Model]
    hparams: Mapping[str, HParam]


def _entries() -> tuple[Architecture, ...]:
    from models import deeplab, invresunet, resunet, unet

    return (
        Architecture("unet", unet.build_unet, unet.HPARAMS),
        Architecture("resunet", resunet.build_resunet, resunet.HPARAMS),
        Architecture("invresunet", invresunet.build_invresunet, invresunet.HPARAMS),
        Architecture("deeplabv3plus", deeplab.build_deeplabv3plus, deeplab.HPARAMS),
    )


@cache
def _registry() -> Mapping[str, Architecture]:
    registry: dict[str, Architecture] = {}
    for entry in _entries():
        if entry.name in registry:
            raise RuntimeError(f"model name {entry.name!r} is registered twice")
        registry[entry.name] = entry
    return MappingProxyType(registry)


def _architecture(name: str) -> Architecture:
    registry = _registry()
    if name not in registry:
        raise HParamError(f"unknown model {name!r}; known models: {', '.join(registry)}")
    return registry[name]


def model_names() -> tuple[str, ...]:
    """The registered architecture names."""
    return tuple(_registry())


def hparam_spec(name: str) -> dict[str, HParam]:
    """The hyperparameters `name` accepts, with defaults and allowed values (a fresh copy)."""
    return dict(_architecture(name).hparams)


def resolve_hparams(name: str, hparams: Mapping[str, Any]) -> dict[str, Any]:
    """All hyperparameters of `name`: `hparams` validated and completed with the defaults."""
    return validate_hparams(name, _architecture(name).hparams, hparams)


def _check_input_shape(name: str, input_shape: Any) -> tuple[int | None, int | None, int]:
    shape = tuple(input_shape) if isinstance(input_shape, list | tuple) else None
    ok = (
        shape is not None
        and len(shape) == 3
        and all(
            d is None or (isinstance(d, int) and not isinstance(d, bool) and d > 0)
            for d in shape[:2]
        )
        and isinstance(shape[2], int)
        and not isinstance(shape[2], bool)
        and shape[2] > 0
    )
    if not ok:
        raise HParamError(
            f"{name}: input_shape={input_shape!r} must be (height, width, channels) with positive "
            "ints (height/width may be None)"
        )
    return shape  # type: ignore[return-value]


def build_model(
    name: str,
    *,
    input_shape: tuple[int | None, int | None, int],
    num_classes: int,
    **hparams: Any,
) -> keras.Model:
    """Build architecture `name` emitting float32 logits (B, H, W, num_classes) for any H x W."""
    architecture = _architecture(name)
    values = validate_hparams(name, architecture.hparams, hparams)
    shape = _check_input_shape(name, input_shape)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise HParamError(f"{name}: num_classes={num_classes!r} must be a positive int")
    precision = values.pop("precision")
    with dtype_policy(precision):
        return architecture.build(input_shape=shape, num_classes=num_classes, **values)


def load_model(path: str | Path, *, compile: bool = True) -> keras.Model:
    """Load a `.keras` file in safe mode (no Lambda code runs). Errors name the file."""
    import models.losses  # noqa: F401  (registers the losses a compiled model refers to)
    import models.metrics  # noqa: F401

    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"{path}: expected a .keras model file")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file not found")
    try:
        return keras.saving.load_model(path, compile=compile, safe_mode=True)
    except Exception as exc:
        raise ValueError(f"{path}: cannot load model ({type(exc).__name__}: {exc})") from exc
