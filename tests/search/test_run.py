"""search.run: what the command does before and around the search (shards, resume, workers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_checks import one_error_line, run_python

from data.config import ConfigError
from data.shards import read_manifest
from search import run
from search.sweep import config, spaces

PROJECT = Path(__file__).resolve().parents[2]


def test_a_corrupted_shard_stops_the_driver_before_ray(tmp_path):
    results, shards = tmp_path / "results", tmp_path / "shards"
    args = [
        "space=unet",
        "experiment=corrupt",
        f"results_dir={results}",
        f"shards={shards}",
        "dataset.num_images=24",
        "dataset.height=32",
        "dataset.width=32",
    ]
    cfg = config.resolved_config(args)
    run.prepare_shards(cfg, results / "corrupt")  # prepared and verified: a clean start
    shard = read_manifest(str(shards)).splits["train"].shards[0]
    path = shards / shard.path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    done = run_python("-m", "search.run", *args, timeout=120)
    error = one_error_line(done)
    assert f"{shard.path}: sha256 does not match the manifest" in error
    assert "before any trial started" in error
    assert not (results / "corrupt" / "tune").exists()


def test_a_crop_larger_than_the_images_stops_the_driver_before_ray(tmp_path):
    results = tmp_path / "results"
    args = [
        "space=unet",
        "experiment=big-crop",
        f"results_dir={results}",
        f"shards={tmp_path / 'shards'}",
        "dataset.num_images=24",
        "dataset.height=32",
        "dataset.width=48",
        "train.crop=[40,40]",
    ]
    with pytest.raises(ConfigError, match=r"crop=\(40, 40\) is larger than the images .*32x48"):
        run.main(args)
    assert not (results / "big-crop" / "tune").exists()


def test_relative_shards_path_reaches_the_trials_absolute(tmp_path, monkeypatch):
    # Trials run in their own folders (and on other nodes): a relative shards= must not reach
    # them as given, or every trial fails with "no manifest".
    monkeypatch.chdir(tmp_path)
    cfg = spaces.to_container(
        config.load_config(["shards=rel/shards", "dataset.num_images=12", "dataset.height=32"])
    )
    uri, manifest = run.prepare_shards(cfg, tmp_path / "experiment")
    assert uri == str(tmp_path / "rel" / "shards")
    assert (tmp_path / "rel" / "shards" / "manifest.json").is_file()
    assert manifest.splits["train"].rows > 0


def test_resume_refuses_a_changed_search(tmp_path):
    folder = tmp_path / "results" / "mine"
    (folder / "tune").mkdir(parents=True)
    saved = config.resolved_config(["space=unet"])
    (folder / "experiment.json").write_text(json.dumps({"config": saved}))
    with pytest.raises(ConfigError, match="train differs from the experiment in .*mine"):
        run.main(["experiment=mine", "train.epochs=7", f"results_dir={tmp_path / 'results'}"])
    with pytest.raises(ConfigError, match="resume=never but .*tune exists"):
        run.main(["experiment=mine", "resume=never", f"results_dir={tmp_path / 'results'}"])


def test_workers_are_reused_unless_asha_stops_trials_mid_epoch():
    def reuse(*argv: str) -> bool:
        return run.reuse_actors(spaces.to_container(config.load_config(list(argv))))

    assert reuse() is True  # fifo: a trial's function returns before its worker is reused
    assert reuse("scheduler=asha") is False
    assert reuse("scheduler=asha", "reuse_actors=false") is False
    assert reuse("reuse_actors=false") is False


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(folder.iterdir())}


def test_shards_of_another_dataset_are_refused_and_left_untouched(tmp_path, severstal_sample):
    from data.datasets import severstal_config
    from data.prepare import prepare

    shards = tmp_path / "shards"
    prepare(severstal_config(severstal_sample), out=str(shards))
    before = _files(shards)
    args = ["space=unet", "dataset=synthetic", f"shards={shards}", f"results_dir={tmp_path}"]
    done = run_python("-m", "search.run", *args, "promote=false", timeout=120)
    error = one_error_line(done)
    assert f"{shards} holds shards of dataset=severstal (severstal source)" in error
    assert "dataset=synthetic was asked for" in error and "overwrite=true" in error
    assert _files(shards) == before and read_manifest(str(shards)).name == "severstal"


def test_shards_alone_search_the_dataset_their_manifest_names(tmp_path, severstal_sample, capsys):
    from data.datasets import severstal_config, split_config
    from data.prepare import prepare

    shards = tmp_path / "shards"
    split = split_config(seed=42, test_fraction=0.1, val_fraction=0.05, keep_clean=False)
    prepare(severstal_config(severstal_sample, split=split), out=str(shards))
    before = _files(shards)
    argv, held = run.dataset_of_shards(["space=unet", f"shards={shards}"])
    assert argv[0] == "dataset=severstal" and held == read_manifest(str(shards)).dataset
    # The dataset's own training defaults come with it (severstal.yaml: the paper's 20 epochs).
    assert config.resolved_config(argv)["train"]["epochs"] == 20
    # Run to the first check after the shards: the crop is refused, after the note.
    with pytest.raises(ConfigError, match="larger than the images"):
        run.main(
            ["space=unet", f"shards={shards}", f"results_dir={tmp_path}", "train.crop=[300,300]"]
        )
    assert f"shards={shards} holds dataset=severstal" in capsys.readouterr().out
    assert _files(shards) == before
    # A dataset on the command line is prepared as asked (here: refused, it is not what DIR holds).
    assert run.dataset_of_shards(["dataset=synthetic", f"shards={shards}"])[1] is None
