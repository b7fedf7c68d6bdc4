"""search.run: every bad group, key or value fails with one line before Ray starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_checks import one_error_line, run_python

import models
from data.config import ConfigError
from search import run
from search.sweep import config, spaces

PROJECT = Path(__file__).resolve().parents[2]


def _fails(tmp_path: Path, *argv: str) -> str:
    """The ConfigError message of `search.run argv`; nothing may be written or started."""
    with pytest.raises(ConfigError) as info:
        run.main([*argv, f"results_dir={tmp_path / 'results'}"])
    assert not (tmp_path / "results").exists(), "an invalid config must not create outputs"
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["space=nope"], "valid choices: deeplab, invresunet, paper, resunet, unet"),
        (["scheduler=hyperband"], "valid choices: asha, fifo"),
        (["searcher=random"], "valid choices: grid, optuna"),
        (["dataset=bogus"], "valid choices: folder, neu-seg, severstal, severstal-sim, synthetic"),
        (["epochs=3"], "epochs: unknown key; valid keys: cluster,"),
        (["train.epoch=3"], "train.epoch: unknown key under 'train'; valid keys: backend, batch"),
        (["train.backend=torch"], "train.backend=torch: expected one of tensorflow, jax"),
        (["train.epochs=0"], "train.epochs=0: expected an integer >= 1"),
        (["train.epochs=abc"], "train.epochs=abc: expected a whole number (int)"),
        (["train.flip=sometimes"], "train.flip=sometimes: expected true or false"),
        (["train.precision=fp8"], "train.precision=fp8: expected one of auto, float32, mixed_flo"),
        (["+train.foo=1"], "train.foo: unknown key; valid keys: epochs, batch_size,"),
        (["train.optimizer=rmsprop"], "expected one of adam, adamw, sgd"),
        (["train.lr_schedule=step"], "train.lr_schedule=step: expected one of constant, cosine"),
        (["train.crop=[64]"], "train.crop=[64]: expected null or [height, width]"),
        (
            ["train.precision=float8"],
            "expected one of auto, float32, mixed_float16, mixed_bfloat16",
        ),
        (["space.models.unet.grid.activation=[relu,tanh]"], "space.models.unet.grid.activation"),
        (["space.models.unet.grid.filters=[0]"], "filters"),
        (["space.models.unet.grid.loss=[focal]"], "unknown loss; valid: bce, dice, bce_dice"),
        (["+space.models.unet.grid.dropout=[0.1]"], "unknown hyperparameter of unet; valid:"),
        (["+space.models.vgg={grid: {}}"], "space.models.vgg: unknown architecture; valid:"),
        (["+space.models.unet.fixed.epochs=6"], "expected an integer in 1..train.epochs=5"),
        (
            ["dataset=folder", "train.model_defaults={depth: 2}"],
            "train.model_defaults: 'depth' is not one of its keys (valid: none); add a new key "
            "with +train.model_defaults.depth=VALUE",
        ),
        (["+space.models.unet.fixed.epochs=0"], "epochs=0: expected an integer in 1..train"),
        (["+space.models.unet.ranges.filters={gauss: [1, 2]}"], "expected one of {choice"),
        (["cluster.gpus_per_trial=1.5"], "a fraction in (0, 1]"),
        (["cluster.cpus_per_trial=0"], "cluster.cpus_per_trial=0: expected a number > 0"),
        (["cluster.address=nowhere"], "expected null (start a local Ray), auto, host:port"),
        (["searcher=optuna", "searcher.storage=foo"], "expected null or a database URL"),
        (["scheduler=asha", "scheduler.grace_period=9"], "must be <= train.epochs=5"),
        (["scheduler=asha", "scheduler.reduction_factor=1"], "expected a number > 1"),
        (["resume=sometimes"], "resume=sometimes: expected one of auto, never"),
        (["experiment=../escape"], "use letters, digits"),
        (["promote=maybe"], "promote=maybe: expected true or false"),
        (["+space.models.unet.resources={gpu: 1}"], "resources: unknown key(s) ['gpu']"),
        (["+space.models.unet.resources={gpus: 2.5}"], "resources.gpus=2.5: expected 0, a"),
        (
            ["+space.models.deeplabv3plus.resources={by_filters: {8: {gpus: 1}}}", "space=paper"],
            "deeplabv3plus has no filters hyperparameter",
        ),
        (
            ["cluster.num_gpus=1", "+space.models.unet.resources={by_filters: {64: {gpus: 2}}}"],
            "a unet trial (depth=2 batch_norm=True filters=64 activation=relu loss=bce) asks for 2 "
            "gpus but this",
        ),
        (["reuse_actors=maybe"], "reuse_actors='maybe': expected auto, true or false"),
        (["scheduler=asha", "reuse_actors=true"], "reuse_actors=true with scheduler=asha"),
    ],
)
def test_bad_input_names_the_key_and_valid_values(tmp_path, argv, expected):
    assert expected in _fails(tmp_path, *argv)


def test_default_experiment_name_is_stable():
    cfg = spaces.to_container(config.load_config([]))
    assert config.experiment_name(cfg) == "unet-synthetic-grid-fifo"
    cfg = spaces.to_container(
        config.load_config(["space=paper", "scheduler=asha", "searcher=optuna"])
    )
    assert config.experiment_name(cfg) == "paper-synthetic-optuna-asha"


def test_paper_training_defaults_for_severstal():
    train = spaces.to_container(config.load_config(["dataset=severstal"]))["train"]
    assert (train["optimizer"], train["learning_rate"]) == ("adam", 0.001)
    assert (train["epochs"], train["batch_size"]) == (20, 16)


def test_cli_prints_one_error_line_and_exits_2(tmp_path):
    done = run_python("-m", "search.run", "space=unet", "train.batch_size=-1", timeout=120)
    assert one_error_line(done) == "error: train.batch_size=-1: expected an integer >= 1"


def test_embedded_default_is_the_unet_grid_on_small_synthetic_images():
    cfg = spaces.to_container(config.load_config([]))
    assert cfg["dataset"]["source"] == "synthetic"
    assert len(spaces.grid_points(cfg["space"])) == 16
    # Sized for the 10-minute budget on 2 cores: crops that the 5-level U-Nets need not pad.
    assert (cfg["dataset"]["height"], cfg["dataset"]["width"]) == (64, 64)
    assert all(side % 32 == 0 for side in cfg["train"]["crop"])
    # The override still reaches the dataset.
    cfg = spaces.to_container(config.load_config(["dataset.height=128"]))
    assert cfg["dataset"]["height"] == 128


@pytest.mark.parametrize("space", ["unet", "resunet", "invresunet", "deeplab", "paper"])
def test_every_space_runs_on_the_embedded_default(space: str) -> None:
    # The synthetic set's model_defaults (depth 2, batch norm) reach the models that take
    # them and never stop a space whose models do not (deeplabv3plus has neither).
    cfg = config.resolved_config([f"space={space}"])
    config.validate(cfg)
    for point in spaces.grid_points(cfg["space"]):
        takes = models.hparam_spec(point["model"])
        for key, value in cfg["train"]["model_defaults"].items():
            assert point.get(key) == (value if key in takes else None), (space, point)


def test_a_model_is_dropped_from_a_space_with_hydras_delete_syntax():
    cfg = spaces.to_container(
        config.load_config(["space=paper", "~space.models.resunet", "~space.models.invresunet"])
    )
    config.validate(cfg)
    models = {p["model"] for p in spaces.grid_points(cfg["space"])}
    assert models == {"unet", "deeplabv3plus"}
    assert len(spaces.grid_points(cfg["space"])) == 16 + 8
    with pytest.raises(ConfigError, match="space.models.nope' does not exist"):
        config.load_config(["~space.models.nope"])


def test_cluster_address_with_nothing_to_join_stops_before_the_shards(tmp_path, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / "no-ray"))
    message = _fails(tmp_path, "cluster=address")
    assert message.startswith("cluster.address=auto: no Ray cluster to join")
    assert "ray start --head" in message and "cluster=local" in message
    # A named address where nothing listens (port 9 on this machine: discard, closed here).
    message = _fails(tmp_path, "cluster=address", "cluster.address=127.0.0.1:9")
    assert "nothing answers at 127.0.0.1:9" in message
    # The address file `ray start --head` leaves, pointing at a dead head.
    address_file = tmp_path / "stale" / "ray" / "ray_current_cluster"
    address_file.parent.mkdir(parents=True)
    address_file.write_text("127.0.0.1:9\n")
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / "stale"))
    assert "nothing answers at 127.0.0.1:9" in _fails(tmp_path, "cluster=address")


def test_a_trial_takes_its_models_and_its_filters_share() -> None:
    from search.sweep.spaces import trial_share

    models = {
        "unet": {"resources": {"gpus": 0.25, "by_filters": {64: {"gpus": 1, "cpus": 8}}}},
        "resunet": {},
    }
    assert trial_share({"model": "unet", "filters": 8}, models, cpus=4, gpus=0.5) == (4, 0.25)
    assert trial_share({"model": "unet", "filters": 64}, models, cpus=4, gpus=0.5) == (8, 1)
    assert trial_share({"model": "resunet", "filters": 64}, models, cpus=4, gpus=0.5) == (4, 0.5)


def test_the_smoke_preset_sizes_a_tiny_synthetic_search_and_refuses_other_datasets() -> None:
    cfg = config.resolved_config(["preset=smoke", "train.epochs=3"])
    assert cfg["dataset"]["name"] == "synthetic" and cfg["dataset"]["num_images"] == 40
    assert (cfg["train"]["limit_train"], cfg["train"]["crop"]) == (8, [32, 32])
    assert cfg["train"]["epochs"] == 3  # a key=value still overrides the preset
    assert cfg["smoke"] is True and cfg["console_interval_s"] == 0
    config.validate(cfg)
    assert config.resolved_config([])["smoke"] is False
    with pytest.raises(ConfigError, match="preset=smoke sizes the synthetic dataset.*neu-seg"):
        config.validate(config.resolved_config(["preset=smoke", "dataset=neu-seg"]))


def test_the_precision_choices_are_the_models_and_reading_a_config_imports_no_keras() -> None:
    import subprocess
    import sys

    import models
    from search.sweep import config

    assert config.PRECISION_CHOICES == models.PRECISION_CHOICES
    code = "import sys, search.sweep.config; print('keras' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
