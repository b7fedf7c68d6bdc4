"""search.predict: arguments and image folders (fast); real models are in test_promote's slow test."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import experiment_fixture
import numpy as np
import pytest

from data.config import ConfigError
from search import predict
from search.inference.submission import read_submission
from search.promotion import postprocess
from search.promotion.ensemble import EnsembleSpec, Member


def _real_images(neu_seg: Path, folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    sources = sorted((neu_seg / "img_dir" / "test").glob("*.jpg"))[:count]
    return [Path(shutil.copy(p, folder / p.name)) for p in sources]


def test_unreadable_image_is_named_before_any_model_loads(neu_seg: Path, tmp_path: Path) -> None:
    images = _real_images(neu_seg, tmp_path / "images", 3)
    truncated = tmp_path / "images" / "truncated.jpg"
    truncated.write_bytes(images[0].read_bytes()[:300])
    # The model path does not exist: the image error must come first, after seconds not hours.
    with pytest.raises(ConfigError) as error:
        predict.main(
            [f"model={tmp_path / 'no_model'}", f"images={tmp_path / 'images'}", "out=x.csv"]
        )
    message = str(error.value)
    assert "truncated.jpg" in message and "unreadable or truncated" in message
    assert not (tmp_path / "x.csv").exists()


def test_every_bad_file_is_counted(neu_seg: Path, tmp_path: Path) -> None:
    _real_images(neu_seg, tmp_path / "images", 2)
    (tmp_path / "images" / "a_bad.png").write_bytes(b"not a png")
    (tmp_path / "images" / "b_bad.jpg").write_bytes(b"")
    paths = predict.list_images(tmp_path / "images")
    with pytest.raises(ValueError, match=r"a_bad\.png: .*\(and 1 more unreadable file"):
        predict.check_images(paths)


def test_image_batches_never_mix_sizes(tmp_path: Path) -> None:
    from data.images import encode_png

    sizes = [(4, 6), (4, 6), (5, 6), (4, 6)]
    for i, (h, w) in enumerate(sizes):
        (tmp_path / f"{i}.png").write_bytes(encode_png(np.full((h, w), 255, np.uint8)))
    batches = list(predict.image_batches(predict.list_images(tmp_path), batch_size=8))
    assert [names for names, _ in batches] == [["0.png", "1.png"], ["2.png"], ["3.png"]]
    assert batches[0][1].shape == (2, 4, 6, 1) and batches[0][1].dtype == np.uint8
    assert batches[0][1].max() == 255  # the model scales its own input


def test_bad_arguments_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing model=..., images=..."):
        predict.main([])
    with pytest.raises(ConfigError, match="format=csv: expected one of kaggle_old, kaggle_new"):
        predict.main(["model=m", "images=i", "format=csv"])
    with pytest.raises(ConfigError, match="tta=maybe: expected true or false"):
        predict.main(["model=m", "images=i", "tta=maybe"])
    with pytest.raises(ConfigError, match=f"images={tmp_path}: no image files"):
        predict.main(["model=m", f"images={tmp_path}"])
    with pytest.raises(ConfigError, match="not a folder"):
        predict.main(["model=m", f"images={tmp_path / 'nope'}"])


def test_a_model_path_without_its_postprocessing_is_refused(tmp_path: Path) -> None:
    lone = tmp_path / "m.keras"
    lone.write_bytes(b"PK")
    with pytest.raises(ConfigError, match=r"m\.json beside it"):
        predict.load_predictor(lone)


# --- real promoted models (slow: the session's tiny experiment is trained and promoted once) ---


@pytest.fixture(scope="module")
def promoted(tmp_path_factory: pytest.TempPathFactory, neu_seg: Path) -> Path:
    return experiment_fixture.promoted_experiment(tmp_path_factory.getbasetemp(), neu_seg)


def _folder_images(paths: list[Path]) -> np.ndarray:
    from data.images import read_grey

    return np.stack([read_grey(p) for p in paths])[..., None]


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["kaggle_old", "kaggle_new"])
def test_submission_decodes_to_exactly_the_predicted_masks(
    promoted: Path, neu_seg: Path, tmp_path: Path, fmt: str
) -> None:
    paths = _real_images(neu_seg, tmp_path / "images", 10)
    out = tmp_path / "submission.csv"
    assert (
        predict.main(
            [
                f"model={promoted / 'final'}",
                f"images={tmp_path / 'images'}",
                f"out={out}",
                f"format={fmt}",
                "batch_size=4",
            ]
        )
        == 0
    )
    predictor = predict.load_predictor(promoted / "final")
    expected = predictor.masks(_folder_images(paths))
    assert expected.any(), "the ensemble predicts nothing: the round trip would prove little"
    decoded = read_submission(
        out, shapes={p.name: (200, 200) for p in paths}, class_ids=(1, 2, 3), fmt=fmt
    )
    for path, masks in zip(paths, expected, strict=True):
        np.testing.assert_array_equal(decoded[path.name], masks)
    rows = out.read_text().splitlines()
    if fmt == "kaggle_old":
        assert len(rows) == 1 + 10 * 3  # every image x class, empty or not


def _first_promoted(experiment: Path) -> Path:
    """The .keras file of the first model that promotion wrote to final/models/."""
    metrics = json.loads((experiment / "final" / "metrics.json").read_text())
    return experiment / "final" / metrics["models"][0]["file"]


@pytest.mark.slow
def test_an_ensemble_of_two_identical_models_equals_the_single_model(
    promoted: Path, neu_seg: Path, tmp_path: Path
) -> None:
    single_file = _first_promoted(promoted)
    single = predict.load_predictor(single_file)
    twin = EnsembleSpec(
        (Member("a", single_file.name, 0.3), Member("b", single_file.name, 0.7)),
        single.spec.postprocess,
        single.spec.class_names,
    )
    spec_file = single_file.parent / "twins.json"
    spec_file.write_text(twin.to_json())
    images = _folder_images(_real_images(neu_seg, tmp_path / "images", 4))
    pair = predict.load_predictor(spec_file)
    np.testing.assert_allclose(pair.probabilities(images), single.probabilities(images), atol=1e-6)
    np.testing.assert_array_equal(pair.masks(images), single.masks(images))
    spec_file.unlink()


@pytest.mark.slow
def test_a_model_that_fails_to_load_is_named(promoted: Path, neu_seg: Path, tmp_path: Path) -> None:
    name = _first_promoted(promoted).stem
    broken = tmp_path / f"{name}.keras"
    broken.write_bytes((promoted / "final" / "models" / f"{name}.keras").read_bytes()[:2000])
    shutil.copy(promoted / "final" / "models" / f"{name}.json", tmp_path)
    _real_images(neu_seg, tmp_path / "images", 2)
    with pytest.raises(ConfigError, match=f"cannot load model {broken}"):
        predict.main([f"model={broken}", f"images={tmp_path / 'images'}"])


@pytest.mark.slow
def test_a_model_of_another_class_count_is_refused_by_name(
    promoted: Path, neu_seg: Path, tmp_path: Path
) -> None:
    single_file = _first_promoted(promoted)
    spec = predict.load_predictor(single_file).spec
    extra = postprocess.raw_params(len(spec.class_names) + 1)
    wider = EnsembleSpec(spec.members, extra, (*spec.class_names, "extra"), spec.tta, spec.flips)
    spec_file = single_file.parent / "wider.json"
    spec_file.write_text(wider.to_json())
    _real_images(neu_seg, tmp_path / "images", 2)
    try:
        with pytest.raises(ConfigError, match=r"predicts 3 classes but .*wider.json has 4"):
            predict.main([f"model={spec_file}", f"images={tmp_path / 'images'}"])
    finally:
        spec_file.unlink()


@pytest.mark.slow
def test_flip_tta_averages_the_model_over_flips(
    promoted: Path, neu_seg: Path, tmp_path: Path
) -> None:
    import models

    single_file = _first_promoted(promoted)
    images = _folder_images(_real_images(neu_seg, tmp_path / "images", 2))
    # Post-processing tuned without TTA is not applied to TTA's averaged probabilities.
    with pytest.raises(ConfigError, match=r"tta=true: .* was tuned without flip TTA"):
        predict.load_predictor(single_file, tta=True)
    with_tta = predict.load_predictor(single_file, tta=True, raw=True)
    assert with_tta.flips == ("none", "h", "v")
    model = with_tta.members[0]

    def probs(batch: np.ndarray) -> np.ndarray:
        return np.asarray(models.probabilities(model.predict_on_batch(batch)))

    expected = (
        probs(images)
        + probs(images[:, :, ::-1].copy())[:, :, ::-1]
        + probs(images[:, ::-1].copy())[:, ::-1]
    ) / 3
    np.testing.assert_allclose(with_tta.probabilities(images), expected, atol=1e-6)
    plain = predict.load_predictor(single_file).probabilities(images)
    assert np.abs(plain - expected).max() > 1e-4  # the flips really changed something


@pytest.mark.slow
def test_a_model_with_a_lambda_layer_is_refused_in_safe_mode(
    promoted: Path, neu_seg: Path, tmp_path: Path
) -> None:
    import keras

    name = _first_promoted(promoted).stem
    # Arbitrary Python inside a model file: loading it in safe mode must not run it.
    inputs = keras.Input((None, None, 1))
    outputs = keras.layers.Lambda(lambda x: keras.ops.tile(x, [1, 1, 1, 3]) * 0.0 - 5.0)(inputs)
    hostile = tmp_path / f"{name}.keras"
    keras.Model(inputs, outputs).save(hostile)
    shutil.copy(promoted / "final" / "models" / f"{name}.json", tmp_path)
    _real_images(neu_seg, tmp_path / "images", 2)
    with pytest.raises(ConfigError) as caught:
        predict.main([f"model={hostile}", f"images={tmp_path / 'images'}"])
    message = str(caught.value)
    assert f"cannot load model {hostile}" in message
    assert "safe_mode" in message or "Lambda" in message
