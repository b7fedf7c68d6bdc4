"""What every source adapter returns: label entries with a lazy pixel loader, and the problems."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from data.images import ImageError, read_grey

__all__ = ["Entry", "Problems", "Scan", "SourceError", "ON_ERROR_CHOICES", "load_image_file"]

ON_ERROR_CHOICES = ("raise", "skip")


class SourceError(ValueError):
    """Bad input in a dataset: the message names the file or row and what would be right."""


@dataclass(frozen=True)
class Entry:
    """One image's labels; `load()` returns its grey uint8 (H, W) pixels (may raise SourceError)."""

    image_id: str
    height: int
    width: int
    rles: tuple[str, ...]
    load: Callable[[], np.ndarray] = field(repr=False, compare=False)
    subset: str | None = None  # the source's own split folder (folder sources), if any

    @property
    def defective(self) -> bool:
        return any(self.rles)


@dataclass
class Problems:
    """Raises at the first bad record (on_error='raise') or collects them (on_error='skip')."""

    on_error: str
    skipped: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.on_error not in ON_ERROR_CHOICES:
            raise SourceError(
                f"on_error={self.on_error!r}: expected one of {', '.join(ON_ERROR_CHOICES)}"
            )

    def report(self, record: str, message: str) -> None:
        if self.on_error == "raise":
            raise SourceError(message)
        self.skipped.append({"record": record, "reason": message})


@dataclass
class Scan:
    """A source's entries, plus a fingerprint of everything that was read to make them."""

    entries: list[Entry]
    fingerprint: hashlib._Hash = field(default_factory=hashlib.sha256)

    def add_to_fingerprint(self, *parts: object) -> None:
        for part in parts:
            self.fingerprint.update(repr(part).encode())
            self.fingerprint.update(b"\0")


def load_image_file(path: Path, height: int, width: int) -> np.ndarray:
    """Grey pixels of `path`, which must decode to the size its labels were validated against."""
    try:
        pixels = read_grey(path)
    except ImageError as exc:
        raise SourceError(str(exc)) from None
    if pixels.shape != (height, width):
        raise SourceError(
            f"{path}: decoded image is {pixels.shape[0]}x{pixels.shape[1]} (HxW) "
            f"but its header said {height}x{width}"
        )
    return pixels
