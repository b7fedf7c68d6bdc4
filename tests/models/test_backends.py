"""models/ is keras.ops only: every architecture trains, saves and reloads under JAX too.

JAX (CPU) comes from the `jax` extra. The JAX checks run in a subprocess, because Keras picks
its backend once, at import.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_checks import python_env, run_python

PROJECT = Path(__file__).resolve().parents[2]

JAX_SCRIPT = r"""
import json, sys, tempfile
import numpy as np
import keras
import models
from models.layers import PadToMultiple, ResizeToMatch
from models.losses import get_loss
from models.metrics import dice_metrics

out = {"backend": keras.backend.backend()}
rng = np.random.default_rng(0)
x = rng.random((2, 7, 5, 3)).astype("float32")
out["pad"] = np.asarray(PadToMultiple(8)(x)).tolist()
small = rng.random((1, 5, 6, 2)).astype("float32")
out["resize"] = np.asarray(ResizeToMatch()([small, np.zeros((1, 21, 13, 1), "float32")])).tolist()
images = rng.integers(0, 256, (4, 40, 56, 1), dtype="uint8")
masks = (rng.random((4, 40, 56, 3)) > 0.9).astype("float32")
for name, hparams in (
    ("unet", {"filters": 4, "depth": 3}),
    ("resunet", {"filters": 4}),
    ("invresunet", {"filters": 4}),
    ("deeplabv3plus", {"alpha": 0.1}),
):
    model = models.build_model(name, input_shape=(None, None, 1), num_classes=3, **hparams)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=get_loss("bce_dice"),
                  metrics=dice_metrics(["a", "b", "c"]))
    before = model.predict(images, verbose=0)
    history = model.fit(images, masks, batch_size=2, epochs=1, verbose=0)
    after = model.predict(images, verbose=0)
    # Keras' own saving imports TensorFlow (for tf.io.gfile) when it is installed; building,
    # training and predicting must not.
    out.setdefault("tensorflow_imported", "tensorflow" in sys.modules)
    with tempfile.TemporaryDirectory() as folder:
        model.save(f"{folder}/m.keras")
        again = models.load_model(f"{folder}/m.keras")
    out[name] = {
        "shape": list(after.shape),
        "loss": history.history["loss"][-1],
        "moved": float(np.abs(after - before).max()),
        "reload_error": float(np.abs(again.predict(images, verbose=0) - after).max()),
        "iterations": int(again.optimizer.iterations),
    }
print("RESULT " + json.dumps(out))
"""


def _mirrored(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """NumPy's symmetric padding, repeated until the image is height x width."""
    while x.shape[1] < height or x.shape[2] < width:
        add_h, add_w = min(x.shape[1], height - x.shape[1]), min(x.shape[2], width - x.shape[2])
        x = np.pad(x, ((0, 0), (0, add_h), (0, add_w), (0, 0)), mode="symmetric")
    return x


def test_resize_matches_tensorflows_bilinear_at_runtime_sizes() -> None:
    import tensorflow as tf

    from models.layers import ResizeToMatch

    rng = np.random.default_rng(1)
    spec = [tf.TensorSpec([None, None, None, 2]), tf.TensorSpec([None, None, None, 1])]
    resize = tf.function(lambda x, ref: ResizeToMatch()([x, ref]), input_signature=spec)
    for (h, w), (out_h, out_w) in (((5, 6), (21, 13)), ((50, 50), (200, 200)), ((7, 9), (7, 9))):
        x = rng.random((2, h, w, 2)).astype("float32")
        got = resize(x, np.zeros((2, out_h, out_w, 1), "float32")).numpy()
        expected = tf.image.resize(x, (out_h, out_w), method="bilinear").numpy()
        np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.slow
def test_every_architecture_trains_saves_and_reloads_under_jax() -> None:
    try:
        import jax  # noqa: F401
    except ImportError:
        pytest.fail("JAX is not installed: pip install -e '.[jax]' (the README's test command)")
    done = run_python("-c", JAX_SCRIPT, env=python_env(KERAS_BACKEND="jax"), timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    out = json.loads(line.removeprefix("RESULT "))
    assert out["backend"] == "jax"
    assert not out["tensorflow_imported"], "models/ imported TensorFlow under the JAX backend"
    rng = np.random.default_rng(0)
    x = rng.random((2, 7, 5, 3)).astype("float32")
    np.testing.assert_array_equal(np.array(out["pad"], "float32"), _mirrored(x, 8, 8))
    import tensorflow as tf

    small = rng.random((1, 5, 6, 2)).astype("float32")
    expected = tf.image.resize(small, (21, 13), method="bilinear").numpy()
    np.testing.assert_allclose(np.array(out["resize"], "float32"), expected, atol=1e-5)
    for name in ("unet", "resunet", "invresunet", "deeplabv3plus"):
        result = out[name]
        assert result["shape"] == [4, 40, 56, 3], name
        assert np.isfinite(result["loss"]), name
        assert result["moved"] > 0, f"{name}: a training step under JAX changed nothing"
        assert result["reload_error"] < 1e-5, name
        assert result["iterations"] == 2, name  # the optimizer state came back too
