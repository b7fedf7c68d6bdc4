"""search.sweep.trainable's input pipeline: built once per trial, and epoch-exact for resume."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from data.datasets import split_config, synthetic_config
from data.prepare import prepare
from search.bench.trial import trial_images_per_s
from search.sweep.trainable import epoch_batches, open_splits, val_batches

SYNTH = synthetic_config(
    num_images=48,
    height=40,
    width=40,
    seed=2,
    split=split_config(seed=1, test_fraction=0.2, val_fraction=0.2),
)


def _settings(uri: str) -> dict:
    train = {
        "batch_size": 4,
        "crop": [32, 32],
        "crop_mode": "random",
        "flip": True,
        "limit_train": None,
        "limit_val": 6,
    }
    return {"shards": uri, "seed": 3, "train": train}


def _epoch(records, settings, epoch: int) -> tuple[np.ndarray, np.ndarray]:
    pairs = [(x.numpy(), y.numpy()) for x, y in epoch_batches(records, settings, epoch)]
    return np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("trainable") / "shards"
    prepare(SYNTH, out=str(out), shard_bytes=6 * 40 * 40)
    return str(out)


def test_one_pipeline_serves_every_epoch_of_a_trial(shards: str, tmp_path: Path) -> None:
    uri = str(tmp_path / "shards")
    shutil.copytree(shards, uri)
    settings = _settings(uri)
    records, val = open_splits(settings)
    assert records.cached  # NEU-Seg-sized splits and smaller are held in memory
    first = _epoch(records, settings, 0)
    assert sum(x.shape[0] for x, _ in val_batches(val, settings)) == 6  # limit_val
    for shard in Path(uri).glob("*.arrow"):
        shard.unlink()  # epochs after the first never read the shards again
    second = _epoch(records, settings, 1)
    assert first[0].shape == second[0].shape == (records.examples, 32, 32, 1)
    assert not np.array_equal(first[1], second[1])
    assert sum(x.shape[0] for x, _ in val_batches(val, settings)) == 6  # from memory too


def test_batches_are_uint8_unless_an_older_checkpoint_takes_float32(shards: str) -> None:
    settings = _settings(shards)
    records, val = open_splits(settings)
    image, masks = next(iter(epoch_batches(records, settings, 0)))
    assert image.dtype.name == masks.dtype.name == "uint8"  # the model scales, the loss casts
    assert int(image.numpy().max()) > 1
    old_image, _ = next(iter(epoch_batches(records, settings, 0, "float32")))
    np.testing.assert_allclose(old_image.numpy(), image.numpy() / 255.0, atol=1e-7)
    val_image, _ = next(iter(val_batches(val, settings, "float32")))
    assert val_image.dtype.name == "float32" and float(val_image.numpy().max()) <= 1.0


def test_an_epoch_of_a_resumed_trial_equals_the_uninterrupted_one(shards: str) -> None:
    settings = _settings(shards)
    running, _ = open_splits(settings)
    for epoch in (0, 1):
        _epoch(running, settings, epoch)
    resumed, _ = open_splits(settings)  # a restarted worker opens the splits anew
    for got, expected in zip(
        _epoch(resumed, settings, 2), _epoch(running, settings, 2), strict=True
    ):
        np.testing.assert_array_equal(got, expected)


def test_bench_reads_a_trials_training_throughput(tmp_path: Path) -> None:
    trial = tmp_path / "tune" / "unet_a_00000"
    trial.mkdir(parents=True)
    rows = [{"epoch": e, "images_per_s": r} for e, r in ((1, 2.0), (2, 10.0), (3, 12.0), (4, 11.0))]
    (trial / "result.json").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert trial_images_per_s(tmp_path) == 11.0  # the median after the tracing first epoch
    (tmp_path / "tune" / "unet_b_00001").mkdir()
    (tmp_path / "tune" / "unet_b_00001" / "result.json").write_text("")
    with pytest.raises(Exception, match="expected one trial, found 2"):
        trial_images_per_s(tmp_path)


def test_a_trials_batches_are_its_epochs_in_order(shards: str) -> None:
    from search.sweep.trainable import trial_batches

    settings = _settings(shards)
    records, _ = open_splits(settings)
    batches, steps = trial_batches(records, settings, 1, 4)
    assert steps == -(-records.examples // 4)
    got = [(x.numpy(), y.numpy()) for x, y in batches]
    assert len(got) == 3 * steps
    for k, epoch in enumerate((1, 2, 3)):
        part = got[k * steps : (k + 1) * steps]
        images = np.concatenate([p[0] for p in part])
        masks = np.concatenate([p[1] for p in part])
        expected = _epoch(records, settings, epoch)
        np.testing.assert_array_equal(images, expected[0])
        np.testing.assert_array_equal(masks, expected[1])


def test_a_cosine_schedule_spans_the_trials_epochs_and_survives_a_checkpoint(
    tmp_path: Path,
) -> None:
    import keras

    import models
    from search.sweep.trainable import learning_rate

    train = {"learning_rate": 0.004, "lr_schedule": "constant", "epochs": 5}
    assert learning_rate({}, train, 10) == 0.004
    assert learning_rate({"learning_rate": 0.01}, train, 10) == 0.01
    # A model's own epoch budget sets the length of its curve.
    cosine = learning_rate({"epochs": 2}, {**train, "lr_schedule": "cosine"}, 10)
    assert float(cosine(0)) == pytest.approx(0.004)
    assert float(cosine(10)) == pytest.approx(0.002)  # half way: epoch 1 of 2
    assert float(cosine(20)) == pytest.approx(0.0, abs=1e-9)

    model = models.build_model(
        "unet", input_shape=(None, None, 1), num_classes=2, filters=4, depth=2
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=cosine), loss="binary_crossentropy")
    x = np.zeros((6, 16, 16, 1), "uint8")
    model.fit(x, np.zeros((6, 16, 16, 2), "float32"), batch_size=2, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    again = models.load_model(tmp_path / "m.keras")
    assert int(again.optimizer.iterations) == 3  # a resumed trial continues the same curve
    assert float(again.optimizer.learning_rate) == pytest.approx(float(cosine(3)))
    assert float(cosine(3)) < 0.004


def test_the_global_seed_enters_the_shuffle_so_trials_hold_it_fixed(shards: str) -> None:
    """Why train_segmentation seeds every worker with the trial's seed, not the epoch's."""
    import keras

    settings = _settings(shards)

    def third_epoch(global_seed: int) -> np.ndarray:
        keras.utils.set_random_seed(global_seed)
        records, _ = open_splits(settings)
        return _epoch(records, settings, 2)[1]

    np.testing.assert_array_equal(third_epoch(3), third_epoch(3))
    assert not np.array_equal(third_epoch(3), third_epoch(4))


def test_a_reused_worker_says_when_its_thread_count_is_not_the_trials() -> None:
    import tensorflow as tf

    from search.sweep.trainable import configure_backend

    _ = tf.constant(1.0) + 1.0  # TensorFlow initialised: its thread settings are now fixed
    in_force = tf.config.threading.get_intra_op_parallelism_threads()
    with pytest.warns(RuntimeWarning, match=rf"keeps {in_force} TensorFlow thread"):
        configure_backend(in_force + 3)
