"""Post-processing: component labelling against OpenCV, tuning on hand-made probability maps."""

from __future__ import annotations

import numpy as np
import pytest

from search.promotion import postprocess
from search.promotion.postprocess import ClassParams, PostprocessParams, TuneGrid


def _kaggle_dice(truth: np.ndarray, pred: np.ndarray) -> float:
    """Independent reference: mean over (image, class) of Dice, empty/empty = 1."""
    scores = []
    for n in range(truth.shape[0]):
        for c in range(truth.shape[-1]):
            t, p = truth[n, ..., c], pred[n, ..., c]
            total = t.sum() + p.sum()
            scores.append(1.0 if total == 0 else 2.0 * (t & p).sum() / total)
    return float(np.mean(scores))


def test_apply_removes_small_components_and_gates() -> None:
    probs = np.zeros((2, 8, 8, 1), dtype=np.float32)
    probs[0, 1:5, 1:5, 0] = 0.8  # 16 px
    probs[0, 7, 7, 0] = 0.9  # 1 px speck
    probs[1, 2:4, 2:4, 0] = 0.6  # 4 px, max 0.6
    # 3 px of an 8x8 image: the speck (1 px) goes, the 4-px and 16-px blobs stay.
    params = PostprocessParams((ClassParams(threshold=0.5, min_area_fraction=3 / 64, gate=0.7),))
    out = postprocess.apply(probs, params)
    expected = np.zeros_like(out)
    expected[0, 1:5, 1:5, 0] = True
    assert np.array_equal(out, expected)
    no_gate = PostprocessParams((ClassParams(threshold=0.5, min_area_fraction=3 / 64),))
    assert postprocess.apply(probs, no_gate)[1].sum() == 4


def _hand_made_maps() -> tuple[np.ndarray, np.ndarray]:
    """Maps whose best settings are known: threshold 0.7, min_area 5, gate 0.85.

    - true blobs (8x8 and 3x3) have probability 0.75, with one 0.92 pixel inside the big one;
    - a halo round each big blob at 0.6 is wrong (so 0.5 is worse than 0.7; 0.9 loses blobs);
    - 2x2 specks at 0.95 in defect images are wrong (min_area 5 drops them, 10 drops the 3x3);
    - clean images hold a 7x7 wrong blob at 0.8: too large for min_area, but gate 0.85 drops it.
    """
    probs = np.full((6, 32, 32, 1), 0.1, dtype=np.float32)
    truth = np.zeros(probs.shape, dtype=bool)
    for n in range(4):
        y, x = 4 + n, 5 + n
        probs[n, y - 2 : y + 10, x - 2 : x + 10, 0] = 0.6
        probs[n, y : y + 8, x : x + 8, 0] = 0.75
        truth[n, y : y + 8, x : x + 8, 0] = True
        probs[n, y + 3, x + 3, 0] = 0.92
        probs[n, 25:28, 25:28, 0] = 0.75
        truth[n, 25:28, 25:28, 0] = True
        probs[n, 28:30, 2:4, 0] = 0.95
    probs[4:, 10:17, 10:17, 0] = 0.8
    return probs, truth


AREAS = tuple(px / 1024 for px in (0, 2, 5, 10, 50))  # pixels of the maps' 32x32 images


def test_tuner_finds_known_best_threshold_min_area_and_gate() -> None:
    probs, truth = _hand_made_maps()
    grid = TuneGrid(thresholds=(0.3, 0.5, 0.7, 0.9), min_area_fractions=AREAS, gates=(0.0, 0.85))
    params, summary = postprocess.tune(probs, truth, grid=grid, class_names=("scratch",))
    assert params.classes == (ClassParams(threshold=0.7, min_area_fraction=5 / 1024, gate=0.85),)
    assert summary["val_kaggle_dice"] == pytest.approx(1.0)
    assert _kaggle_dice(truth, postprocess.apply(probs, params)) == pytest.approx(1.0)
    assert _kaggle_dice(truth, probs >= 0.5) < 0.8


def test_tuner_without_gate_keeps_gate_off_and_scores_match_apply() -> None:
    probs, truth = _hand_made_maps()
    grid = TuneGrid(thresholds=(0.3, 0.5, 0.7, 0.9), min_area_fractions=AREAS, gates=(0.0,))
    params, summary = postprocess.tune(probs, truth, grid=grid)
    assert params.classes[0].gate == 0.0
    assert params.classes[0].threshold == 0.7
    # The tuner's score comes from component sums; it must equal Dice of the applied masks.
    assert summary["val_kaggle_dice"] == pytest.approx(
        _kaggle_dice(truth, postprocess.apply(probs, params))
    )


