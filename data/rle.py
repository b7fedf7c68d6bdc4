"""Kaggle run-length encoding: 1-indexed, column-major (top to bottom, then left to right).

A mask of height H and width W is flattened in Fortran order, so pixel (row r, column c) is
position `c * H + r + 1`. The string holds `start length` pairs; "" is the empty mask.

`decode`/`encode` are vectorised with NumPy. `decode_loop`/`encode_loop` are the plain
Python-loop reference codec, kept only so `python -m data.bench` and the tests can compare
against it; nothing else should call them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RLEError", "area", "decode", "encode", "parse", "decode_loop", "encode_loop"]


class RLEError(ValueError):
    """A malformed RLE string; the message names where it came from (file, row, image, class)."""


def _fail(where: str, problem: str) -> RLEError:
    prefix = f"{where}: " if where else ""
    return RLEError(f"{prefix}malformed RLE: {problem}")


def parse(rle: str, height: int, width: int, *, where: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Validated (starts, lengths) as int64 arrays, starts 1-indexed. Raises RLEError."""
    tokens = rle.split()
    if not tokens:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if len(tokens) % 2:
        raise _fail(where, f"odd count of numbers ({len(tokens)}); expected `start length` pairs")
    numbers = _to_int64(rle, tokens)
    if numbers is None:  # slow path: name the bad token, or accept signed integers
        bad = next((t for t in tokens if not _is_int(t)), None)
        if bad is not None:
            raise _fail(where, f"{bad!r} is not an integer")
        numbers = np.array([int(t) for t in tokens], dtype=np.int64)
    starts, lengths = numbers[0::2], numbers[1::2]
    _check_runs(starts, lengths, height * width, where)
    return starts, lengths


def _to_int64(text: str, tokens: list[str]) -> np.ndarray | None:
    """The numbers, or None if any token is not a plain non-negative integer."""
    if not "".join(tokens).isascii() or not "".join(tokens).isdigit():
        return None  # a sign, dot or letter: the caller finds the token to name
    # np.fromstring's text mode is ~10x faster than int() per token; the digit check above
    # and the count check below make sure it read every token.
    numbers = np.fromstring(
        " ".join(tokens) if len(tokens) * 2 - 1 != len(text) else text, dtype=np.int64, sep=" "
    )
    return numbers if numbers.size == len(tokens) else None


def _is_int(token: str) -> bool:
    try:
        int(token)
    except ValueError:
        return False
    return True


def _check_runs(starts: np.ndarray, lengths: np.ndarray, size: int, where: str) -> None:
    if (starts < 1).any():
        i = int(np.argmax(starts < 1))
        raise _fail(where, f"run {i + 1} starts at {starts[i]}; starts are 1-indexed (>= 1)")
    if (lengths < 1).any():
        i = int(np.argmax(lengths < 1))
        raise _fail(where, f"run {i + 1} has length {lengths[i]}; lengths must be >= 1")
    ends = starts + lengths - 1  # last pixel of each run, 1-indexed
    if (ends > size).any():
        i = int(np.argmax(ends > size))
        raise _fail(
            where, f"run {i + 1} ({starts[i]} {lengths[i]}) ends at {ends[i]}, past H*W = {size}"
        )
    bad = starts[1:] <= ends[:-1]
    if bad.any():
        i = int(np.argmax(bad)) + 1
        raise _fail(
            where,
            f"run {i + 1} starts at {starts[i]} but run {i} covers up to {ends[i - 1]}: "
            "runs overlap or are out of order",
        )


def decode(rle: str, height: int, width: int, *, where: str = "") -> np.ndarray:
    """Bool mask (height, width) from a Kaggle RLE string. Raises RLEError naming `where`."""
    starts, lengths = parse(rle, height, width, where=where)
    if starts.size == 0:  # most Severstal (image, class) pairs are empty
        return np.zeros((height, width), bool)
    size = height * width
    # Alternate background/defect segments and let np.repeat lay them out in one pass.
    bounds = np.empty(2 * starts.size + 2, np.int64)
    bounds[0], bounds[-1] = 0, size
    bounds[1:-1:2] = starts - 1
    bounds[2:-1:2] = starts - 1 + lengths
    values = np.zeros(bounds.size - 1, bool)
    values[1::2] = True
    flat = np.repeat(values, np.diff(bounds))
    return flat.reshape(width, height).T


def encode(mask: np.ndarray) -> str:
    """Kaggle RLE string of a 2-D mask (nonzero = set). "" for an empty mask."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"encode expects a 2-D (H, W) mask, got shape {mask.shape}")
    # Column-major order; a view (no copy) when the mask is Fortran-ordered, as decode's is.
    flat = mask.T.reshape(-1)
    if flat.dtype != bool:
        flat = flat != 0
    if not flat.any():
        return ""
    # One temporary, not a padded copy: fresh large arrays cost page faults on every call.
    bounds = np.flatnonzero(flat[1:] != flat[:-1]) + 1  # 0-indexed first pixel of each segment
    if flat[0]:
        bounds = np.concatenate(([0], bounds))
    if flat[-1]:
        bounds = np.concatenate((bounds, [flat.size]))
    runs = bounds.reshape(-1, 2)
    runs[:, 1] -= runs[:, 0]
    runs[:, 0] += 1
    return " ".join(map(str, runs.ravel().tolist()))


def area(rle: str) -> int:
    """Number of set pixels, from the lengths alone (no decode, no validation)."""
    tokens = rle.split()
    return sum(int(t) for t in tokens[1::2])


def decode_loop(rle: str, height: int, width: int) -> np.ndarray:
    """Reference decoder in plain Python loops (benchmark baseline only; no validation)."""
    flat = [False] * (height * width)
    tokens = rle.split()
    for k in range(0, len(tokens), 2):
        start, length = int(tokens[k]), int(tokens[k + 1])
        for position in range(start - 1, start - 1 + length):
            flat[position] = True
    return np.array(flat, dtype=bool).reshape(width, height).T


def encode_loop(mask: np.ndarray) -> str:
    """Reference encoder in plain Python loops (benchmark baseline only)."""
    rows = np.asarray(mask, dtype=bool).tolist()  # pure Python values, so the loop is plain Python
    height, width = len(rows), len(rows[0]) if rows else 0
    pairs: list[str] = []
    run_start, run_length = 0, 0
    position = 0
    for c in range(width):
        for r in range(height):
            position += 1
            if rows[r][c]:
                if run_length == 0:
                    run_start = position
                run_length += 1
            elif run_length:
                pairs.append(f"{run_start} {run_length}")
                run_length = 0
    if run_length:
        pairs.append(f"{run_start} {run_length}")
    return " ".join(pairs)
