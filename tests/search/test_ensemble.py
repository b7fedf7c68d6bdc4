"""Ensembles: identical members change nothing, greedy selection picks what helps, flip TTA."""

from __future__ import annotations

import json

import numpy as np
import pytest

from search.promotion import ensemble, postprocess
from search.promotion.ensemble import EnsembleSpec, Member
from search.promotion.postprocess import PostprocessParams, TuneGrid


def _truth(n: int = 12, size: int = 16) -> np.ndarray:
    truth = np.zeros((n, size, size, 2), dtype=bool)
    for i in range(n):
        if i % 3:
            truth[i, 2 + i % 5 : 9 + i % 5, 3:11, 0] = True
        if i % 2:
            truth[i, 8:14, 1 + i % 4 : 6 + i % 4, 1] = True
    return truth


def test_two_identical_members_equal_the_single_model() -> None:
    rng = np.random.default_rng(0)
    truth = _truth()
    probs = np.clip(truth * 0.5 + rng.random(truth.shape) * 0.6, 0, 1).astype(np.float32)
    mean = ensemble.mean_probabilities([probs, probs.copy()])
    np.testing.assert_allclose(mean, probs, rtol=0, atol=1e-7)
    selection = ensemble.greedy_selection([probs, probs.copy()], truth)
    assert selection.score == pytest.approx(ensemble.threshold_tuned_dice(probs, truth))
    combined = ensemble.mean_probabilities([probs, probs], selection.counts)
    single_params, single = postprocess.tune(probs, truth)
    ens_params, ens = postprocess.tune(combined, truth)
    assert ens_params == single_params
    assert ens["val_kaggle_dice"] == pytest.approx(single["val_kaggle_dice"])


def test_greedy_picks_the_better_model_and_leaves_out_the_worse() -> None:
    rng = np.random.default_rng(1)
    truth = _truth()
    good = np.clip(truth * 0.7 + rng.random(truth.shape) * 0.3, 0, 1).astype(np.float32)
    bad = rng.random(truth.shape).astype(np.float32)
    selection = ensemble.greedy_selection([bad, good], truth)
    assert selection.counts[1] >= 1
    assert selection.counts[0] == 0
    assert selection.history[0][0] == 1
    assert selection.score == pytest.approx(ensemble.threshold_tuned_dice(good, truth))


def test_greedy_combines_models_with_complementary_errors() -> None:
    truth = _truth()
    half = np.arange(truth.shape[0]) < truth.shape[0] // 2
    right = (truth * 0.9 + 0.05).astype(np.float32)
    confused = np.full(truth.shape, 0.6, dtype=np.float32)  # everything "defect"
    model_a = np.where(half[:, None, None, None], right, confused)
    model_b = np.where(half[:, None, None, None], confused, right)
    singles = [ensemble.threshold_tuned_dice(m, truth) for m in (model_a, model_b)]
    selection = ensemble.greedy_selection([model_a, model_b], truth)
    assert selection.members == (0, 1)
    assert selection.score == pytest.approx(1.0)
    assert max(singles) < 0.9


def test_threshold_dice_agrees_with_the_postprocess_tuner() -> None:
    rng = np.random.default_rng(2)
    truth = _truth()
    probs = np.clip(truth * 0.4 + rng.random(truth.shape) * 0.7, 0, 1).astype(np.float32)
    grid = TuneGrid(tuple(k / 20 for k in range(1, 20)), (0,), (0.0,))
    _, summary = postprocess.tune(probs, truth, grid=grid)
    assert ensemble.threshold_tuned_dice(probs, truth, chunk=5) == pytest.approx(
        summary["val_kaggle_dice"]
    )


def test_flip_tta_averages_flipped_back_predictions() -> None:
    rng = np.random.default_rng(3)
    images = rng.random((2, 6, 8, 1)).astype(np.float32)

    def position_dependent(x: np.ndarray) -> np.ndarray:  # not flip-equivariant on purpose
        return np.cumsum(x, axis=2) / x.shape[2]

    got = ensemble.predict_with_tta(position_dependent, images, flips=("none", "h", "v"))
    expected = (
        position_dependent(images)
        + np.flip(position_dependent(np.flip(images, 2)), 2)
        + np.flip(position_dependent(np.flip(images, 1)), 1)
    ) / 3
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert not np.allclose(got, position_dependent(images))

    def pointwise(x: np.ndarray) -> np.ndarray:  # flip-equivariant: TTA changes nothing
        return 1 / (1 + np.exp(-x))

    np.testing.assert_allclose(
        ensemble.predict_with_tta(pointwise, images), pointwise(images), rtol=1e-6
    )
    with pytest.raises(ValueError, match="unknown TTA flips"):
        ensemble.predict_with_tta(pointwise, images, flips=("diagonal",))