def test_tuned_score_equals_reference_on_noisy_multiclass_maps() -> None:
    rng = np.random.default_rng(3)
    truth = np.zeros((12, 24, 24, 3), dtype=bool)
    truth[:6, 4:14, 6:18, 0] = True
    truth[3:9, 10:20, 2:8, 2] = True
    probs = np.clip(truth * 0.6 + rng.random(truth.shape) * 0.5, 0, 1).astype(np.float32)
    params, summary = postprocess.tune(probs, truth, class_names=("a", "b", "c"))
    assert summary["val_kaggle_dice"] == pytest.approx(
        _kaggle_dice(truth, postprocess.apply(probs, params))
    )
    assert summary["val_kaggle_dice"] >= _kaggle_dice(truth, probs >= 0.5)
    assert params.to_dict()["classes"][1]["name"] == "b"
    assert PostprocessParams.from_dict(params.to_dict()) == params


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="threshold must be in"):
        ClassParams(threshold=1.5)
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        postprocess.tune(np.zeros((4, 4, 1)), np.zeros((4, 4, 1)))
    with pytest.raises(ValueError, match="2 classes but the post-processing has 1"):
        postprocess.apply(np.zeros((1, 4, 4, 2)), postprocess.raw_params(1))
    with pytest.raises(ValueError, match="final/ensemble.json: bad post-processing"):
        PostprocessParams.from_dict({"classes": [{"threshold": 0.5}]}, where="final/ensemble.json")
    with pytest.raises(ValueError, match="min_area_fraction must be a fraction of the image"):
        ClassParams(min_area_fraction=600)


def _entry(**changes: object) -> dict:
    return {"name": "1", "threshold": 0.5, "min_area_fraction": 0.001, "gate": 0.0} | changes


@pytest.mark.parametrize(
    ("data", "message"),
    [
        # Pixel areas of an older promotion mean nothing at another size: refused, not guessed.
        (
            {"connectivity": 8, "classes": [{"name": "1", "threshold": 0.5, "min_area": 600}]},
            "min_area is in pixels of the tuning images.*run python -m search.promote again",
        ),
        (
            {"connectivity": 8, "classes": [{k: v for k, v in _entry().items() if k != "gate"}]},
            "KeyError: 'gate'",
        ),
        ({"classes": [_entry()]}, "KeyError: 'connectivity'"),
        ({"connectivity": 6, "classes": [_entry()]}, "connectivity must be 4 or 8, got 6"),
    ],
)
def test_a_missing_or_old_key_is_an_error_not_a_default(data: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PostprocessParams.from_dict(data, where="ensemble.json")


def test_min_area_means_the_same_fraction_at_another_image_size() -> None:
    # Tuned on 32x32 maps: the 2x2 specks (0.4% of the image) go, the 3x3 blob (0.9%) stays.
    probs, truth = _hand_made_maps()
    params, _ = postprocess.tune(probs, truth, grid=TuneGrid((0.7,), AREAS, (0.0, 0.85)))
    assert params.classes[0].min_area_fraction == 5 / 1024
    # The same scene at 4x the side (16x the pixels): a speck is 64 px, the small blob 144 px,
    # and the setting still removes exactly the specks.
    big_probs = probs.repeat(4, axis=1).repeat(4, axis=2)
    big_truth = truth.repeat(4, axis=1).repeat(4, axis=2)
    big = postprocess.apply(big_probs, params)
    assert _kaggle_dice(big_truth, big) == pytest.approx(1.0)
    small = postprocess.apply(probs, params)
    assert np.array_equal(big, small.repeat(4, axis=1).repeat(4, axis=2))


def test_a_padded_image_counts_its_own_pixels() -> None:
    # A 16x16 image padded into a 32x32 split: 2% of its 256 px is 5.12 px, so a 2x3 (6 px)
    # component stays, where 2% of the padded 1,024 px (20.5 px) would have removed it.
    probs = np.zeros((1, 32, 32, 1), np.float32)
    probs[0, 4:6, 4:7, 0] = 0.9
    params = PostprocessParams((ClassParams(threshold=0.5, min_area_fraction=0.02),), ("1",))
    own = postprocess.apply(probs, params, sizes=np.array([[16, 16]]))
    assert own.sum() == 6
    assert postprocess.apply(probs, params).sum() == 0
    truth = probs > 0.5
    grid = TuneGrid((0.5,), (0.0, 0.02), (0.0,))
    tuned, summary = postprocess.tune(probs, truth, grid=grid, sizes=np.array([[16, 16]]))
    assert summary["val_kaggle_dice"] == pytest.approx(1.0)


def test_sparse_tuning_equals_scoring_every_setting_on_the_dense_masks() -> None:
    # The tuner builds each threshold's runs from the candidate pixels alone; its score cube
    # must be what applying every (threshold, area, gate) to the whole maps scores.
    rng = np.random.default_rng(5)
    truth = np.zeros((5, 20, 30, 1), bool)
    truth[:3, 4:12, 5:20, 0] = True
    probs = postprocess.quantise(np.clip(truth * 0.5 + rng.random(truth.shape) * 0.6, 0, 1))
    grid = TuneGrid((0.2, 0.5, 0.8), (0.0, 0.01, 0.05), (0.0, 0.9))
    _, _, cube = postprocess.tune_class(probs[..., 0], truth[..., 0], grid, chunk=2)
    for t, threshold in enumerate(grid.thresholds):
        for a, area in enumerate(grid.min_area_fractions):
            for g, gate in enumerate(grid.gates):
                params = PostprocessParams((ClassParams(threshold, area, gate),))
                expected = _kaggle_dice(truth, postprocess.apply(probs, params))
                assert cube[t, a, g] == pytest.approx(expected), (threshold, area, gate)
