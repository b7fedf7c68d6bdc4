"""search.promotion.components: connected components by runs, checked against OpenCV."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from search.promotion.components import label_components


def _same_partition(ours: np.ndarray, theirs: np.ndarray) -> bool:
    """Two labellings are equal up to renaming: the label pairs are a bijection."""
    fg = ours > 0
    if not np.array_equal(fg, theirs > 0):
        return False
    pairs = np.unique(np.stack([ours[fg], theirs[fg]]), axis=1)
    return len(np.unique(pairs[0])) == pairs.shape[1] == len(np.unique(pairs[1]))


@pytest.mark.parametrize("connectivity", [4, 8])
def test_labels_match_opencv_on_random_masks(connectivity: int) -> None:
    rng = np.random.default_rng(0)
    for density in (0.2, 0.45, 0.6):
        mask = rng.random((37, 53)) < density
        ours, count = label_components(mask, connectivity=connectivity)
        theirs_count, theirs = cv2.connectedComponents(
            mask.astype(np.uint8), connectivity=connectivity
        )
        assert count == theirs_count - 1
        assert _same_partition(ours, theirs)


def test_components_never_cross_images() -> None:
    stack = np.zeros((2, 3, 4), dtype=bool)
    stack[0, 2, :] = True  # bottom row of image 0 ...
    stack[1, 0, :] = True  # ... sits right above the top row of image 1 in the flat layout
    labels, count = label_components(stack)
    assert count == 2
    assert labels[0, 2, 0] != labels[1, 0, 0]


def test_spiral_is_one_component() -> None:
    # A long snake forces many union-find rounds; it must still come out as one component.
    mask = np.zeros((41, 41), dtype=bool)
    mask[::4, 1:-1] = True
    mask[1::4, -2] = mask[2::4, -2] = True
    mask[3::4, 1] = True
    mask[-1] = False
    _, count = label_components(mask, connectivity=4)
    assert count == cv2.connectedComponents(mask.astype(np.uint8), connectivity=4)[0] - 1


@pytest.mark.parametrize("density", [0.0, 0.05, 0.5, 1.0])
def test_runs_of_set_pixels_equal_the_runs_of_the_mask(density: float) -> None:
    from search.promotion.components import _runs, runs_of_pixels

    rng = np.random.default_rng(1)
    mask = rng.random((3 * 17, 29)) < density
    mask[5, -1] = mask[6, 0] = True  # adjacent in memory, not in the image: two runs
    expected = _runs(mask)
    got = runs_of_pixels(np.flatnonzero(mask), mask.shape[1])
    for ours, theirs in zip(got, expected, strict=True):
        assert np.array_equal(ours, theirs)
