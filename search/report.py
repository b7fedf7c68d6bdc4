"""The leaderboard report: one self-contained static HTML page per experiment.

    python -m search.report experiment=NAME [results_dir=results]

It reads what the search and the promotion wrote:
- `results/NAME/leaderboard.csv` and `experiment.json` (the search),
- `results/NAME/tune/<trial>/progress.csv` (or `result.json`): per-epoch metrics (Ray Tune),
- `results/NAME/final/metrics.json` and `final/overlays.npz` (`search.promote`),
and writes `results/NAME/report.html`. Plots are PNGs from matplotlib's Agg backend embedded
as base64; the only script is a few lines that sort the leaderboard table. Nothing is fetched
when the page is opened, so it can be mailed or committed as is.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from data.config import ConfigError, run_cli
from search.leaderboard import BASELINE_STATUS
from search.predict import parse_overrides
from search.promote import hparam_columns, load_leaderboard, resolve_experiment

__all__ = ["build_report", "learning_curves", "main", "write_report"]

# Per-class overlay colours (RGB), colour-blind friendly (Okabe-Ito).
CLASS_COLOURS = [(230, 159, 0), (86, 180, 233), (0, 158, 115), (204, 121, 167), (213, 94, 0)]

SORT_SCRIPT = """
function sortTable(table, col, numeric, descending) {
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  const key = r => {
    const text = r.cells[col].dataset.value ?? r.cells[col].textContent;
    if (!numeric) return text;
    const v = parseFloat(text);
    return Number.isNaN(v) ? -Infinity : v;
  };
  rows.sort((a, b) => {
    const x = key(a), y = key(b);
    const order = x < y ? -1 : x > y ? 1 : 0;
    return descending ? -order : order;
  });
  rows.forEach(r => body.appendChild(r));
  table.dataset.sortedBy = table.tHead.rows[0].cells[col].textContent;
  table.dataset.sortedDescending = String(descending);
}
document.querySelectorAll("table.sortable").forEach(table => {
  const heads = Array.from(table.tHead.rows[0].cells);
  heads.forEach((th, col) => {
    th.addEventListener("click", () => {
      const descending = table.dataset.sortedBy === th.textContent
        ? table.dataset.sortedDescending !== "true" : th.dataset.numeric === "1";
      sortTable(table, col, th.dataset.numeric === "1", descending);
    });
  });
  const initial = heads.findIndex(th => th.dataset.initialSort === "1");
  if (initial >= 0) sortTable(table, initial, true, true);
});
"""

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 1200px; color: #222; }
h1 { margin-bottom: 0.2rem; } .sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; }
th { background: #f0f0f0; cursor: default; } table.sortable th { cursor: pointer; }
td.text, th.text { text-align: left; }
.scores td.big { font-size: 1.3rem; font-weight: 600; }
.wrap { overflow-x: auto; } img.plot { max-width: 100%; border: 1px solid #eee; }
.note { color: #a60; } tr.promoted td { background: #eef7ee; }
tr.baseline td { background: #e8e8e8; font-style: italic; } .scores td.lift { color: #265; }
"""


# --- inputs --------------------------------------------------------------------------------------


