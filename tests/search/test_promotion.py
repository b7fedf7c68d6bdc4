"""search.promotion: uint8 levels, chunked tuning and scoring, and prediction as Ray tasks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import experiment_fixture
import numpy as np
import pytest

from search.promotion import arrays, ensemble, postprocess


def _case(seed: int = 0, n: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """Noisy probabilities around blob-shaped truth, (n, 24, 40, 2)."""
    rng = np.random.default_rng(seed)
    truth = np.zeros((n, 24, 40, 2), bool)
    for i in range(n):
        for c in range(2):
            if rng.random() < 0.6:
                y, x = rng.integers(0, 18), rng.integers(0, 30)
                truth[i, y : y + rng.integers(2, 7), x : x + rng.integers(2, 11), c] = True
    probs = np.clip(truth * 0.7 + rng.random(truth.shape) * 0.5 - 0.1, 0, 1).astype(np.float32)
    return probs, truth


def test_cut_is_the_decision_of_levels_over_255() -> None:
    levels = np.arange(256, dtype=np.uint8)
    for threshold in np.round(np.arange(0.0, 1.0001, 0.05), 2):
        expected = levels.astype(float) / 255 >= threshold
        assert np.array_equal(levels >= postprocess.cut(threshold), expected), threshold
    assert postprocess.cut(0.2) == 51  # 255 * 0.2 = 51.000000000000014 in floats
    assert postprocess.quantise(np.asarray([0.0, 0.5, 0.50196, 1.0])).tolist() == [0, 128, 128, 255]


def test_tuning_on_levels_matches_tuning_on_the_values_they_stand_for() -> None:
    probs, truth = _case()
    levels = postprocess.quantise(probs)
    on_levels, summary = postprocess.tune(levels, truth, gate=True)
    on_values, expected = postprocess.tune(levels.astype(np.float64) / 255, truth, gate=True)
    assert on_levels == on_values
    assert summary["val_kaggle_dice"] == pytest.approx(expected["val_kaggle_dice"], abs=1e-12)
    masks = postprocess.apply(levels, on_levels)
    assert np.array_equal(masks, postprocess.apply(levels.astype(np.float64) / 255, on_values))


def test_tuning_in_chunks_equals_tuning_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    probs, truth = _case(seed=1)
    levels = postprocess.quantise(probs)
    grid = postprocess.default_grid()
    whole = postprocess.tune_class(levels[..., 0], truth[..., 0], grid, chunk=1000)
    for chunk in (1, 3, 4):
        parts = postprocess.tune_class(levels[..., 0], truth[..., 0], grid, chunk=chunk)
        assert parts[0] == whole[0]
        np.testing.assert_allclose(parts[2], whole[2], atol=1e-12)


def test_a_mixture_is_the_levels_mean_read_by_slices(tmp_path: Path) -> None:
    probs, truth = _case(seed=2)
    a = postprocess.quantise(probs)
    b = postprocess.quantise(probs[::-1].copy())
    stored = []
    for name, values in (("a", a), ("b", b)):
        path = tmp_path / f"{name}.npy"
        out = arrays.open_array(path, values.shape, np.uint8)
        out[:] = values
        out.flush()
        stored.append(np.load(path, mmap_mode="r"))
    mixture = ensemble.Mixture(stored, (2, 1))
    expected = ensemble.mean_probabilities([a, b], (2, 1))
    assert expected.dtype == np.uint8
    assert np.array_equal(mixture[3:7], expected[3:7]) and np.array_equal(mixture[:], expected)
    with pytest.raises(TypeError, match="read by slices"):
        mixture[3]
    # Scoring through the memory-mapped mixture a chunk at a time equals scoring in memory.
    params = postprocess.raw_params(2)
    streamed = arrays.score_levels(truth, mixture, params, ["x", "y"])
    direct = arrays.score(truth, postprocess.apply(expected, params), ["x", "y"])
    assert streamed == direct
    assert ensemble.threshold_tuned_dice(mixture, truth, chunk=4) == pytest.approx(
        ensemble.threshold_tuned_dice(expected, truth)
    )


@pytest.mark.slow
def test_promotion_predicts_in_ray_tasks_and_scores_as_in_process(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, neu_seg: Path
) -> None:
    import ray

    from search.promote import promote

    source = experiment_fixture.promoted_experiment(tmp_path_factory.getbasetemp(), neu_seg)
    inline = json.loads((source / "final" / "metrics.json").read_text())
    folder = experiment_fixture.copy_experiment(source, tmp_path / "results" / "neu_tiny")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        metrics = promote(folder, top_k=2, tta=False, batch_size=4, progress=False, cpus=1)
    finally:
        ray.shutdown()
    assert [m["name"] for m in metrics["models"]] == [m["name"] for m in inline["models"]]
    child = {m["prediction"]["pid"] for m in inline["models"]}
    assert len(child) == 1 and os.getpid() not in child  # without Ray: one spawned child
    for tasked, here in zip(metrics["models"], inline["models"], strict=True):
        # Predicted in Ray worker processes, scored exactly as the other promotion did.
        assert tasked["prediction"]["pid"] not in child | {os.getpid()}
        assert tasked["test"] == here["test"] and tasked["val"] == here["val"]
    assert metrics["ensemble"]["test"] == inline["ensemble"]["test"]
    # The work folder (splits and levels on disk) is gone.
    assert not list(folder.glob("promotion.work-*"))
