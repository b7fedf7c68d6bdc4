"""Contract tests run against every registered architecture."""

from __future__ import annotations

import ast
from pathlib import Path

import keras
import numpy as np
import pytest

import models
from models.losses import get_loss
from models.metrics import dice_metrics

NUM_CLASSES = 4

# The module under models/ that builds each registered architecture.
ARCHITECTURE_MODULES = {
    "unet": "models.unet",
    "resunet": "models.resunet",
    "invresunet": "models.invresunet",
    "deeplabv3plus": "models.deeplab",
}


def infer(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """Logits of an eager inference call: no predict-function tracing, which dominates on CPU."""
    assert images.dtype == np.uint8, "models take uint8 pixels (models.inputs)"
    return keras.ops.convert_to_numpy(model(images, training=False))


def pixels(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    """Random uint8 grey pixels, as the input pipeline delivers them."""
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def small_hparams(name: str) -> dict[str, object]:
    """The smallest sensible setting of each architecture, so the tests stay fast on CPU."""
    if name == "deeplabv3plus":
        return {"alpha": 0.1, "aspp_filters": 16}
    return {"filters": 2, "depth": 3} if name != "unet" else {"filters": 2}


@pytest.fixture(scope="module")
def dynamic_models() -> dict[str, keras.Model]:
    """Every architecture with (None, None, 1) inputs, built once for the module."""
    return {
        name: models.build_model(
            name, input_shape=(None, None, 1), num_classes=NUM_CLASSES, **small_hparams(name)
        )
        for name in models.model_names()
    }


def test_the_four_paper_architectures_are_registered() -> None:
    assert set(models.model_names()) == {"unet", "resunet", "invresunet", "deeplabv3plus"}


@pytest.mark.parametrize("name", ["unet", "resunet", "invresunet", "deeplabv3plus"])
@pytest.mark.parametrize("height,width", [(256, 1600), (200, 200)])
def test_builds_for_severstal_and_neu_sizes(name: str, height: int, width: int) -> None:
    model = models.build_model(
        name, input_shape=(height, width, 1), num_classes=NUM_CLASSES, **small_hparams(name)
    )
    assert model.output_shape == (None, height, width, NUM_CLASSES)
    logits = infer(model, pixels(0, (1, height, width, 1)))
    assert logits.shape == (1, height, width, NUM_CLASSES)
    assert logits.dtype == np.float32
    assert np.isfinite(logits).all()
    keras.backend.clear_session()


@pytest.mark.parametrize("name", ["unet", "resunet", "invresunet", "deeplabv3plus"])
def test_output_pixels_line_up_with_input_pixels(name: str, dynamic_models) -> None:
    # A 61x59 crop is padded (mirrored, bottom/right) to 64x64 inside the model and cropped
    # back. So its logits must equal those of the 64x64 image mirrored by hand: any shift of
    # the padding or of the crop would break this equality.
    model = dynamic_models[name]
    image = pixels(1, (1, 61, 59, 1))
    mirrored = np.pad(image, ((0, 0), (0, 3), (0, 5), (0, 0)), mode="symmetric")
    crop_logits = infer(model, image)
    full_logits = infer(model, mirrored)
    assert crop_logits.shape == (1, 61, 59, NUM_CLASSES)
    np.testing.assert_allclose(crop_logits, full_logits[:, :61, :59], atol=1e-5)


@pytest.mark.parametrize("name", ["unet", "resunet", "invresunet", "deeplabv3plus"])
def test_keras_round_trip_in_safe_mode_gives_identical_predictions(
    name: str, dynamic_models, tmp_path: Path
) -> None:
    model = dynamic_models[name]
    model.compile(
        optimizer="adam",
        loss=get_loss("bce_dice", pos_weight=[1.0, 2.0, 2.0, 1.0]),
        metrics=dice_metrics(["a", "b", "c", "d"]),
    )
    model.optimizer.build(model.trainable_variables)  # checkpoints carry the optimizer state
    path = tmp_path / f"{name}.keras"
    model.save(path)
    image = pixels(2, (2, 45, 70, 1))
    expected = infer(model, image)
    for loaded in (models.load_model(path), keras.saving.load_model(path, safe_mode=True)):
        np.testing.assert_array_equal(infer(loaded, image), expected)
        assert loaded.loss.get_config() == model.loss.get_config()
        assert len(loaded.optimizer.variables) == len(model.optimizer.variables)
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in model.layers)


@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_logits_are_float32_under_mixed_precision_and_policy_is_restored(precision: str) -> None:
    before = keras.config.dtype_policy().name
    model = models.build_model(
        "resunet",
        input_shape=(None, None, 1),
        num_classes=2,
        filters=2,
        depth=2,
        precision=precision,
    )
    assert keras.config.dtype_policy().name == before
    compute = {
        layer.dtype_policy.compute_dtype for layer in model.layers if layer.name.endswith("conv1")
    }
    assert compute == {precision.removeprefix("mixed_")}
    logits = model(np.zeros((1, 20, 20, 1), np.uint8))
    assert logits.dtype == "float32"
    assert tuple(logits.shape) == (1, 20, 20, 2)


def test_load_model_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.keras"):
        models.load_model(tmp_path / "missing.keras")
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="broken.keras: cannot load model"):
        models.load_model(broken)
    with pytest.raises(ValueError, match="expected a .keras"):
        models.load_model(tmp_path / "model.h5")


