"""data.reader: the tf.data pipeline and iter_examples against the source pixels and masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data.datasets import (
    folder_config,
    neu_seg_config,
    severstal_config,
    split_config,
    synthetic_config,
)
from data.prepare import prepare
from data.reader import ReaderError, count_examples, iter_examples, make_dataset, open_split
from data.sources.synthetic import render

SYNTH = synthetic_config(
    num_images=40,
    height=48,
    width=64,
    seed=5,
    split=split_config(seed=1, test_fraction=0.2, val_fraction=0.1, keep_clean=False),
)


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("synthetic") / "shards"
    # Small shards, so a split spans several and worker sharding crosses shard borders.
    prepare(SYNTH, out=str(out), shard_bytes=8 * 48 * 64)
    return str(out)


def _collect(dataset) -> tuple[np.ndarray, np.ndarray]:
    images, masks = zip(*[(i.numpy(), m.numpy()) for i, m in dataset], strict=True)
    return np.concatenate(images), np.concatenate(masks)


def _source(image_id: str) -> tuple[np.ndarray, np.ndarray]:
    index = int(image_id.split("_")[1].split(".")[0])
    return render(index, height=48, width=64, seed=5, clean_fraction=0.25)


def test_pipeline_equals_the_generated_pixels_and_masks(shards: str) -> None:
    examples = list(iter_examples(shards, "train"))
    assert len(examples) == count_examples(shards, "train") > 8
    for example in examples:
        pixels, masks = _source(example.image_id)
        np.testing.assert_array_equal(example.image, pixels)
        np.testing.assert_array_equal(example.masks, masks)
    images, masks = _collect(make_dataset(shards, "train", batch_size=4, deterministic=True))
    # uint8 by default: the pixels and 0/1 masks as stored, for a model that scales itself.
    assert images.dtype == masks.dtype == np.uint8
    assert images.shape == (len(examples), 48, 64, 1) and masks.shape == (len(examples), 48, 64, 4)
    assert set(np.unique(masks)) <= {0, 1}
    np.testing.assert_array_equal(images[..., 0], [e.image for e in examples])
    np.testing.assert_array_equal(masks.astype(bool), [e.masks for e in examples])


def test_float32_option_gives_the_same_values_scaled(shards: str) -> None:
    image, masks = next(
        iter(make_dataset(shards, "val", batch_size=2, dtype="float32", deterministic=True))
    )
    first = next(iter_examples(shards, "val"))
    assert image.dtype.name == masks.dtype.name == "float32"
    assert 0.0 <= image.numpy().min() <= image.numpy().max() <= 1.0
    assert set(np.unique(masks.numpy())) <= {0.0, 1.0}
    np.testing.assert_array_equal(
        np.round(image.numpy()[0, ..., 0] * 255).astype(np.uint8), first.image
    )
    np.testing.assert_array_equal(masks.numpy()[0].astype(bool), first.masks)


@pytest.mark.parametrize("cache", ["memory", "none"])
def test_cached_and_streamed_epochs_equal_the_source(shards: str, cache: str) -> None:
    # Two epochs: with cache="memory" the second comes from the in-memory records.
    dataset = make_dataset(
        shards, "train", batch_size=3, repeat=True, cache=cache, deterministic=True
    )
    rows = count_examples(shards, "train")
    images, masks = _collect(dataset.unbatch().take(2 * rows).batch(rows))
    expected = list(iter_examples(shards, "train"))
    for epoch in range(2):
        got = slice(epoch * rows, (epoch + 1) * rows)
        np.testing.assert_array_equal(images[got, ..., 0], [e.image for e in expected])
        np.testing.assert_array_equal(masks[got].astype(bool), [e.masks for e in expected])


def _copy_shards(shards: str, to: Path) -> str:
    import shutil

    shutil.copytree(shards, to)
    return str(to)


def test_an_opened_split_reads_its_shards_once_across_epochs(shards: str, tmp_path: Path) -> None:
    # A training loop opens the split once and asks for one dataset per epoch; with the
    # records cached, epochs after the first never touch the shards: here they are gone.
    uri = _copy_shards(shards, tmp_path / "shards")
    records = open_split(uri, "train", cache="memory")
    options = dict(batch_size=4, crop=(32, 32), flip=True, shuffle=True, deterministic=True)
    first = _collect(records.dataset(seed=10, **options))
    for shard in Path(uri).glob("*.arrow"):
        shard.unlink()
    assert not list(Path(uri).glob("*.arrow"))
    second = _collect(records.dataset(seed=11, **options))
    assert first[0].shape == second[0].shape
    assert not np.array_equal(first[1], second[1])  # another epoch: another order and crops
    # Streamed, the same second epoch needs the shards.
    streamed = open_split(uri, "train", cache="none")
    with pytest.raises(Exception, match="arrow|No such file|not found"):
        _collect(streamed.dataset(seed=11, **options))


def test_an_epoch_depends_on_its_seed_not_on_the_epochs_before(shards: str) -> None:
    # Resume is epoch-exact: epoch 2 of a run that did epochs 0 and 1 equals epoch 2 of a run
    # whose pipeline was opened just for it (a resumed trial).
    options = dict(batch_size=3, crop=(24, 24), flip=True, shuffle=True, deterministic=True)
    for cache in ("memory", "none"):
        running = open_split(shards, "train", cache=cache)
        for seed in (100, 101):
            _collect(running.dataset(seed=seed, **options))
        continued = _collect(running.dataset(seed=102, **options))
        resumed = _collect(open_split(shards, "train", cache=cache).dataset(seed=102, **options))
        np.testing.assert_array_equal(continued[0], resumed[0])
        np.testing.assert_array_equal(continued[1], resumed[1])


def test_a_cached_shuffle_draws_from_the_whole_split(shards: str) -> None:
    records = open_split(shards, "train", cache="memory")
    ids = []
    for seed in range(6):
        dataset = records.dataset(batch_size=1, shuffle=True, seed=seed, deterministic=True)
        ids.append([float(image.numpy().mean()) for image, _ in dataset.take(1)][0])
    # Six seeds, six different first images: the order is not one shard's run of records.
    assert len(set(ids)) >= 5
    assert records.examples == count_examples(shards, "train")


def test_unknown_cache_mode_is_named(shards: str) -> None:
    with pytest.raises(ReaderError, match="cache='disk': expected one of auto, memory, none"):
        make_dataset(shards, "train", batch_size=2, cache="disk")


def test_deterministic_mode_repeats_shuffle_crops_and_flips(shards: str) -> None:
    def take(seed: int) -> np.ndarray:
        dataset = make_dataset(
            shards,
            "train",
            batch_size=3,
            crop=(32, 32),
            flip=True,
            shuffle=True,
            repeat=True,
            seed=seed,
            deterministic=True,
        )
        return np.concatenate([m.numpy() for _, m in dataset.take(12)])

    first = take(7)
    np.testing.assert_array_equal(first, take(7))
    assert not np.array_equal(first, take(8))


def test_workers_read_disjoint_parts_that_cover_the_split(shards: str) -> None:
    everything = [e.image for e in iter_examples(shards, "train")]
    parts = []
    for index in range(3):
        images, _ = _collect(
            make_dataset(
                shards,
                "train",
                batch_size=2,
                num_workers=3,
                index=index,
                dtype="uint8",
                deterministic=True,
            )
        )
        assert len(images) == count_examples(shards, "train", num_workers=3, index=index)
        parts.append(images[..., 0])
    # Worker k reads records k, k+3, k+6, ... of the split.
    for index, part in enumerate(parts):
        np.testing.assert_array_equal(part, everything[index::3])


def test_limit_takes_the_first_records(shards: str) -> None:
    images, _ = _collect(
        make_dataset(shards, "train", batch_size=4, limit=5, dtype="uint8", deterministic=True)
    )
    expected = [e.image for e in iter_examples(shards, "train", limit=5)]
    assert len(images) == 5 == len(expected)
    np.testing.assert_array_equal(images[..., 0], expected)


def test_flips_move_image_and_masks_together(shards: str) -> None:
    originals = list(iter_examples(shards, "train"))
    dataset = make_dataset(
        shards, "train", batch_size=8, flip=True, seed=2, dtype="uint8", deterministic=True
    )
    images, masks = _collect(dataset)
    kinds = set()
    for image, mask, example in zip(images[..., 0], masks.astype(bool), originals, strict=True):
        options = {
            "none": (example.image, example.masks),
            "lr": (example.image[:, ::-1], example.masks[:, ::-1]),
            "ud": (example.image[::-1], example.masks[::-1]),
            "both": (example.image[::-1, ::-1], example.masks[::-1, ::-1]),
        }
        match = [k for k, (i, m) in options.items() if np.array_equal(image, i)]
        assert match, f"{example.image_id}: image is no flip of the source"
        np.testing.assert_array_equal(mask, options[match[0]][1])
        kinds.add(match[0])
    assert len(kinds) >= 3  # the flips really happen


def test_defect_crops_are_centred_on_defects(shards: str) -> None:
    dataset = make_dataset(shards, "train", batch_size=8, crop=(16, 16), crop_mode="defect", seed=4)
    _, masks = _collect(dataset)
    assert masks.shape[1:] == (16, 16, 4)
    # train holds defective images only (keep_clean=false), so every window shows a defect.
    assert (masks.reshape(len(masks), -1).max(axis=1) == 1).all()
    _, random_masks = _collect(make_dataset(shards, "train", batch_size=8, crop=(16, 16), seed=4))
    assert masks.sum() > random_masks.sum()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"batch_size": 0}, "batch_size=0"),
        ({"batch_size": 2, "crop_mode": "middle"}, "crop_mode='middle'"),
        ({"batch_size": 2, "crop": (49, 10)}, "larger than the images"),
        ({"batch_size": 2, "num_workers": 2, "index": 2}, "index=2: expected an integer in 0..1"),
        ({"batch_size": 2, "limit": 0}, "limit=0"),
        ({"batch_size": 2, "dtype": "float16"}, "dtype='float16'"),
    ],
)
def test_bad_options_are_named(shards: str, options: dict, expected: str) -> None:
    with pytest.raises(ReaderError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        make_dataset(shards, "train", **options)


def test_unknown_split_lists_the_splits(shards: str) -> None:
    with pytest.raises(ValueError, match="split 'training' is not in .*train, val, test"):
        make_dataset(shards, "training", batch_size=1)


def _mixed_size_folder(root: Path) -> None:
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for name, (height, width) in {"a": (40, 56), "b": (32, 32), "c": (40, 56)}.items():
        Image.fromarray(rng.integers(0, 255, (height, width), np.uint8)).save(
            root / "images" / f"{name}.png"
        )
        labels = np.zeros((height, width), np.uint8)
        labels[5:20, 3:9] = 1
        labels[25:30, 10:30] = 2
        Image.fromarray(labels).save(root / "masks" / f"{name}.png")


def test_whole_images_of_different_sizes_are_batched_by_size(tmp_path: Path) -> None:
    _mixed_size_folder(tmp_path / "src")
    dataset = folder_config(tmp_path / "src", ["one", "two"], name="mixed")
    out = str(tmp_path / "shards")
    assert prepare(dataset, out=out).image_shape is None
    # Batch 2 over sizes 32x32, 40x56, 40x56: one batch per size, nothing padded or lost.
    batches = [(x.numpy(), m.numpy()) for x, m in make_dataset(out, "train", batch_size=2)]
    assert sorted(m.shape for _, m in batches) == [(1, 32, 32, 2), (2, 40, 56, 2)]
    by_id = {e.image_id: e for e in iter_examples(out, "train")}
    for images, masks in batches:
        for image, mask in zip(images, masks, strict=True):
            matches = [
                e
                for e in by_id.values()
                if e.image.shape == image.shape[:2] and np.array_equal(e.image, image[..., 0])
            ]
            assert len(matches) == 1
            np.testing.assert_array_equal(mask.astype(bool), matches[0].masks)
            del by_id[matches[0].image_id]
    assert not by_id
    singles = [
        m.numpy()[0] for _, m in make_dataset(out, "train", batch_size=1, deterministic=True)
    ]
    assert sorted(m.shape for m in singles) == [(32, 32, 2), (40, 56, 2), (40, 56, 2)]
    for mask, example in zip(singles, iter_examples(out, "train"), strict=True):
        np.testing.assert_array_equal(mask.astype(bool), example.masks)
    images, masks = _collect(make_dataset(out, "train", batch_size=3, crop=(24, 24)))
    assert images.shape == (3, 24, 24, 1) and masks.shape == (3, 24, 24, 2)

    # A model validated on the size batches scores what it scores one image at a time.
    import keras

    import models
    from models.metrics import dice_metrics, kaggle_dice

    keras.utils.set_random_seed(0)
    model = models.build_model(
        "unet", input_shape=(None, None, 1), num_classes=2, filters=2, depth=2, output_prior=0.5
    )
    model.compile(loss="binary_crossentropy", metrics=dice_metrics(["one", "two"]))
    by_size = make_dataset(out, "train", batch_size=2, deterministic=True)
    metric = model.evaluate(by_size, return_dict=True, verbose=0)["kaggle_dice"]
    logits = {}  # image bytes -> logits, from the size batches
    truth, preds = [], []
    for x, m in by_size:
        batch_logits = keras.ops.convert_to_numpy(model(x))
        for image, mask, image_logits in zip(x.numpy(), m.numpy(), batch_logits, strict=True):
            logits[image.tobytes()] = image_logits
            truth.append(mask[None])
            preds.append(image_logits[None] >= 0)
    per_image = np.mean([kaggle_dice(t, p) for t, p in zip(truth, preds, strict=True)])
    np.testing.assert_allclose(metric, per_image, rtol=1e-6)
    for x, _ in make_dataset(out, "train", batch_size=1):
        alone = keras.ops.convert_to_numpy(model(x))[0]
        np.testing.assert_allclose(logits[x.numpy()[0].tobytes()], alone, atol=1e-5)


# ---- real data: masks through the pipeline equal the source masks pixel for pixel ----


def test_severstal_sample_through_the_pipeline(severstal_sample: Path, tmp_path: Path) -> None:
    import csv

    from data import rle

    prepare(severstal_config(severstal_sample), out=str(tmp_path))
    with (severstal_sample / "train.csv").open(newline="") as handle:
        rows = {
            (r["ImageId"], int(r["ClassId"])): r["EncodedPixels"] for r in csv.DictReader(handle)
        }
    examples = list(iter_examples(str(tmp_path), "train"))
    images, masks = _collect(
        make_dataset(str(tmp_path), "train", batch_size=4, dtype="uint8", deterministic=True)
    )
    assert len(examples) == len(images) == 22
    for example, image, mask in zip(examples, images, masks, strict=True):
        with Image.open(severstal_sample / "train_images" / example.image_id) as source:
            np.testing.assert_array_equal(image[..., 0], np.asarray(source)[..., 0])
        for k in range(4):
            # The loop decoder is the independent reference for the Kaggle convention.
            text = rows.get((example.image_id, k + 1), "")
            expected = rle.decode_loop(text, 256, 1600) if text else np.zeros((256, 1600), bool)
            np.testing.assert_array_equal(mask[..., k], expected)
            np.testing.assert_array_equal(example.masks[..., k], expected)
    assert masks.sum() == sum(rle.area(s) for s in rows.values()) > 0


def test_neu_seg_through_the_pipeline(neu_seg: Path, tmp_path: Path) -> None:
    split = split_config(test_fraction=0.1, val_fraction=0.05, use_source_splits=True)
    dataset = neu_seg_config(neu_seg, max_images=24, split=split)
    manifest = prepare(dataset, out=f"file://{tmp_path}")
    assert manifest.image_shape == (200, 200)
    for split in ("train", "val", "test"):
        ids = [e.image_id for e in iter_examples(f"file://{tmp_path}", split)]
        images, masks = _collect(
            make_dataset(f"file://{tmp_path}", split, batch_size=8, deterministic=True)
        )
        assert masks.shape == (len(ids), 200, 200, 3)
        for image_id, image, mask in zip(ids, images, masks, strict=True):
            subset, name = image_id.split("/")
            assert subset == split
            labels = np.asarray(Image.open(neu_seg / "ann_dir" / subset / (name[:-4] + ".png")))
            for k in range(3):
                np.testing.assert_array_equal(mask[..., k] == 1, labels == k + 1)
            with Image.open(neu_seg / "img_dir" / subset / name) as source:
                grey = np.asarray(source.convert("L"))
            np.testing.assert_array_equal(image[..., 0], grey)


def test_check_options_names_the_image_sizes_a_crop_does_not_fit(tmp_path) -> None:
    from data.prepare import prepare
    from data.reader import ReaderError, check_options
    from data.shards import read_manifest

    root = tmp_path / "folder"
    import numpy as np
    from PIL import Image

    for index, (h, w) in enumerate([(40, 60), (30, 70), (50, 50), (36, 64)] * 6):
        for sub in ("images", "masks"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((h, w), 100, np.uint8)).save(root / "images" / f"i{index}.png")
        mask = np.zeros((h, w), np.uint8)
        mask[5:9, 5:9] = 1  # defective: train and val hold defective images only
        Image.fromarray(mask).save(root / "masks" / f"i{index}.png")
    from data.config import compose

    cfg = compose(
        "data.conf",
        "prepare",
        ["dataset=folder", f"dataset.root={root}", "dataset.split.val_fraction=0.3"],
    )
    prepare(cfg.dataset, out=str(tmp_path / "shards"))
    manifest = read_manifest(str(tmp_path / "shards"))
    assert manifest.image_shape is None
    check_options(manifest, "train", 4, (30, 50))  # fits the smallest (30x70 and 40x60)
    with pytest.raises(
        ReaderError, match=r"crop=\(32, 32\) is larger than 1 image size\(s\) .*30x70"
    ):
        check_options(manifest, "train", 4, (32, 32))
    check_options(manifest, "val", 4, None)  # whole images of several sizes: batched by size
    check_options(manifest, "val", 1, None)


@pytest.mark.parametrize("cache", ["none", "memory"])
@pytest.mark.parametrize(("limit", "drop_remainder"), [(7, False), (7, True), (8, False)])
def test_a_pass_declares_its_batch_count(
    shards: str, cache: str, limit: int, drop_remainder: bool
) -> None:
    # Keras reads the count to end a validation pass; unknown, it runs out of data and warns.
    split = open_split(shards, "train", limit=limit, num_workers=1, index=0, cache=cache)
    dataset = split.dataset(batch_size=4, drop_remainder=drop_remainder, dtype="uint8")
    expected = limit // 4 if drop_remainder else -(-limit // 4)
    assert int(dataset.cardinality()) == expected
    assert sum(1 for _ in dataset) == expected
    repeated = split.dataset(batch_size=4, repeat=True, dtype="uint8")
    assert int(repeated.cardinality()) < 0  # infinite
