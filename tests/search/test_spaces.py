"""search.sweep.spaces: the paper's grids, the Optuna space, validation against the models."""

from __future__ import annotations

import optuna
import pytest

import models
from data.config import ConfigError
from search.sweep import config, spaces


def _space(name: str) -> dict:
    return spaces.to_container(config.load_config([f"space={name}"]))["space"]


@pytest.mark.parametrize(
    ("name", "count"), [("unet", 16), ("resunet", 8), ("invresunet", 4), ("deeplab", 8)]
)
def test_grid_sizes_follow_the_paper(name, count):
    points = spaces.grid_points(_space(name))
    assert len(points) == count
    assert len({tuple(sorted(p.items())) for p in points}) == count  # all distinct


def test_unet_grid_is_filters_by_activation_by_loss():
    points = spaces.grid_points(_space("unet"))
    assert {p["filters"] for p in points} == {8, 16, 32, 64}
    assert {p["activation"] for p in points} == {"relu", "leaky_relu"}
    assert {p["loss"] for p in points} == {"bce", "bce_dice"}


def test_paper_is_the_union_of_the_four():
    points = spaces.grid_points(_space("paper"))
    assert len(points) == 16 + 8 + 4 + 8
    assert {p["model"] for p in points} == {"unet", "resunet", "invresunet", "deeplabv3plus"}


def test_every_grid_point_is_a_valid_model_config():
    for point in spaces.grid_points(_space("paper")):
        models.resolve_hparams(point["model"], spaces.model_hparams(point))
        assert "loss" not in spaces.model_hparams(point)


def test_optuna_space_draws_valid_points_of_every_model():
    space = spaces.OptunaSpace(models=_space("paper")["models"])
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    seen = set()
    for _ in range(40):
        point = space(study.ask())["point"]
        seen.add(point["model"])
        models.resolve_hparams(point["model"], spaces.model_hparams(point))
        assert 0.0001 <= point["learning_rate"] <= 0.003
        if point["model"] == "deeplabv3plus":
            assert 0.1 <= point["alpha"] <= 0.75  # its range, not only the grid values
    assert seen == {"unet", "resunet", "invresunet", "deeplabv3plus"}


def test_a_model_may_have_its_own_epoch_budget():
    from search.sweep.spaces import grid_points, model_hparams, validate_space

    space = {
        "name": "mixed",
        "models": {
            "unet": {"grid": {"filters": [8]}, "fixed": {"epochs": 6}},
            "deeplabv3plus": {"grid": {"alpha": [0.25]}, "fixed": {}},
        },
    }
    validate_space(space, train={"epochs": 6})
    points = {p["model"]: p for p in grid_points(space)}
    assert points["unet"]["epochs"] == 6 and "epochs" not in points["deeplabv3plus"]
    # A budget is a training key: it never reaches build_model.
    assert "epochs" not in model_hparams(points["unet"])


def test_model_defaults_reach_every_model_that_takes_the_key_unless_the_space_sets_it():
    space = _space("paper")
    space["models"]["resunet"]["fixed"] = {"depth": 4}
    resolved = spaces.apply_model_defaults(space, {"depth": 2})
    depths = {(p["model"], p.get("depth")) for p in spaces.grid_points(resolved)}
    # deeplabv3plus has no depth; resunet's own fixed depth wins over the dataset's default.
    assert depths == {("unet", 2), ("resunet", 4), ("invresunet", 2), ("deeplabv3plus", None)}
    assert "depth" not in (space["models"]["unet"].get("fixed") or {})  # the input is untouched


def test_a_model_default_only_other_architectures_take_is_left_out_and_a_typo_refused():
    # The synthetic set's depth/batch_norm defaults must not stop space=deeplab.
    resolved = spaces.apply_model_defaults(_space("deeplab"), {"depth": 2, "batch_norm": True})
    assert resolved["models"]["deeplabv3plus"]["fixed"] == {}
    with pytest.raises(
        ConfigError, match="train.model_defaults: dpeth is a hyperparameter of no architecture"
    ):
        spaces.apply_model_defaults(_space("deeplab"), {"dpeth": 2})
    with pytest.raises(ConfigError, match="expected a mapping"):
        spaces.apply_model_defaults(_space("unet"), [2])


def test_the_synthetic_default_sizes_its_unets_through_model_defaults():
    cfg = config.resolved_config(["space=unet"])
    depths = {p["depth"] for p in spaces.grid_points(cfg["space"])}
    assert depths == {cfg["train"]["model_defaults"]["depth"]}
    neu = config.resolved_config(["space=unet", "dataset=neu-seg"])
    assert "depth" not in spaces.grid_points(neu["space"])[0]  # the paper's depth 5 stays