def test_probabilities_is_the_sigmoid_for_arrays_and_tensors() -> None:
    logits = np.array([-1000.0, -2.0, 0.0, 3.0, 1000.0], dtype=np.float32)
    expected = np.array([0.0, 1 / (1 + np.exp(2.0)), 0.5, 1 / (1 + np.exp(-3.0)), 1.0])
    np.testing.assert_allclose(models.probabilities(logits), expected, atol=1e-6)
    tensor = models.probabilities(keras.ops.convert_to_tensor(logits))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(tensor), expected, atol=1e-6)


@pytest.mark.parametrize("name", ["unet", "resunet", "invresunet", "deeplabv3plus"])
def test_graph_with_unknown_spatial_dims(name: str, dynamic_models) -> None:
    # tf.function relaxes shapes to None after retracing (fit/predict on varying crops);
    # every layer must then still work, which static-size layers like bilinear UpSampling2D do not.
    import tensorflow as tf

    model = dynamic_models[name]
    graph = tf.function(
        lambda images: model(images, training=False),
        input_signature=[tf.TensorSpec((None, None, None, 1), tf.uint8)],
    )
    image = pixels(3, (1, 37, 53, 1))
    np.testing.assert_allclose(graph(image).numpy(), infer(model, image), atol=1e-5)


def test_mixed_float16_checkpoint_keeps_the_optimizer_state(tmp_path: Path) -> None:
    model = models.build_model(
        "unet",
        input_shape=(None, None, 1),
        num_classes=2,
        filters=2,
        depth=2,
        precision="mixed_float16",
    )
    optimizer = models.wrap_optimizer(keras.optimizers.Adam(1e-3), precision="mixed_float16")
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    model.compile(optimizer=optimizer, loss=get_loss("bce"), run_eagerly=True)
    rng = np.random.default_rng(4)
    images = rng.integers(0, 256, (2, 32, 32, 1), dtype=np.uint8)
    masks = (rng.random((2, 32, 32, 2)) > 0.8).astype(np.float32)
    model.fit(images, masks, epochs=1, verbose=0)
    model.save(tmp_path / "mixed.keras")
    loaded = models.load_model(tmp_path / "mixed.keras")
    saved_state = [np.asarray(v) for v in model.optimizer.variables]
    loaded_state = [np.asarray(v) for v in loaded.optimizer.variables]
    assert len(loaded_state) == len(saved_state)
    for saved, restored in zip(saved_state, loaded_state, strict=True):
        np.testing.assert_array_equal(restored, saved)
    assert models.wrap_optimizer(optimizer, precision="float32") is optimizer
    with pytest.raises(ValueError, match="precision 'half'"):
        models.wrap_optimizer(optimizer, precision="half")