def learning_curves(experiment_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """{trial_id: [per-epoch result, ...]} from every trial folder under tune/."""
    import pandas as pd

    curves: dict[str, list[dict[str, Any]]] = {}
    tune_dir = experiment_dir / "tune"
    if not tune_dir.is_dir():
        return curves
    for trial_dir in sorted(p for p in tune_dir.iterdir() if p.is_dir()):
        progress, results = trial_dir / "progress.csv", trial_dir / "result.json"
        records: list[dict[str, Any]] = []
        if progress.is_file() and progress.stat().st_size > 0:
            try:
                records = pd.read_csv(progress).to_dict(orient="records")
            except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
                raise ValueError(f"{progress}: unreadable progress file ({exc})") from exc
        elif results.is_file():
            for line, text in enumerate(results.read_text().splitlines(), start=1):
                if text.strip():
                    try:
                        records.append(json.loads(text))
                    except json.JSONDecodeError as exc:
                        raise ValueError(f"{results} line {line}: not JSON ({exc})") from exc
        if records:
            trial_id = str(records[0].get("trial_id") or trial_dir.name)
            curves[trial_id] = records
    return curves


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc


# --- plots ---------------------------------------------------------------------------------------


def _figure(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(width, height), dpi=100)


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img class="plot" alt="plot" src="data:image/png;base64,{encoded}">'


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def plot_learning_curves(
    curves: Mapping[str, Sequence[Mapping[str, Any]]], models: Mapping[str, str]
) -> str:
    """Per architecture: loss and Kaggle Dice per epoch, train solid and validation dashed."""
    from matplotlib.ticker import MaxNLocator

    archs = sorted({models.get(t, "?") for t in curves})
    fig = _figure(12, 3.2 * len(archs))
    for row, arch in enumerate(archs):
        loss_ax = fig.add_subplot(len(archs), 2, 2 * row + 1)
        dice_ax = fig.add_subplot(len(archs), 2, 2 * row + 2)
        trials = [t for t in curves if models.get(t, "?") == arch]
        for i, trial in enumerate(trials):
            colour = f"C{i % 10}"
            records = curves[trial]
            epochs = [
                _number(r.get("epoch", r.get("training_iteration", k + 1)))
                for k, r in enumerate(records)
            ]
            for ax, key in ((loss_ax, "loss"), (dice_ax, "kaggle_dice")):
                for prefix, style in (("", "-"), ("val_", "--")):
                    ys = [_number(r.get(prefix + key)) for r in records]
                    if any(y is not None for y in ys):
                        label = f"{trial} {'val' if prefix else 'train'}"
                        ax.plot(epochs, ys, style, color=colour, marker=".", label=label)
        loss_ax.set_title(f"{arch}: loss")
        dice_ax.set_title(f"{arch}: Kaggle Dice")
        for ax in (loss_ax, dice_ax):
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
        if len(trials) <= 8:
            dice_ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return _png(fig)


def plot_hparams(rows: Sequence[Mapping[str, Any]], hparams: Sequence[str]) -> str:
    """Validation Kaggle Dice against each hyperparameter, one point per trial, by architecture."""
    useful = [h for h in hparams if len({str(r.get(h)) for r in rows}) > 1] or list(hparams)
    if not useful:
        return '<p class="note">The leaderboard has no hyperparameter columns.</p>'
    cols = min(3, len(useful))
    nrows = math.ceil(len(useful) / cols)
    fig = _figure(4.2 * cols, 3.2 * nrows)
    archs = sorted({str(r.get("model")) for r in rows})
    rng = np.random.default_rng(0)
    for k, name in enumerate(useful):
        ax = fig.add_subplot(nrows, cols, k + 1)
        values = [r.get(name) for r in rows]
        numeric = all(_number(v) is not None for v in values if v is not None)
        categories = sorted({str(v) for v in values}) if not numeric else []
        for a, arch in enumerate(archs):
            points = [
                (r.get(name), _number(r.get("val_kaggle_dice")))
                for r in rows
                if str(r.get("model")) == arch and _number(r.get("val_kaggle_dice")) is not None
            ]
            if not points:
                continue
            if numeric:
                xs = [_number(p[0]) for p in points]
            else:
                xs = [categories.index(str(p[0])) + rng.uniform(-0.12, 0.12) for p in points]
            ax.scatter(xs, [p[1] for p in points], color=f"C{a}", label=arch, alpha=0.8)
        if categories:
            ax.set_xticks(range(len(categories)), categories)
        else:
            positive = [_number(v) for v in values if _number(v) and _number(v) > 0]
            if positive and max(positive) / min(positive) >= 20:
                ax.set_xscale("log")
        ax.set_xlabel(name)
        ax.set_ylabel("val Kaggle Dice")
        ax.grid(alpha=0.3)
    fig.axes[0].legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def plot_per_class(metrics: Mapping[str, Any]) -> str:
    """Grouped bars: test Dice per class (tuned post-processing), every promoted model + ensemble."""
    classes = list(metrics["class_names"])
    entries = [(m["name"], m["test"]["tuned"]["per_class"]) for m in metrics["models"]]
    entries.append(("ensemble", metrics["ensemble"]["test"]["tuned"]["per_class"]))
    fig = _figure(max(6, 1.6 * len(classes) * max(1, len(entries) / 3)), 3.6)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(entries)
    for i, (name, per_class) in enumerate(entries):
        xs = np.arange(len(classes)) + (i - (len(entries) - 1) / 2) * width
        colour = "black" if name == "ensemble" else f"C{i}"
        ax.bar(xs, [per_class[c] for c in classes], width, label=name, color=colour)
    ax.set_xticks(range(len(classes)), classes)
    ax.set_ylabel("test Dice (tuned)")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def _tint(image: np.ndarray, masks: np.ndarray) -> np.ndarray:
    rgb = np.repeat(image[..., None], 3, axis=2).astype(np.float32)
    for c in range(masks.shape[-1]):
        colour = np.asarray(CLASS_COLOURS[c % len(CLASS_COLOURS)], np.float32)
        m = masks[..., c]
        rgb[m] = 0.45 * rgb[m] + 0.55 * colour
    return rgb.astype(np.uint8)


def _present(masks: np.ndarray, class_names: Sequence[str]) -> str:
    """Names of the classes with any pixel in (H, W, C) masks, so each class is read by name."""
    names = [n for c, n in enumerate(class_names) if masks[..., c].any()]
    return ", ".join(names) or "no defect"


def _image_title(overlays: Mapping[str, np.ndarray], i: int) -> str:
    if "image_id" in overlays:
        return str(overlays["image_id"][i])
    return f"test image #{int(overlays['index'][i])}"


def plot_overlays(overlays: Mapping[str, np.ndarray], class_names: Sequence[str]) -> str:
    """Rows of test images: the image, ground truth and ensemble prediction, tinted per class."""
    from matplotlib.patches import Patch

    images, truth, predicted = overlays["image"], overlays["truth"], overlays["predicted"]
    count = images.shape[0]
    aspect = images.shape[2] / images.shape[1]
    fig = _figure(min(16, 3 * 3 * max(1, aspect / 1.5)), 2.6 * count / max(1, aspect / 1.5))
    for i in range(count):
        panels = (
            (images[i], _image_title(overlays, i)),
            (_tint(images[i], truth[i]), f"ground truth: {_present(truth[i], class_names)}"),
            (_tint(images[i], predicted[i]), f"ensemble: {_present(predicted[i], class_names)}"),
        )
        for j, (pixels, title) in enumerate(panels):
            ax = fig.add_subplot(count, 3, 3 * i + j + 1)
            ax.imshow(pixels, cmap="gray" if pixels.ndim == 2 else None, vmin=0, vmax=255)
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    handles = [
        Patch(color=np.asarray(CLASS_COLOURS[c % len(CLASS_COLOURS)]) / 255, label=name)
        for c, name in enumerate(class_names)
    ]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=9)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return _png(fig)


