"""search.promotion.intervals: the paired bootstrap against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from search.promotion import intervals


def test_the_interval_of_a_proportion_matches_the_normal_approximation() -> None:
    # 1,000 images scoring 0 or 1, 30% ones: the mean's standard error is sqrt(p(1-p)/n).
    values = np.zeros(1000)
    values[:300] = 1.0
    low, high = intervals.interval(values)
    half = 1.96 * math.sqrt(0.3 * 0.7 / 1000)  # 0.0284
    assert low == pytest.approx(0.3 - half, abs=0.1 * half)
    assert high == pytest.approx(0.3 + half, abs=0.1 * half)


def test_differences_are_paired_over_the_same_images() -> None:
    rng = np.random.default_rng(1)
    reference = rng.random(500)  # widely spread scores
    better = reference + 0.01  # the same images, each 0.01 higher
    shift = intervals.difference(better, reference)
    # Unpaired, two intervals of width ~0.05 would overlap; paired, the gain is exact.
    assert shift["value"] == pytest.approx(0.01)
    assert shift["interval95"] == pytest.approx([0.01, 0.01])
    assert shift["clear"] is True
    same = intervals.difference(reference, reference)
    assert same["interval95"] == [0.0, 0.0] and same["clear"] is False
    # Noise around no difference is not a win.
    noisy = intervals.difference(reference + rng.normal(0, 0.05, 500), reference)
    assert noisy["interval95"][0] < 0 < noisy["interval95"][1] and noisy["clear"] is False


def test_the_draws_depend_only_on_the_image_count() -> None:
    a, b = np.linspace(0, 1, 40), np.linspace(0, 1, 40) ** 2
    assert intervals.interval(a) == intervals.interval(a.copy())
    with pytest.raises(ValueError, match="one score per image"):
        intervals.interval(np.zeros((4, 2)))
    assert intervals.interval(b) != intervals.interval(a)
