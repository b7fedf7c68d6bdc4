"""The report's figures: matplotlib (Agg backend) drawings returned as embedded PNG <img> tags,
each with an alt text that says what it shows."""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from search.records import METRIC
from search.report.hparams import Axis, _hparam_value, _shown, trial_labels
from search.report.values import _number

# Per-class overlay colours (RGB), colour-blind friendly (Okabe-Ito).
CLASS_COLOURS = [(230, 159, 0), (86, 180, 233), (0, 158, 115), (204, 121, 167), (213, 94, 0)]


def _figure(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(width, height), dpi=100)


def _png(fig, alt: str) -> str:
    """The figure as an embedded PNG; `alt` says what it shows, for readers and for tests."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img class="plot" alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


# Per architecture, only this many trials (the best) get a colour and a legend entry.
CURVE_LEGEND_TRIALS = 10


def plot_learning_curves(
    curves: Mapping[str, Sequence[Mapping[str, Any]]],
    rows: Sequence[Mapping[str, Any]],
    *,
    baseline: float | None,
) -> str:
    """Per architecture: loss and Kaggle Dice per epoch, train solid and validation dashed,
    each trial named by its hyperparameters; the predict-nothing score as a dotted line."""
    from matplotlib.ticker import MaxNLocator

    models = {str(r["trial_id"]): str(r.get("model", "?")) for r in rows}
    labels = trial_labels(rows)
    scores = {str(r["trial_id"]): _number(r.get(METRIC)) or -1.0 for r in rows}
    archs = sorted({models.get(t, "?") for t in curves})
    fig = _figure(13, 3.2 * len(archs))
    for row, arch in enumerate(archs):
        loss_ax = fig.add_subplot(len(archs), 2, 2 * row + 1)
        dice_ax = fig.add_subplot(len(archs), 2, 2 * row + 2)
        trials = sorted(
            (t for t in curves if models.get(t, "?") == arch), key=lambda t: -scores.get(t, -1.0)
        )
        for i, trial in enumerate(trials):
            named = i < CURVE_LEGEND_TRIALS
            colour = f"C{i % 10}" if named else "0.75"
            records = curves[trial]
            epochs = [
                _number(r.get("epoch", r.get("training_iteration", k + 1)))
                for k, r in enumerate(records)
            ]
            for ax, key in ((loss_ax, "loss"), (dice_ax, "kaggle_dice")):
                for prefix, style in (("", "-"), ("val_", "--")):
                    ys = [_number(r.get(prefix + key)) for r in records]
                    if any(y is not None for y in ys):
                        label = labels.get(trial, trial) if named and prefix else "_nolegend_"
                        ax.plot(epochs, ys, style, color=colour, marker=".", label=label)
        if baseline is not None:
            dice_ax.axhline(baseline, color="red", ls=":", lw=1.2, label="predict nothing (val)")
        loss_ax.set_title(f"{arch}: loss")
        dice_ax.set_title(f"{arch}: Kaggle Dice")
        for ax in (loss_ax, dice_ax):
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
        title = None if len(trials) <= CURVE_LEGEND_TRIALS else "best trials (others grey)"
        dice_ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title=title)
    fig.tight_layout()
    named = [labels.get(t, t) for t in curves]
    return _png(fig, "learning curves: " + "; ".join(named))


def plot_parallel(
    rows: Sequence[Mapping[str, Any]], axes: Sequence[Axis], *, baseline: float | None
) -> str:
    """Parallel coordinates: one vertical axis per varying hyperparameter and one for the
    validation score, one line per finished trial, coloured by its score (best on top)."""
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    scores = [float(r[METRIC]) for r in rows]
    low = min([*scores, *([baseline] if baseline is not None else [])])
    high = max(scores)
    if high - low < 1e-9:
        low, high = low - 0.01, high + 0.01
    score_axis = Axis(METRIC, None, low, high)
    every = [*axes, score_axis]
    cmap, norm = plt.get_cmap("viridis"), Normalize(min(scores), max(scores) + 1e-12)
    fig = _figure(max(7.0, 2.0 * len(every) + 2), 4.8)
    ax = fig.add_subplot(1, 1, 1)
    for row, score in sorted(zip(rows, scores, strict=True), key=lambda p: p[1]):
        ys = [a.position(_hparam_value(row.get(a.name))) for a in axes]
        ys.append(score_axis.position(score))
        ax.plot(range(len(every)), ys, color=cmap(norm(score)), lw=2, alpha=0.85, marker="o")
    for x, axis in enumerate(every):
        ax.plot([x, x], [0, 1], color="black", lw=1)
        for position, text in _axis_ticks(axis, [_hparam_value(r.get(axis.name)) for r in rows]):
            ax.plot([x - 0.03, x], [position, position], color="black", lw=1)
            ax.text(
                x - 0.05,
                position,
                text,
                ha="right",
                va="center",
                fontsize=8,
                zorder=5,
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
            )
    if baseline is not None:
        y = score_axis.position(baseline)
        ax.plot([len(axes) - 0.1, len(axes) + 0.1], [y, y], color="red", lw=2)
        ax.text(
            len(axes) + 0.12,
            y,
            f"predict nothing\n{baseline:.4f}",
            color="red",
            fontsize=8,
            va="center",
        )
    ax.set_xticks(range(len(every)), [a.name for a in every], fontsize=9)
    ax.set_xlim(-0.6, len(every) - 0.4)
    ax.set_ylim(-0.2, 1.05)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    fig.colorbar(ScalarMappable(norm, cmap), ax=ax, label=METRIC, pad=0.02)
    fig.tight_layout()
    names = ", ".join(a.name for a in axes)
    return _png(fig, f"parallel coordinates: {names} against val_kaggle_dice, {len(rows)} trials")


def _axis_ticks(axis: Axis, values: Sequence[Any]) -> list[tuple[float, str]]:
    if axis.choices is not None:
        ticks = [(axis.position(c), _shown(c)) for c in axis.choices]
    else:
        scale = (lambda v: math.log10(v), lambda v: 10**v) if axis.log else (float, float)
        steps = np.linspace(scale[0](axis.low), scale[0](axis.high), 5)
        fmt = "{:.4f}" if axis.name == METRIC else "{:.3g}"
        ticks = [(axis.position(scale[1](s)), fmt.format(scale[1](s))) for s in steps]
    if any(v is None for v in values):
        ticks.append((axis.position(None), "n/a"))
    return ticks


def plot_importance(importances: Mapping[str, float], *, top: int, trials: int) -> str:
    """Horizontal bars, most important on top, each with its share written beside it."""
    ranked = sorted(importances.items(), key=lambda kv: (kv[1], kv[0]))
    fig = _figure(7, 0.5 * len(ranked) + 1.4)
    ax = fig.add_subplot(1, 1, 1)
    ax.barh(range(len(ranked)), [v for _, v in ranked], color="C0")
    for y, (_, value) in enumerate(ranked):
        ax.text(value + 0.01, y, f"{value:.2f}", va="center", fontsize=8)
    ax.set_yticks(range(len(ranked)), [k for k, _ in ranked])
    ax.set_xlim(0, 1.1)
    ax.set_xlabel(f"PED-ANOVA importance (top {top} of {trials} trials against all)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    text = ", ".join(f"{k} {v:.2f}" for k, v in reversed(ranked))
    return _png(fig, f"hyperparameter importance: {text}")


def plot_hparams(rows: Sequence[Mapping[str, Any]], axes: Sequence[Axis]) -> str:
    """Validation Kaggle Dice against each varying hyperparameter (the architecture aside), one
    point per finished trial, coloured by architecture; a blank value is drawn at n/a."""
    cols = min(3, len(axes))
    nrows = math.ceil(len(axes) / cols)
    fig = _figure(4.2 * cols, 3.2 * nrows)
    archs = sorted({str(r.get("model")) for r in rows})
    rng = np.random.default_rng(0)
    for k, axis in enumerate(axes):
        ax = fig.add_subplot(nrows, cols, k + 1)
        blank = any(_hparam_value(r.get(axis.name)) is None for r in rows)
        categories = [*(["n/a"] if blank else []), *map(_shown, axis.choices or ())]
        for a, arch in enumerate(archs):
            points = [
                (_hparam_value(r.get(axis.name)), float(r[METRIC]))
                for r in rows
                if str(r.get("model")) == arch
            ]
            if axis.choices is None:  # a numeric range: a blank value has no place on it
                points = [p for p in points if p[0] is not None]
                xs = [float(p[0]) for p in points]
            else:
                shown = ["n/a" if p[0] is None else _shown(p[0]) for p in points]
                xs = [categories.index(v) + rng.uniform(-0.12, 0.12) for v in shown]
            if points:
                ax.scatter(xs, [p[1] for p in points], color=f"C{a}", label=arch, alpha=0.8)
        if axis.choices is not None:
            ax.set_xticks(range(len(categories)), categories)
        elif axis.log:
            ax.set_xscale("log")
        ax.set_xlabel(
            axis.name + (" (blank trials left out)" if blank and not axis.choices else "")
        )
        ax.set_ylabel("val Kaggle Dice")
        ax.grid(alpha=0.3)
    fig.axes[0].legend(fontsize=7)
    fig.tight_layout()
    return _png(fig, "validation Dice against " + ", ".join(a.name for a in axes))


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
    return _png(fig, "test Dice per class of " + ", ".join(name for name, _ in entries))


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
        # A split of several sizes is stored zero-padded to its largest: cut the padding off.
        height, width = overlays["size"][i] if "size" in overlays else images[i].shape[:2]
        image, true, pred = (a[i][:height, :width] for a in (images, truth, predicted))
        panels = (
            (image, _image_title(overlays, i)),
            (_tint(image, true), f"ground truth: {_present(true, class_names)}"),
            (_tint(image, pred), f"ensemble: {_present(pred, class_names)}"),
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
    return _png(fig, f"predictions on {count} test images against their ground truth")


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
    return _png(fig, f"wall and device seconds of {len(rows)} trials")