def plot_cost(rows: Sequence[Mapping[str, Any]]) -> str:
    """Wall and device seconds of every trial."""
    names = [str(r["trial_id"]) for r in rows]
    wall = [_number(r.get("wall_s")) or 0.0 for r in rows]
    device = [_number(r.get("device_s")) or 0.0 for r in rows]
    fig = _figure(max(6, 0.45 * len(rows) + 2), 3.4)
    ax = fig.add_subplot(1, 1, 1)
    xs = np.arange(len(rows))
    ax.bar(xs - 0.2, wall, 0.4, label="wall s")
    ax.bar(xs + 0.2, device, 0.4, label="device s")
    ax.set_xticks(xs, names, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("seconds")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _png(fig)


# --- HTML ----------------------------------------------------------------------------------------


def _cell(value: Any, kind: str = "score") -> str:
    """One table cell; `kind` is how its column's numbers read (see `_column_kinds`)."""
    number = _number(value) if not isinstance(value, bool) else None
    if number is not None and kind == "integer":
        return f'<td data-value="{number}">{int(number)}</td>'
    if number is not None and not isinstance(value, str | int):
        text = f"{number:.4f}" if kind == "score" else f"{number:.4f}".rstrip("0").rstrip(".")
        return f'<td data-value="{number}">{text}</td>'
    if number is not None:
        return f'<td data-value="{number}">{html.escape(str(value))}</td>'
    text = "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    return f'<td class="text">{html.escape(text)}</td>'


LEADERBOARD_HIDDEN = {"checkpoint"}


def _head(column: str, numeric: bool) -> str:
    attributes = f'data-numeric="{int(numeric)}"'
    if column == "val_kaggle_dice":
        attributes += ' data-initial-sort="1"'  # best trial first when the page opens
    if not numeric:
        attributes += ' class="text"'
    return f"<th {attributes}>{html.escape(column)}</th>"


def _dataset_label(experiment: Mapping[str, Any]) -> str:
    """The dataset's name, at the top of experiment.json or inside its resolved config."""
    for holder in (experiment, experiment.get("config") or {}):
        dataset = holder.get("dataset", "") if isinstance(holder, Mapping) else ""
        if isinstance(dataset, Mapping):
            dataset = dataset.get("name", "")
        if dataset:
            return str(dataset)
    return "(not recorded in experiment.json)"


def _column_kinds(rows: Sequence[Mapping[str, Any]], numeric: set[str]) -> dict[str, str]:
    """integer (filters, epochs, params: whole numbers, even when a CSV column holding blanks
    was read as floats), score (Dice and loss: always four decimals) or number (the rest)."""
    kinds = {}
    for column in numeric:
        values = [_number(r.get(column)) for r in rows]
        values = [v for v in values if v is not None]
        if "dice" in column or "loss" in column:
            kinds[column] = "score"
        elif values and all(float(v).is_integer() for v in values):
            kinds[column] = "integer"
        else:
            kinds[column] = "number"
    return kinds


def _row_start(row: Mapping[str, Any], promoted: set[str]) -> str:
    if row.get("status") == BASELINE_STATUS:
        return '<tr class="baseline">'
    return '<tr class="promoted">' if str(row.get("trial_id")) in promoted else "<tr>"


def baseline_note(rows: Sequence[Mapping[str, Any]], experiment: Mapping[str, Any]) -> str:
    """One line: the predict-nothing score on the search's validation images, and the lift."""
    baseline = experiment.get("baseline")
    if not baseline:
        return (
            '<p class="note" id="baseline">This search recorded no predict-nothing baseline '
            "(experiment.json predates it): rerun search.run to add it.</p>"
        )
    scores = [_number(r.get("val_kaggle_dice")) for r in rows]
    scores = [v for v in scores if v is not None]
    text = (
        f'<p id="baseline">Predicting no defect scores <b>{baseline["kaggle_dice"]:.4f}</b> on '
        f"the {baseline['images']} {html.escape(str(baseline['split']))} images every trial "
        "validated on (the grey row below)"
    )
    if scores:
        lift = max(scores) - float(baseline["kaggle_dice"])
        above = sum(1 for v in scores if v > float(baseline["kaggle_dice"]))
        text += (
            f"; the best trial scores {max(scores):.4f} ({lift:+.4f}), and {above} of "
            f"{len(scores)} trials beat it"
        )
    return text + ".</p>"


def leaderboard_table(rows: Sequence[Mapping[str, Any]], promoted: set[str]) -> str:
    columns = [c for c in rows[0] if c not in LEADERBOARD_HIDDEN] if rows else []
    numeric = {c for c in columns if any(_number(r.get(c)) is not None for r in rows)}
    numeric -= {"trial_id", "status", "model", "error"}
    heads = "".join(_head(c, c in numeric) for c in columns)
    kinds = _column_kinds(rows, numeric)
    body = "\n".join(
        _row_start(r, promoted)
        + "".join(_cell(r.get(c), kinds.get(c, "score")) for c in columns)
        + "</tr>"
        for r in rows
    )
    return (
        f'<div class="wrap"><table id="leaderboard" class="sortable"><thead><tr>{heads}</tr>'
        f"</thead><tbody>\n{body}\n</tbody></table></div>"
    )


def scores_section(metrics: Mapping[str, Any] | None) -> str:
    if metrics is None:
        return (
            '<p class="note" id="scores">Not promoted yet: run '
            "<code>python -m search.promote experiment=NAME</code> for test scores, the tuned "
            "post-processing and the ensemble.</p>"
        )
    gains = metrics["gains_on_test"]
    members = ", ".join(f"{m['name']} ×{m['weight']:.2f}" for m in metrics["ensemble"]["members"])
    rows = [
        (
            "best single model, raw (threshold 0.5)",
            metrics["best_single"],
            gains["best_single_raw"],
        ),
        (
            "best single model, tuned post-processing",
            metrics["best_single"],
            gains["best_single_tuned"],
        ),
        ("ensemble, raw", members, gains["ensemble_raw"]),
        ("ensemble, tuned post-processing", members, gains["ensemble_tuned"]),
    ]
    baseline = gains.get("baseline")
    if baseline is not None:
        rows.append(("predict nothing (the baseline)", "no model", baseline))
    body = "".join(
        f'<tr><td class="text">{html.escape(what)}</td><td class="text">{html.escape(who)}</td>'
        f'<td class="big">{score:.4f}</td>'
        + (f'<td class="lift">{score - baseline:+.4f}</td>' if baseline is not None else "")
        + "</tr>"
        for what, who, score in rows
    )
    lift_head = "<th>lift over predict-nothing</th>" if baseline is not None else ""
    return (
        '<table class="scores" id="scores"><thead><tr><th class="text">test split '
        f'({metrics["splits"]["test"]} images)</th><th class="text">model</th>'
        f"<th>Kaggle Dice</th>{lift_head}</tr></thead><tbody>{body}</tbody></table>"
        f"<p>Post-processing gained {gains['postprocess_gain']:+.4f} on the best single model; "
        f"the ensemble gained {gains['ensemble_gain_over_best_single_tuned']:+.4f} over it "
        f"(both tuned), {gains['total_gain_over_best_single_raw']:+.4f} in all. "
        "Everything was chosen on the validation split; these are test numbers.</p>"
    )


def promoted_table(metrics: Mapping[str, Any]) -> str:
    classes = list(metrics["class_names"])
    heads = "".join(f"<th>{html.escape(c)}</th>" for c in classes)
    lines = []
    entries = [*metrics["models"], {"name": "ensemble", **metrics["ensemble"]}]
    for m in entries:
        post = {e["name"]: e for e in m["postprocess"]["classes"]}
        cells = "".join(
            f"<td>{m['test']['tuned']['per_class'][c]:.4f}<br><small>t={post[c]['threshold']:.2f} "
            f"a={post[c]['min_area']} g={post[c]['gate'] or 'off'}</small></td>"
            for c in classes
        )
        lines.append(
            f'<tr><td class="text">{html.escape(m["name"])}</td>'
            f"<td>{m['test']['raw']['kaggle_dice']:.4f}</td>"
            f"<td>{m['test']['tuned']['kaggle_dice']:.4f}</td>{cells}</tr>"
        )
    return (
        '<table id="promoted"><thead><tr><th class="text">model</th><th>test raw</th>'
        f"<th>test tuned</th>{heads}</tr></thead><tbody>{''.join(lines)}</tbody></table>"
    )


def cost_section(rows: Sequence[Mapping[str, Any]], metrics: Mapping[str, Any] | None) -> str:
    wall = sum(_number(r.get("wall_s")) or 0.0 for r in rows)
    device = sum(_number(r.get("device_s")) or 0.0 for r in rows)
    promotion = metrics.get("promotion_s") if metrics else None
    text = (
        f"<p id='cost-total'>Whole search: {len(rows)} trials, {wall:,.0f} s of trial wall time "
        f"({wall / 3600:.2f} h) and {device:,.0f} s of device time ({device / 3600:.2f} h)"
    )
    if promotion is not None:
        text += f"; promotion took {promotion:,.0f} s"
    return text + ".</p>" + (plot_cost(rows) if rows else "")


def build_report(experiment_dir: Path) -> str:
    """The report's HTML for an experiment folder."""
    experiment_dir = Path(experiment_dir)
    board = load_leaderboard(experiment_dir)  # the trials and the baseline row
    rows = [r for r in board if r.get("status") != BASELINE_STATUS]
    experiment = _read_json(experiment_dir / "experiment.json") or {}
    metrics = _read_json(experiment_dir / "final" / "metrics.json")
    curves = learning_curves(experiment_dir)
    models = {str(r["trial_id"]): str(r["model"]) for r in rows}
    hparams = hparam_columns(rows)
    promoted = {m["trial_id"] for m in metrics["models"]} if metrics else set()
    sections = [
        f"<h1>Experiment {html.escape(experiment_dir.name)}</h1>",
        f'<p class="sub">{len(rows)} trials · dataset {html.escape(_dataset_label(experiment))}'
        f" · report written {datetime.now(UTC).isoformat(timespec='seconds')}</p>",
        "<h2>Final scores</h2>",
        scores_section(metrics),
        "<h2>Leaderboard</h2>",
        baseline_note(rows, experiment),
        "<p>Click a column to sort. Promoted trials are green.</p>",
        leaderboard_table(board, promoted),
        "<h2>Learning curves</h2>",
        plot_learning_curves(curves, models)
        if curves
        else '<p class="note">No per-epoch results under tune/.</p>',
        "<h2>Validation Dice against each hyperparameter</h2>",
        plot_hparams(rows, hparams),
    ]
    if metrics:
        sections += [
            "<h2>Promoted models and the ensemble</h2>",
            "<p>Test Dice per class with the tuned post-processing (t = threshold, "
            "a = minimum area in pixels, g = image gate).</p>",
            promoted_table(metrics),
            plot_per_class(metrics),
        ]
        overlay_file = experiment_dir / "final" / "overlays.npz"
        if overlay_file.is_file():
            with np.load(overlay_file) as overlays:
                sections += [
                    "<h2>Predictions on test images</h2>",
                    plot_overlays(dict(overlays), metrics["class_names"]),
                ]
    sections += ["<h2>Cost</h2>", cost_section(rows, metrics)]
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(experiment_dir.name)}: leaderboard report</title>"
        f"<style>{STYLE}</style></head><body>\n{body}\n<script>{SORT_SCRIPT}</script>"
        "</body></html>\n"
    )


def write_report(experiment_dir: Path) -> Path:
    out = Path(experiment_dir) / "report.html"
    tmp = out.with_name(".report.html.tmp")
    tmp.write_text(build_report(experiment_dir), encoding="utf-8")
    tmp.replace(out)
    return out


DEFAULTS: dict[str, Any] = {"experiment": "", "results_dir": "results", "lock_stale_s": 60.0}


def main(argv: Sequence[str]) -> int:
    args = parse_overrides(argv, DEFAULTS, required=("experiment",))
    experiment_dir = resolve_experiment(args["experiment"], args["results_dir"])
    from search.lock import ExperimentLock

    try:
        with ExperimentLock(
            experiment_dir, command="search.report", stale_after_s=args["lock_stale_s"]
        ):
            out = write_report(experiment_dir)
    except (ValueError, RuntimeError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(str(exc)) from exc
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    run_cli(main)