def test_spec_round_trips_and_bad_json_names_the_file() -> None:
    post = postprocess.raw_params(2)
    spec = EnsembleSpec(
        (
            Member("unet_1", "models/unet_1.keras", 0.75),
            Member("resunet_2", "models/r.keras", 0.25),
        ),
        post,
        ("a", "b"),
        tta=True,
        flips=("none", "h"),
    )
    back = EnsembleSpec.from_json(spec.to_json(), where="final/ensemble.json")
    assert back.members == spec.members
    assert back.flips == ("none", "h") and back.tta
    assert back.postprocess.classes == post.classes
    with pytest.raises(ValueError, match="final/ensemble.json: not a valid ensemble"):
        EnsembleSpec.from_json('{"members": []', where="final/ensemble.json")
    with pytest.raises(ValueError, match="mismatch.json: the ensemble has no members"):
        EnsembleSpec.from_json('{"members": [], "class_names": []}', where="mismatch.json")
    named = PostprocessParams(post.classes, ("x", "y"), 8)
    wrong = EnsembleSpec(spec.members, named, ("a", "b"))
    with pytest.raises(ValueError, match=r"post-processing is for classes \['x', 'y'\] but"):
        EnsembleSpec.from_json(wrong.to_json(), where="final/ensemble.json")
    no_post = json.loads(spec.to_json())
    del no_post["postprocess"]
    with pytest.raises(ValueError, match="final/ensemble.json: no postprocess parameters"):
        EnsembleSpec.from_json(json.dumps(no_post), where="final/ensemble.json")
    with pytest.raises(ValueError, match="member 1 has probabilities of shape"):
        ensemble.mean_probabilities([np.zeros((1, 2, 2, 1)), np.zeros((1, 2, 3, 1))])


def test_greedy_from_a_given_start_keeps_it_alone_when_nothing_improves() -> None:
    rng = np.random.default_rng(2)
    truth = _truth()
    good = np.clip(truth * 0.7 + rng.random(truth.shape) * 0.3, 0, 1).astype(np.float32)
    bad = rng.random(truth.shape).astype(np.float32)
    kept = ensemble.greedy_selection([bad, good], truth, start=1)
    assert kept.counts == (0, 1)
    assert kept.history == ((1, pytest.approx(ensemble.threshold_tuned_dice(good, truth))),)
    # Started from the weak model, the strong one is added on top of it.
    grown = ensemble.greedy_selection([bad, good], truth, start=0)
    assert grown.history[0][0] == 0
    assert grown.counts[1] >= 1
    with pytest.raises(ValueError, match="start=2"):
        ensemble.greedy_selection([bad, good], truth, start=2)


@pytest.mark.parametrize("mixture_val, expect_mixture", [(0.90, False), (1.0, True)])
def test_promotion_sets_aside_a_mixture_validation_scores_below_the_best_single(
    monkeypatch: pytest.MonkeyPatch, mixture_val: float, expect_mixture: bool
) -> None:
    from types import SimpleNamespace

    from search.promotion import scoring

    truth = _truth()
    half = np.arange(truth.shape[0]) < truth.shape[0] // 2
    right = (truth * 0.9 + 0.05).astype(np.float32)
    confused = np.full(truth.shape, 0.6, dtype=np.float32)
    probs = [
        np.where(half[:, None, None, None], right, confused),
        np.where(half[:, None, None, None], confused, right),
    ]
    candidates = [SimpleNamespace(name="unet-a"), SimpleNamespace(name="deeplab-b")]
    # Fully tuned validation scores of the singles: b is the best single model.
    results = {
        "unet-a": {"val": {"tuned": {"kaggle_dice": 0.80}}, "postprocess": "a"},
        "deeplab-b": {"val": {"tuned": {"kaggle_dice": 0.95}}, "postprocess": "b"},
    }
    mixture = {"val": {"tuned": {"kaggle_dice": mixture_val}}, "postprocess": "mix"}
    monkeypatch.setattr(scoring, "evaluate", lambda *args, **kwargs: mixture)
    split = SimpleNamespace(masks=truth)
    selection, result, test_probs = scoring.choose_ensemble(
        candidates, results, probs, probs, split, split, class_names=("a", "b"), gate=False
    )
    # Greedy starts from the best single (b), then adds a: together they are perfect.
    if expect_mixture:
        assert selection.members == (0, 1)
        assert selection.history[0][0] == 1
        assert result is mixture and selection.rejected is None
        # A Mixture, read by slices of images (here: all of them).
        expected = ensemble.mean_probabilities(probs, selection.counts)
        np.testing.assert_allclose(test_probs[:], expected)
    else:
        assert selection.counts == (0, 1)
        assert result["postprocess"] == "b"
        assert test_probs is probs[1]
        assert "unet-a x1" in selection.rejected and "0.9000" in selection.rejected
        assert "0.9500" in selection.rejected
