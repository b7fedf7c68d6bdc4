"""Promotion: candidate choice, bad experiments, and (slow) a real promotion of tiny models."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import experiment_fixture
import numpy as np
import pytest
from cli_checks import python_env, run_python

from data.config import ConfigError
from search import promote
from search.promotion import postprocess


def test_unknown_experiment_lists_the_existing_ones(tmp_path: Path) -> None:
    experiment_fixture.write_leaderboard(
        tmp_path / "results" / "real_run", [experiment_fixture.trial_row("u1", "unet", 0.5)]
    )
    with pytest.raises(ConfigError) as error:
        promote.main(["experiment=missing_run", f"results_dir={tmp_path / 'results'}"])
    message = str(error.value)
    assert "experiment=missing_run" in message and "real_run" in message


def test_experiment_without_a_finished_trial_is_refused(tmp_path: Path) -> None:
    rows = [
        experiment_fixture.trial_row("u1", "unet", "", status="ERROR", ckpt=""),
        experiment_fixture.trial_row("u2", "unet", 0.4, status="RUNNING"),
    ]
    experiment_fixture.write_leaderboard(tmp_path / "results" / "broken", rows)
    with pytest.raises(ConfigError) as error:
        promote.main(["experiment=broken", f"results_dir={tmp_path / 'results'}"])
    message = str(error.value)
    assert "no finished trial" in message
    assert "leaderboard.csv" in message and "ERROR, RUNNING" in message


def test_bad_arguments_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="top_kk: unknown key; valid keys: .*top_k"):
        promote.main(["experiment=x", "top_kk=2"])
    with pytest.raises(ConfigError, match=r"top_k=two: expected a whole number \(int\)"):
        promote.main(["experiment=x", "top_k=two"])
    with pytest.raises(ConfigError, match="missing experiment="):
        promote.main([])


# --- a real promotion of tiny real models (slow: trains them once per session) ----------------


@pytest.fixture(scope="module")
def promoted(tmp_path_factory: pytest.TempPathFactory, neu_seg: Path) -> Path:
    return experiment_fixture.promoted_experiment(tmp_path_factory.getbasetemp(), neu_seg)


@pytest.mark.slow
def test_promotion_writes_final_with_test_scores_that_hold(promoted: Path) -> None:
    from data.reader import iter_examples
    from search.predict import load_predictor

    final = promoted / "final"
    metrics = json.loads((final / "metrics.json").read_text())
    names = [m["name"] for m in metrics["models"]]
    # top_k=2 plus the best resunet; the errored trial never appears.
    assert len(names) == 3 and {m["model"] for m in metrics["models"]} == {"unet", "resunet"}
    assert experiment_fixture.ERRORED_TRIAL not in json.dumps(metrics["models"])
    assert metrics["splits"] == {"val": 8, "test": 8}
    for name in names:
        for suffix in (".keras", ".json", ".md"):
            assert (final / "models" / f"{name}{suffix}").is_file()
        assert (
            "| class | threshold | min area (% of the image) | gate |"
            in (final / "models" / f"{name}.md").read_text()
        )
    assert (final / "ensemble.json").is_file() and (final / "overlays.npz").is_file()
    board = (final / "leaderboard.csv").read_text().splitlines()
    # header, the ensemble, four trials and the predict-nothing row
    assert board[1].startswith("ensemble,PROMOTED") and len(board) == 1 + 1 + 4 + 1
    assert sum(line.startswith("baseline,BASELINE,predict-nothing") for line in board) == 1
    # The promoted files alone reproduce the reported test score, computed independently.
    uri = metrics["shards"]
    examples = list(iter_examples(uri, "test"))
    images = np.stack([e.image for e in examples])[..., None]
    truth = np.stack([e.masks for e in examples]).astype(bool)
    best = next(m for m in metrics["models"] if m["name"] == metrics["best_single"])
    for path, entry in ((final / best["file"], best), (final, metrics["ensemble"])):
        predicted = load_predictor(path).masks(images)
        dice = experiment_fixture.kaggle_dice(truth, predicted)
        assert dice == pytest.approx(entry["test"]["tuned"]["kaggle_dice"], abs=1e-9)
    # Seconds by stage, with each model's post-processing tuning on its own.
    stages = metrics["stage_s"]
    assert {"splits", "predict", "tune+score models", "ensemble"} <= set(stages)
    assert {f"tune:{m['name']}" for m in metrics["models"]} <= set(stages)
    assert all(v >= 0 for v in stages.values())
    nothing = experiment_fixture.kaggle_dice(truth, np.zeros_like(truth))
    # Every test score carries its interval, its lift over predict-nothing (paired) and its
    # difference to the best single model; the best single model does not differ from itself.
    for entry in [*metrics["models"], metrics["ensemble"]]:
        for kind in ("raw", "tuned"):
            score = entry["test"][kind]
            low, high = score["interval95"]
            assert low <= score["kaggle_dice"] <= high
            lift = score["lift_over_nothing"]
            assert lift["value"] == pytest.approx(score["kaggle_dice"] - nothing, abs=1e-9)
            assert "vs_best_single" in score and "_image_scores" not in score
    itself = best["test"]["tuned"]["vs_best_single"]
    assert itself == {"value": 0.0, "interval95": [0.0, 0.0], "clear": False}
    gains = metrics["gains_on_test"]
    assert gains["ensemble_tuned"] == metrics["ensemble"]["test"]["tuned"]["kaggle_dice"]
    # The baseline is predicting nothing on the same test images, scored independently.
    nothing = experiment_fixture.kaggle_dice(truth, np.zeros_like(truth))
    assert metrics["baseline"]["test"]["kaggle_dice"] == pytest.approx(nothing, abs=1e-12)
    assert gains["baseline"] == metrics["baseline"]["test"]["kaggle_dice"]
    assert gains["best_single_raw_lift"] == pytest.approx(gains["best_single_raw"] - nothing)
    assert metrics["baseline"]["val"]["images"] == metrics["splits"]["val"]


@pytest.mark.slow
def test_promoted_models_carry_no_optimizer_state(promoted: Path) -> None:
    import models

    metrics = json.loads((promoted / "final" / "metrics.json").read_text())
    for entry in metrics["models"]:
        shipped = promoted / "final" / entry["file"]
        assert getattr(models.load_model(shipped), "optimizer", None) is None
        checkpoint = Path(entry["checkpoint"]) / "model.keras"
        # Adam keeps two slots per weight: the checkpoint is about three times the weights.
        assert shipped.stat().st_size < 0.6 * checkpoint.stat().st_size


def _assert_final_kept(experiment: Path, metrics_before: bytes) -> None:
    """The previous final/ is there, unchanged, and nothing else named final* is left."""
    assert (experiment / "final" / "metrics.json").read_bytes() == metrics_before
    assert sorted(p.name for p in experiment.iterdir() if p.name.startswith("final")) == ["final"]


@pytest.mark.slow
def test_a_checkpoint_that_fails_to_load_keeps_the_good_final(
    promoted: Path, tmp_path: Path
) -> None:
    copy = experiment_fixture.copy_experiment(promoted, tmp_path / "results" / "neu_copy")
    before = (copy / "final" / "metrics.json").read_bytes()
    broken = next((copy / "tune").glob("train_f00d1_00002_*/checkpoint_*/model.keras"))
    broken.write_bytes(broken.read_bytes()[:1000])  # a truncated upload, say
    with pytest.raises(ConfigError) as error:
        promote.main(["experiment=neu_copy", f"results_dir={tmp_path / 'results'}", "top_k=1"])
    message = str(error.value)
    assert "trial f00d1_00002 (resunet)" in message and str(broken) in message
    _assert_final_kept(copy, before)


@pytest.mark.slow
def test_shards_of_another_class_count_are_refused_naming_model_and_shards(
    promoted: Path, tmp_path: Path
) -> None:
    from data.config import compose
    from data.prepare import prepare

    copy = experiment_fixture.copy_experiment(promoted, tmp_path / "results" / "neu_copy")
    other = tmp_path / "synthetic-shards"  # 4 classes; the models predict NEU-Seg's 3
    cfg = compose("data.conf", "prepare", ["dataset=synthetic", "dataset.num_images=24"])
    prepare(cfg.dataset, out=str(other))
    experiment = json.loads((copy / "experiment.json").read_text())
    (copy / "experiment.json").write_text(json.dumps({**experiment, "shards": str(other)}))
    with pytest.raises(ConfigError, match=rf"predicts 3 classes but the shards {other} has 4"):
        promote.main(["experiment=neu_copy", f"results_dir={tmp_path / 'results'}", "top_k=1"])


@pytest.mark.slow
def test_the_promotion_driver_predicts_nothing_itself(promoted: Path, tmp_path: Path) -> None:
    """Prediction runs in one spawned child and tuning in worker processes: the driver holds
    no model, so its memory is the chunks it scores, whatever the image size."""
    copy = experiment_fixture.copy_experiment(promoted, tmp_path / "results" / "neu_driver")
    probe = (
        "import os, sys\n"
        "from search import promote\n"
        f"code = promote.main(['experiment=neu_driver', 'results_dir={tmp_path / 'results'}',"
        " 'top_k=1', 'workers=2'])\n"
        "print('pid:', os.getpid())\n"
        "sys.exit(code)\n"
    )
    done = run_python("-c", probe)
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads((copy / "final" / "metrics.json").read_text())
    peaks = metrics["peak_rss_mib"]
    # The tuning workers are NumPy-sized: neither TensorFlow nor a model is in them.
    assert 0 < peaks["tune_workers"] < min(peaks["driver"], peaks["predict"]) / 2, peaks
    assert peaks["tune_processes"] == 2, peaks
    driver_pid = int(done.stdout.split("pid:")[1].split()[0])
    children = {m["prediction"]["pid"] for m in metrics["models"]}
    assert len(children) == 1 and driver_pid not in children, (driver_pid, children)
    # What the child exported is what final/ ships: loadable, and it predicts.
    import models

    for entry in metrics["models"]:
        assert models.load_model(copy / "final" / entry["file"]).output_shape[-1] == 3


def _run_promote(
    experiment: Path, *argv: str, env: dict | None = None, preexec=None
) -> subprocess.CompletedProcess:
    """`python -m search.promote` on `experiment` in a fresh process."""
    base = [f"experiment={experiment.name}", f"results_dir={experiment.parent}", *argv]
    return run_python(
        "-m", "search.promote", *base, env=python_env(**(env or {})), preexec_fn=preexec
    )


def _promote_killed_at(point: str, experiment: Path) -> subprocess.CompletedProcess:
    return _run_promote(experiment, "top_k=1", env={"STEELSEG_FAILPOINT": point})


@pytest.mark.slow
def test_a_promotion_killed_mid_write_or_mid_swap_leaves_the_previous_final(
    promoted: Path, tmp_path: Path
) -> None:
    copy = experiment_fixture.copy_experiment(promoted, tmp_path / "results" / "neu_killed")
    before = (copy / "final" / "metrics.json").read_bytes()

    done = _promote_killed_at("promote.write", copy)  # SIGKILL while final.tmp-* is written
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    assert (copy / "final" / "metrics.json").read_bytes() == before
    assert list(copy.glob("final.tmp-*")), "the killed promotion wrote nothing aside"

    done = _promote_killed_at("promote.swap", copy)  # between the two renames of the swap
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    assert not (copy / "final").exists() and list(copy.glob("final.old-*"))
    # What the next command on the experiment does first, under its lock:
    restored = promote.recover_final(copy)
    assert any(line.startswith("restored") for line in restored)
    _assert_final_kept(copy, before)


@pytest.mark.slow
def test_a_promotion_on_a_full_disk_fails_with_one_line_and_keeps_final(
    promoted: Path, tmp_path: Path
) -> None:
    import resource

    copy = experiment_fixture.copy_experiment(promoted, tmp_path / "results" / "neu_full")
    before = (copy / "final" / "metrics.json").read_bytes()

    def full_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # no model file fits

    done = _run_promote(copy, preexec=full_disk)
    assert done.returncode == 1, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "File too large" in errors[0], done.stderr[-2000:]
    _assert_final_kept(copy, before)


def test_a_split_of_several_sizes_is_predicted_and_scored_as_its_images_one_by_one(
    tmp_path: Path,
) -> None:
    import keras
    from PIL import Image

    import models
    from data.datasets import folder_config
    from data.prepare import prepare
    from search.inference.loading import model_probabilities

    rng = np.random.default_rng(0)
    for folder in ("images", "masks"):
        (tmp_path / "src" / folder).mkdir(parents=True)
    for name, (height, width) in {"a": (40, 56), "b": (32, 36), "c": (40, 56)}.items():
        image = rng.integers(0, 255, (height, width), np.uint8)
        Image.fromarray(image).save(tmp_path / "src" / "images" / f"{name}.png")
        labels = (image > 200).astype(np.uint8)  # class 1 wherever the image is bright
        Image.fromarray(labels).save(tmp_path / "src" / "masks" / f"{name}.png")
    dataset = folder_config(tmp_path / "src", ["bright"], name="mixed")
    uri = str(tmp_path / "shards")
    prepare(dataset, out=uri)
    data = promote.load_split(uri, "train", limit=None)
    assert data.images.shape == (3, 40, 56) and sorted(data.sizes.tolist())[0] == [32, 36]
    keras.utils.set_random_seed(0)
    model = models.build_model(
        "unet", input_shape=(None, None, 1), num_classes=1, filters=2, depth=2, output_prior=0.5
    )
    probs = promote.predict_split(
        model, data, batch_size=2, flips=("none",), label="t", progress=False
    )
    assert probs.dtype == np.uint8  # levels: round(255 p)
    predicted = probs >= postprocess.cut(0.5)
    for i, (height, width) in enumerate(data.sizes.tolist()):
        alone = model_probabilities(model, data.images[i : i + 1, :height, :width, None])
        # Batched and alone may differ in the last float bits: at most one level apart.
        difference = probs[i, :height, :width].astype(int) - postprocess.quantise(alone[0])
        assert np.abs(difference).max() <= 1
        assert not probs[i, height:].any() and not probs[i, :, width:].any()  # padding: 0
        assert not data.masks[i, height:].any() and not data.masks[i, :, width:].any()
    # Scored padded, the split scores what its images score one by one.
    one_by_one = [
        promote.score(data.masks[i : i + 1, :h, :w], predicted[i : i + 1, :h, :w], ["bright"])
        for i, (h, w) in enumerate(data.sizes.tolist())
    ]
    padded = promote.score(data.masks, predicted, ["bright"])
    mean = np.mean([s["kaggle_dice"] for s in one_by_one])
    assert 0.0 < mean < 1.0
    np.testing.assert_allclose(padded["kaggle_dice"], mean, rtol=1e-12)
