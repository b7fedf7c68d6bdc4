"""Decode image files to grey uint8 pixels, with errors that name the file."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

__all__ = ["ImageError", "read_grey", "decode_grey", "image_size", "encode_png"]


class ImageError(ValueError):
    """An image that cannot be read, is truncated, or has the wrong size."""


def read_grey(path: str | Path) -> np.ndarray:
    """Grey uint8 (H, W) pixels of one image file. Raises ImageError naming the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"{path}: cannot read image file ({exc.strerror or exc})") from None
    return decode_grey(data, name=str(path))


def decode_grey(data: bytes, *, name: str) -> np.ndarray:
    """Grey uint8 (H, W) pixels from encoded bytes (JPEG, PNG, BMP...); `name` goes in errors."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # a truncated file fails here, not at open
            grey = image if image.mode == "L" else image.convert("L")
            return np.asarray(grey, dtype=np.uint8).copy()
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not a readable image (unknown or corrupt format)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{name}: unreadable or truncated image ({exc})") from None


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) from the file header alone. Raises ImageError naming the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            width, height = image.size
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not a readable image (unknown or corrupt format)") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read image header ({exc})") from None
    return height, width


def encode_png(pixels: np.ndarray) -> bytes:
    """Lossless PNG bytes of a grey uint8 (H, W) array."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()
