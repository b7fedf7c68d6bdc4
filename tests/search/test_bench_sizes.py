"""search.bench.sizes: many sizes against one, same pixels, through the reader's size batches."""

from __future__ import annotations

import json

import pytest

from search.bench import sizes as bench_sizes


def test_mixed_sizes_are_nearly_all_distinct_and_in_range() -> None:
    sizes = bench_sizes.mixed_sizes(200)
    assert len(set(sizes)) > 180
    assert all(150 <= h <= 250 and 150 <= w <= 350 for h, w in sizes)


@pytest.mark.slow
def test_the_benchmark_evaluates_both_sets_on_the_same_pixels(tmp_path, capsys) -> None:
    assert bench_sizes.main(["images=6", "repeats=1", "depth=2", f"out={tmp_path}"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    mixed, uniform = summary["mixed"], summary["uniform"]
    assert mixed["images"] == uniform["images"] == 6
    assert mixed["distinct_sizes"] == 6 and uniform["distinct_sizes"] == 1
    assert mixed["batches"] == 6 and uniform["batches"] == 1  # batch 8: one size a batch
    assert mixed["megapixels"] == pytest.approx(uniform["megapixels"], rel=0.02)
    assert summary["ratio"] == pytest.approx(
        uniform["megapixels_per_s"] / mixed["megapixels_per_s"], rel=1e-2
    )
