"""Every command answers --help with its usage, groups/keys and defaults, and exits 0."""

from __future__ import annotations

import importlib

import pytest

from data.config import HelpRequested

# (module, a phrase its help must show): the phrase is a key or group with its default.
COMMANDS = [
    ("search.run", "space: deeplab, invresunet, paper, resunet, [unet]"),
    ("search.bench", "scheduler: asha, [fifo]"),
    ("search.bench_efficiency", "searcher: [grid], optuna"),
    ("search.promote", "top_k=3"),
    ("search.predict", "model=... (required)"),
    ("search.report", "lock_stale_s=60.0"),
    ("search.bench_padding", "split='val'"),
    ("search.bench_sizes", "images=200"),
    ("data.prepare", "dataset: folder, neu-seg, severstal, [synthetic]"),
    ("data.stats", "--labels"),
    ("data.bench", "--batch-size"),
    ("data.bench_verify", "--simulate-gb"),
    ("models.params", "--num-classes"),
    ("models.bench_step", "--precision"),
]


@pytest.mark.parametrize("module,phrase", COMMANDS)
def test_every_command_answers_help(module: str, phrase: str, capsys) -> None:
    main = importlib.import_module(module).main
    try:
        main(["--help"])
    except HelpRequested as shown:  # the key=value and Hydra commands, printed by run_cli
        text = shown.text
    except SystemExit as done:  # argparse prints and exits 0
        assert done.code == 0
        text = capsys.readouterr().out
    else:
        pytest.fail(f"{module} --help ran the command")
    assert phrase in text
    assert text.strip().splitlines()[0]  # a usage line first


def test_cfg_prints_the_resolved_config_without_running() -> None:
    from search import run

    with pytest.raises(HelpRequested) as shown:
        run.main(["space=paper", "train.epochs=3", "--cfg"])
    text = shown.value.text
    assert "  epochs: 3" in text and "name: paper" in text
    assert "groups (" not in text  # the config alone


@pytest.mark.parametrize(
    "module,args,expected",
    [
        ("search.bench", ["train.batch_size=-1"], "error: train.batch_size=-1: expected"),
        (
            "search.promote",
            ["experiment=nope", "results_dir=/nonexistent"],
            "error: experiment=nope",
        ),
    ],
)
def test_a_bad_argument_is_the_only_line_on_stderr(module, args, expected) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(expected), lines
