"""Every command answers --help with its usage, groups/keys and defaults, and exits 0."""

from __future__ import annotations

import importlib

import pytest

from data.config import HelpRequested

# (module, a phrase its help must show): the phrase is a key or group with its default.
COMMANDS = [
    ("search.run", "space: deeplab, invresunet, paper, resunet, [unet]"),
    ("search.bench.trial", "scheduler: asha, [fifo]"),
    ("search.bench.efficiency", "searcher: [grid], optuna"),
    ("search.promote", "top_k=3"),
    ("search.predict", "model=... (required)"),
    ("search.report", "lock_stale_s=60.0"),
    ("search.score", "solution=... (required)"),
    ("search.bench.padding", "split='val'"),
    ("search.bench.sizes", "images=200"),
    ("data.prepare", "dataset: folder, neu-seg, severstal, severstal-sim, [synthetic]"),
    ("data.sim_images", "count=5506"),
    ("data.stats", "labels=None"),
    ("data.bench", "batch_size=8"),
    ("data.bench_verify", "simulate_gb=None"),
    ("search.bench.promote", "size='256x1600'"),
    ("models.params", "num_classes=4"),
    ("models.bench_step", "batches=[8, 16]"),
]


@pytest.mark.parametrize("module,phrase", COMMANDS)
def test_every_command_answers_help(module: str, phrase: str) -> None:
    main = importlib.import_module(module).main
    with pytest.raises(HelpRequested) as shown:  # run_cli prints it and exits 0
        main(["--help"])
    text = shown.value.text
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
        ("search.bench.trial", ["train.batch_size=-1"], "error: train.batch_size=-1: expected"),
        (
            "search.promote",
            ["experiment=nope", "results_dir=/nonexistent"],
            "error: experiment=nope",
        ),
        ("data.stats", ["json=maybe"], "error: json=maybe: expected true or false"),
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