@pytest.mark.parametrize("name", ["unet", "resunet", "invresunet", "deeplabv3plus"])
def test_the_head_starts_at_the_output_prior(name: str) -> None:
    # A zero-weight head leaves the bias alone: every pixel's probability is the prior.
    for prior in (0.01, 0.5):
        model = models.build_model(
            name,
            input_shape=(None, None, 1),
            num_classes=NUM_CLASSES,
            output_prior=prior,
            **small_hparams(name),
        )
        head = next(
            layer
            for layer in model.layers
            if layer.name.endswith("_conv") and "logits" in layer.name
        )
        kernel, bias = head.get_weights()
        np.testing.assert_allclose(
            bias, np.log(prior / (1 - prior)) * np.ones(NUM_CLASSES), atol=1e-6
        )
        head.set_weights([np.zeros_like(kernel), bias])
        probs = models.probabilities(infer(model, pixels(0, (1, 40, 56, 1))))
        np.testing.assert_allclose(probs, prior, rtol=1e-5)


@pytest.mark.parametrize("prior", [0.0, 0.6, -0.1])
def test_an_output_prior_outside_its_range_is_refused(prior: float) -> None:
    with pytest.raises(models.HParamError, match="output_prior"):
        models.build_model("unet", input_shape=(32, 32, 1), num_classes=2, output_prior=prior)


@pytest.mark.parametrize("name", ["unet", "resunet", "invresunet", "deeplabv3plus"])
def test_every_batch_norm_uses_the_project_momentum(name: str, dynamic_models) -> None:
    from models.blocks import BN_MOMENTUM

    model = (
        models.build_model(
            name, input_shape=(None, None, 1), num_classes=NUM_CLASSES, batch_norm=True, filters=2
        )
        if name == "unet"
        else dynamic_models[name]
    )
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms, f"{name} has no batch norm layers"
    assert {layer.momentum for layer in norms} == {BN_MOMENTUM}


def test_batch_norm_statistics_forget_their_start_within_a_short_trial() -> None:
    # 44 training-mode steps on data of mean 3: the moving mean keeps 0.9**44 < 1% of its
    # initial 0 (with Keras' default 0.99 it would still hold 64% of it).
    from models.blocks import batch_norm_layer

    layer = batch_norm_layer(name="bn")
    batch = np.full((4, 8, 8, 2), 3.0, dtype=np.float32)
    for _ in range(44):
        layer(batch, training=True)
    moving_mean = keras.ops.convert_to_numpy(layer.moving_mean)
    np.testing.assert_allclose(moving_mean, 3.0, rtol=0.01)


def imported_models_modules(source: str) -> set[str]:
    """The `models.*` modules a source file imports, anywhere in it (function-level included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # every module here lives directly in models/, so `.x` is models.x
                module = f"models.{module}".rstrip(".")
            # `from models import unet` imports a module too, not only a name.
            found.update([module, *(f"{module}.{alias.name}" for alias in node.names)])
    return {name for name in found if name == "models" or name.startswith("models.")}


def test_the_import_parser_sees_every_form_of_import() -> None:
    source = (
        "import models.unet\n"
        "from models import resunet\n"
        "from models.deeplab import HPARAMS\n"
        "def f():\n    from .invresunet import build_invresunet\n"
    )
    found = imported_models_modules(source)
    assert set(ARCHITECTURE_MODULES.values()) <= found


def test_no_architecture_module_imports_another() -> None:
    assert set(ARCHITECTURE_MODULES) == set(models.model_names())
    architectures = set(ARCHITECTURE_MODULES.values())
    for module in sorted(architectures):
        path = Path(models.__file__).parent / f"{module.removeprefix('models.')}.py"
        imported = imported_models_modules(path.read_text())
        assert "models.blocks" in imported or "models.hparams" in imported
        others = sorted(imported & (architectures - {module}))
        assert not others, (
            f"{path}: imports {', '.join(others)}; shared code belongs in models/blocks.py "
            "or models/hparams.py"
        )
