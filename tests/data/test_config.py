"""data.config: Hydra-style command lines composed with one-line errors."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import pytest
from omegaconf import MISSING

from data.config import ConfigError, HelpRequested, compose, compose_schema, run_cli


@pytest.fixture
def conf_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    pkg = tmp_path / "demo_conf"
    (pkg / "dataset").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "config.yaml").write_text(
        "defaults:\n  - dataset: synthetic\n  - _self_\nout: null\nseed: 0\n"
    )
    (pkg / "dataset" / "synthetic.yaml").write_text("name: synthetic\nnum_images: 10\n")
    (pkg / "dataset" / "folder.yaml").write_text("name: folder\nroot: ???\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "demo_conf"
    sys.modules.pop("demo_conf", None)


def test_compose_applies_group_choice_and_overrides(conf_module: str) -> None:
    cfg = compose(conf_module, "config", ["dataset=folder", "dataset.root=/x", "seed=3"])
    assert cfg.dataset.name == "folder"
    assert cfg.dataset.root == "/x"
    assert cfg.seed == 3


def test_composed_config_is_read_only(conf_module: str) -> None:
    cfg = compose(conf_module, "config", [])
    with pytest.raises(Exception, match="read-only"):
        cfg.seed = 5


def test_unknown_group_option_lists_choices(conf_module: str) -> None:
    with pytest.raises(ConfigError) as err:
        compose(conf_module, "config", ["dataset=nope"])
    assert str(err.value) == (
        "dataset=nope: unknown option for 'dataset'; valid choices: folder, synthetic"
    )


def test_unknown_top_level_key_lists_valid_keys(conf_module: str) -> None:
    with pytest.raises(ConfigError, match=r"^foo: unknown key; valid keys: dataset, out, seed$"):
        compose(conf_module, "config", ["foo=1"])


def test_unknown_nested_key_lists_keys_of_the_chosen_option(conf_module: str) -> None:
    with pytest.raises(ConfigError) as err:
        compose(conf_module, "config", ["dataset=folder", "dataset.bogus=2"])
    assert str(err.value) == "dataset.bogus: unknown key under 'dataset'; valid keys: name, root"


def test_argument_without_equals_is_rejected(conf_module: str) -> None:
    with pytest.raises(ConfigError, match="'dataset' is not of the form"):
        compose(conf_module, "config", ["dataset"])


def test_run_cli_prints_one_line_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    def main(argv: list[str]) -> int:
        raise ConfigError(f"bad value {argv[0]!r}")

    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, ["x=1"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "error: bad value 'x=1'\n"


class Mode(StrEnum):
    fast = "fast"
    exact = "exact"


@dataclass
class Schema:
    name: str = MISSING
    count: int = 2
    rate: float = 0.5
    flag: bool = False
    mode: Mode = Mode.fast
    sizes: list[int] = field(default_factory=list)
    level: Mode | None = None


def test_a_schema_command_checks_types_choices_and_required_keys() -> None:
    got = compose_schema(Schema, ["name=a", "count=5", "flag=true", "mode=exact"], "usage")
    assert got == Schema(name="a", count=5, rate=0.5, flag=True, mode=Mode.exact, sizes=[])
    assert isinstance(got, Schema) and got.mode is Mode.exact
    bad = {
        "count=two": "count=two: expected a whole number (int)",
        "rate=x": "rate=x: expected a number (float)",
        "flag=maybe": "flag=maybe: expected true or false",
        "mode=slow": "mode=slow: expected one of fast, exact",
        "colour=red": "colour: unknown key; valid keys: name, count, rate, flag, mode, sizes, level",
        "sizes=8": "sizes=8: expected a list, e.g. sizes=[...] (quoted in a shell)",
        "loose": "argument 'loose' is not of the form key=value",
    }
    for arg, message in bad.items():
        with pytest.raises(ConfigError) as error:
            compose_schema(Schema, ["name=a", arg], "usage")
        assert str(error.value) == message
    with pytest.raises(ConfigError, match=r"^missing name=\.\.\. \(required\)$"):
        compose_schema(Schema, [], "usage")
    with pytest.raises(HelpRequested) as shown:
        compose_schema(Schema, ["--help"], "usage: tool")
    assert "name=... (required)  [str]" in shown.value.text
    assert "mode='fast'  [fast | exact]" in shown.value.text
    assert "level=None  [fast | exact | null]" in shown.value.text
