"""data.shards via data.prepare: bounded, atomic, checksummed shards; no-op reruns; URIs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from data.datasets import split_config, synthetic_config
from data.prepare import ShardsExist, prepare
from data.prepare import main as prepare_main
from data.reader import iter_examples, make_dataset
from data.shards import ShardError, read_manifest

SIDE = 32
RECORD_BYTES = SIDE * SIDE + 64  # raw pixels plus the writer's per-record allowance (no RLE)


def synthetic(num_images: int = 30, seed: int = 0) -> dict:
    split = split_config(seed=3, test_fraction=0.2, val_fraction=0.1)
    return synthetic_config(num_images=num_images, height=SIDE, width=SIDE, seed=seed, split=split)


def files(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(folder.iterdir())}


def test_shards_are_bounded_checksummed_and_leave_no_temporaries(tmp_path: Path) -> None:
    shard_bytes = 4 * RECORD_BYTES
    manifest = prepare(synthetic(), out=str(tmp_path), shard_bytes=shard_bytes)
    shards = [s for info in manifest.splits.values() for s in info.shards]
    assert len(manifest.splits["train"].shards) > 2
    for shard in shards:
        data = (tmp_path / shard.path).read_bytes()
        assert len(data) == shard.bytes
        assert hashlib.sha256(data).hexdigest() == shard.sha256
        # A shard closes once its payload reaches shard_bytes, so it holds at most one more
        # record than fits; RLE text is part of the payload, so it may close earlier.
        assert 1 <= shard.rows <= shard_bytes // RECORD_BYTES + 1
    assert sum(s.rows for s in shards) == 30
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["manifest.json"] + [s.path for s in shards]
    )
    written = json.loads((tmp_path / "manifest.json").read_text())
    assert written["schema_version"] == 1 and written["split_seed"] == 3
    assert written["class_names"] == ["pits", "scratches", "patches", "blobs"]


def test_rerun_with_same_inputs_is_a_no_op_and_changes_rewrite_when_asked(tmp_path: Path) -> None:
    first = prepare(synthetic(), out=str(tmp_path))
    before = files(tmp_path)
    again = prepare(synthetic(), out=str(tmp_path))
    assert files(tmp_path) == before
    assert again.input_fingerprint == first.input_fingerprint
    # A stale temporary from an interrupted write is not a shard; a real rebuild removes it.
    (tmp_path / "train-00007.arrow.tmp-deadbeef").write_bytes(b"partial")
    changed = prepare(synthetic(seed=1), out=str(tmp_path), overwrite=True)
    assert changed.input_fingerprint != first.input_fingerprint
    assert not any(".tmp-" in p.name for p in tmp_path.iterdir())
    assert files(tmp_path)["manifest.json"] != before["manifest.json"]


def test_another_config_or_dataset_is_refused_with_the_folder_untouched(tmp_path: Path) -> None:
    prepare(synthetic(), out=str(tmp_path))
    before = files(tmp_path)
    with pytest.raises(ShardsExist, match=r"dataset.seed: 0 there, 1 asked.*overwrite=true"):
        prepare(synthetic(seed=1), out=str(tmp_path))
    other = synthetic() | {"name": "severstal", "source": "synthetic"}
    with pytest.raises(ShardsExist, match="holds shards of dataset=synthetic .* dataset=severstal"):
        prepare(other, out=str(tmp_path))
    assert files(tmp_path) == before


def test_prepare_command_refuses_another_dataset_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from data.config import run_cli

    args = ["dataset=synthetic", "dataset.num_images=12", "dataset.height=16", "dataset.width=16"]
    out = f"out={tmp_path}"
    with pytest.raises(SystemExit) as done:
        run_cli(prepare_main, [*args, out])
    assert done.value.code == 0
    before = files(tmp_path)
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        run_cli(prepare_main, [*args, "dataset.seed=5", out])
    err = capsys.readouterr().err.strip().splitlines()
    assert done.value.code == 2 and len(err) == 1
    assert err[0].startswith(f"error: {tmp_path} holds shards of dataset=synthetic")
    assert "overwrite=true" in err[0] and files(tmp_path) == before
    with pytest.raises(SystemExit) as done:
        run_cli(prepare_main, [*args, "dataset.seed=5", out, "overwrite=true"])
    assert done.value.code == 0 and files(tmp_path) != before


def test_parallel_workers_write_the_same_shards(tmp_path: Path) -> None:
    serial = prepare(synthetic(num_images=40), out=str(tmp_path / "one"), workers=1)
    parallel = prepare(synthetic(num_images=40), out=str(tmp_path / "two"), workers=2)
    assert serial.splits == parallel.splits  # same rows, bytes and sha256 per shard


def test_file_uri_works_end_to_end(tmp_path: Path) -> None:
    uri = f"file://{tmp_path}/shards"
    manifest = prepare(synthetic(), out=uri)
    assert read_manifest(uri).splits == manifest.splits
    assert (tmp_path / "shards" / "manifest.json").is_file()
    examples = list(iter_examples(uri, "val"))
    image, _ = next(iter(make_dataset(uri, "val", batch_size=len(examples), dtype="uint8")))
    assert image.shape[0] == len(examples) == manifest.splits["val"].rows


def test_truncated_shard_is_refused_by_name(tmp_path: Path) -> None:
    manifest = prepare(synthetic(), out=str(tmp_path))
    shard = manifest.splits["train"].shards[0]
    path = tmp_path / shard.path
    path.write_bytes(path.read_bytes()[: shard.bytes // 2])
    with pytest.raises(ShardError, match=rf"{shard.path}: shard is \d+ bytes, the manifest says"):
        list(iter_examples(str(tmp_path), "train"))
    with pytest.raises(Exception, match=rf"{shard.path}: shard is \d+ bytes"):
        list(make_dataset(str(tmp_path), "train", batch_size=2))


def test_corrupted_shard_is_refused_by_name(tmp_path: Path) -> None:
    manifest = prepare(synthetic(), out=str(tmp_path))
    shard = manifest.splits["test"].shards[0]
    path = tmp_path / shard.path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ShardError, match=rf"{shard.path}: sha256 does not match the manifest"):
        list(iter_examples(str(tmp_path), "test"))


def test_missing_manifest_or_shard_is_named(tmp_path: Path) -> None:
    with pytest.raises(
        ShardError, match=r"manifest.json: no manifest \(run python -m data.prepare"
    ):
        read_manifest(str(tmp_path))
    manifest = prepare(synthetic(), out=str(tmp_path))
    (tmp_path / manifest.splits["val"].shards[0].path).unlink()
    with pytest.raises(ShardError, match=r"val-00000.arrow: shard is missing"):
        list(iter_examples(str(tmp_path), "val"))


def test_cli_builds_synthetic_shards_and_names_bad_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli"
    args = ["dataset=synthetic", "dataset.num_images=12", "dataset.height=16", f"out={out}"]
    assert prepare_main(args + ["dataset.width=16"]) == 0
    assert "train" in capsys.readouterr().out
    assert read_manifest(str(out)).image_shape == (16, 16)
    from data.config import ConfigError

    with pytest.raises(ConfigError, match="dataset.colour: unknown key under 'dataset'"):
        prepare_main(args + ["dataset.colour=red"])
    with pytest.raises(ConfigError, match="dataset=kaggle: unknown option .* neu-seg, severstal"):
        prepare_main(["dataset=kaggle", f"out={out}"])


def test_verify_reads_each_shard_once_then_trusts_an_unchanged_one(tmp_path: Path) -> None:
    from data.shards import verify_shards

    out, stamp = tmp_path / "shards", tmp_path / "verified.json"
    manifest = prepare(synthetic(num_images=60), out=str(out))
    count = sum(len(manifest.splits[s].shards) for s in ("train", "val"))
    first = verify_shards(manifest, ("train", "val"), stamp=stamp)
    assert (first.shards, first.hashed, first.stamped) == (count, count, 0)
    assert first.bytes_hashed == sum(
        shard.bytes for s in ("train", "val") for shard in manifest.splits[s].shards
    )
    again = verify_shards(manifest, ("train", "val"), stamp=stamp)
    assert (again.hashed, again.stamped, again.bytes_hashed) == (0, count, 0)
    # Without a stamp every shard is read again.
    assert verify_shards(manifest, ("train",), stamp=None).stamped == 0


def test_verify_names_a_shard_corrupted_after_it_was_stamped(tmp_path: Path) -> None:
    from data.shards import verify_shards

    out, stamp = tmp_path / "shards", tmp_path / "verified.json"
    manifest = prepare(synthetic(num_images=60), out=str(out))
    verify_shards(manifest, ("train", "val"), stamp=stamp)
    shard = manifest.splits["val"].shards[0]
    path = out / shard.path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))  # same size, new mtime: the stamp no longer vouches for it
    with pytest.raises(ShardError, match=rf"{shard.path}: sha256 does not match the manifest"):
        verify_shards(manifest, ("train", "val"), stamp=stamp)
    path.write_bytes(bytes(data[:-10]))
    with pytest.raises(ShardError, match=rf"{shard.path}: shard is \d+ bytes, the manifest says"):
        verify_shards(manifest, ("train", "val"), stamp=stamp)
    path.unlink()
    with pytest.raises(ShardError, match=rf"{shard.path}: shard is missing"):
        verify_shards(manifest, ("val",), stamp=stamp)


def test_shard_columns_reads_two_columns_without_the_pixels(tmp_path: Path) -> None:
    from data.shards import load_shard, shard_columns

    manifest = prepare(synthetic(), out=str(tmp_path), shard_bytes=4 * RECORD_BYTES)
    shard = manifest.splits["train"].shards[0]
    sizes = shard_columns(manifest, shard, ["height", "width"])
    assert sizes.column_names == ["height", "width"]
    whole = load_shard(manifest, shard)
    assert sizes.to_pylist() == whole.select(["height", "width"]).to_pylist()
    with pytest.raises(ShardError, match=rf"{shard.path}: no column depth"):
        shard_columns(manifest, shard, ["height", "depth"])
    (tmp_path / shard.path).unlink()
    with pytest.raises(ShardError, match=rf"{shard.path}: shard is missing"):
        shard_columns(manifest, shard, ["height"])
