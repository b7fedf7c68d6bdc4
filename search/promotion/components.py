"""Connected components of binary masks, as runs: each row's runs of set pixels are linked
to the overlapping runs of the row below (4- or 8-connectivity) and merged by union-find,
in NumPy, with no per-pixel Python loop. `search.promotion.postprocess` removes small components
with it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["component_runs", "components_of_runs", "label_components", "paint", "runs_of_pixels"]


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Foreground runs of a (R, W) bool array: row, start col, end col (exclusive), row-major."""
    rows, width = mask.shape
    padded = np.zeros((rows, width + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    edges = np.diff(padded, axis=1)
    r_start, c_start = np.nonzero(edges == 1)
    _, c_end = np.nonzero(edges == -1)
    return r_start, c_start, c_end


def runs_of_pixels(flat: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`_runs` of a (R, W) mask given as the sorted flat indices of its set pixels: the same
    runs in the same order, in time proportional to the set pixels, not to the array."""
    flat = np.asarray(flat, dtype=np.int64)
    if flat.size == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    col = flat % width
    begins = np.ones(flat.size, bool)
    begins[1:] = (np.diff(flat) != 1) | (col[1:] == 0)
    first = np.flatnonzero(begins)
    last = np.append(first[1:], flat.size) - 1
    return flat[first] // width, col[first], col[last] + 1


def _run_links(
    row: np.ndarray, start: np.ndarray, end: np.ndarray, width: int, height: int, connectivity: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (a, b) of runs on rows r and r+1 of the same image that touch."""
    stride = width + 2
    start_key = row * stride + start
    end_key = row * stride + end
    # b on the next row touches a when end_b >= start_a and start_b <= end_a (ends exclusive);
    # 4-connectivity needs a shared column, so both bounds tighten by one.
    reach = 0 if connectivity == 8 else 1
    next_row = (row + 1) * stride
    lo = np.searchsorted(end_key, next_row + start + reach, side="left")
    hi = np.searchsorted(start_key, next_row + end - reach, side="right")
    same_image = (row + 1) % height != 0
    counts = np.where(same_image, np.maximum(hi - lo, 0), 0)
    a = np.repeat(np.arange(row.size), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    b = np.repeat(lo, counts) + offsets
    return a, b


def _union_find(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Component root of each of n nodes linked by edges (a, b); roots are the smallest ids."""
    parent = np.arange(n)
    while True:
        ra, rb = parent[a], parent[b]
        small, large = np.minimum(ra, rb), np.maximum(ra, rb)
        active = small != large
        if not active.any():
            return parent
        np.minimum.at(parent, large[active], small[active])
        while True:  # pointer jumping until every node points at its root
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand


def component_runs(
    mask: np.ndarray, *, connectivity: int = 8
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Runs of a (N, H, W) bool stack and the component each belongs to.

    Returns (row, start, end, component, num_components) where row indexes the N*H rows and
    components never cross images. Component ids are 0..K-1 in order of first run.
    """
    if mask.ndim != 3:
        raise ValueError(f"expected a (N, H, W) mask stack, got shape {mask.shape}")
    n, height, width = mask.shape
    row, start, end = _runs(mask.reshape(n * height, width))
    component, num = components_of_runs(
        row, start, end, width=width, height=height, connectivity=connectivity
    )
    return row, start, end, component, num


def components_of_runs(
    row: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    *,
    width: int,
    height: int,
    connectivity: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """(component of each run, number of components) for row-major runs of a stack of
    `height`-row images; components never cross images."""
    a, b = _run_links(row, start, end, width, height, connectivity)
    roots = _union_find(row.size, a, b)
    is_root = roots == np.arange(row.size)
    compact = np.cumsum(is_root) - 1  # roots renumbered 0..K-1 without a sort
    return compact[roots], np.asarray(int(is_root.sum()))


def label_components(mask: np.ndarray, *, connectivity: int = 8) -> tuple[np.ndarray, int]:
    """Label a (H, W) or (N, H, W) bool mask: 0 = background, 1..K components (like cv2/scipy)."""
    stack = mask[None] if mask.ndim == 2 else mask
    n, height, width = stack.shape
    row, start, end, component, num = component_runs(stack, connectivity=connectivity)
    labels = paint(row, start, end, component + 1, n * height, width)
    return labels.reshape(mask.shape), int(num)


def paint(
    row: np.ndarray, start: np.ndarray, end: np.ndarray, value: np.ndarray, rows: int, width: int
) -> np.ndarray:
    """Fill runs with per-run values. Runs on a row never touch, so starts and ends never clash."""
    delta = np.zeros((rows, width + 1), dtype=np.int64)
    delta[row, start] += value
    delta[row, end] -= value
    return np.cumsum(delta[:, :width], axis=1)


# --- apply ------------------------------------------------------------------------------------
