"""The report's last sections: what the search cost, how to run it again (experiment.json's
command, seed, code and config) and which files of the experiment folder the page is drawn from."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from search.report.curves import CURVES_FILE, Curves, result_span_s
from search.report.plots import plot_cost
from search.report.sections import _note
from search.report.values import _number


def _hours(seconds: float) -> str:
    return f"{seconds:,.0f} s ({seconds / 3600:.2f} h)"


def _experiment_field(
    experiment_dir: Path, experiment: Mapping[str, Any], key: str, kind, what: str
):
    """experiment.json's `key`, None where absent; a value of the wrong kind is named."""
    value = experiment.get(key)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise ValueError(
            f"{experiment_dir / 'experiment.json'}: {key}={json.dumps(value)[:80]}: expected {what}"
        )
    return value


def cost_section(
    experiment_dir: Path,
    rows: Sequence[Mapping[str, Any]],
    metrics: Mapping[str, Any] | None,
    experiment: Mapping[str, Any],
    curves: Curves,
) -> str:
    wall = sum(_number(r.get("wall_s")) or 0.0 for r in rows)
    device = sum(_number(r.get("device_s")) or 0.0 for r in rows)
    promotion = metrics.get("promotion_s") if metrics else None
    text = (
        f"<p id='cost-total'>Whole search: {len(rows)} trials, {_hours(wall)} of trial wall time "
        f"summed and {_hours(device)} of device time"
    )
    if promotion is not None:
        text += f"; promotion took {promotion:,.0f} s"
    text += ".</p>"
    elapsed = _experiment_field(experiment_dir, experiment, "elapsed_s", int | float, "seconds")
    if elapsed:
        text += (
            f'<p id="elapsed">Elapsed wall time of the search: <b>{_hours(elapsed)}</b>; the '
            f"trials' summed wall time is {wall / elapsed:.2f}× that (trials ran side by side).</p>"
        )
    else:
        text += _note(
            "Elapsed wall time of the search: not recorded (experiment.json has no elapsed_s).",
            id="elapsed",
        )
    span = result_span_s(curves.trials)
    source = "tune/" if curves.source == "tune" else curves.source
    if span:
        text += (
            f"<p id='span'>From the per-epoch results ({html.escape(source)}): the first epoch "
            f"began {_hours(span)} before the last epoch's result (the pauses of a resumed "
            f"search count in it); the summed trial wall time is {wall / span:.2f}× that span."
        )
        sessions = sorted((experiment_dir / "tune").glob("experiment_state-*.json"))
        if len(sessions) > 1:
            text += f" tune/ holds {len(sessions)} Ray sessions: this search was resumed."
        text += "</p>"
    return text + (plot_cost(rows) if rows else "")


def _fact(name: str, value: str | None, *, raw: bool = False) -> str:
    if value is None:
        return f'<tr><th>{name}</th><td class="missing">not recorded in experiment.json</td></tr>'
    return f"<tr><th>{name}</th><td>{value if raw else html.escape(value)}</td></tr>"


# experiment.json keys the reproduce section shows by name; every other key is listed after.
REPRODUCE_KEYS = ("command", "seed", "git_commit", "versions", "config", "elapsed_s", "baseline")


def reproduce_section(experiment_dir: Path, experiment: Mapping[str, Any]) -> str:
    """The command, seed, code and package versions and the resolved config the search used."""
    command = _experiment_field(experiment_dir, experiment, "command", str, "a string")
    commit = _experiment_field(experiment_dir, experiment, "git_commit", str, "a string")
    versions = _experiment_field(experiment_dir, experiment, "versions", dict, "{package: version}")
    seed = experiment.get("seed")
    rows = [
        _fact(
            "command",
            f'<pre class="command">{html.escape(command)}</pre>' if command else None,
            raw=True,
        ),
        _fact("seed", None if seed is None else str(seed)),
        _fact("code (git commit)", commit),
        _fact(
            "package versions",
            ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) if versions else None,
        ),
    ]
    rows += [
        _fact(html.escape(k), json.dumps(v, default=str))
        for k, v in experiment.items()
        if k not in REPRODUCE_KEYS
    ]
    config = experiment.get("config")
    config_html = (
        "<details><summary>Resolved config (experiment.json <code>config</code>)</summary>"
        f"<pre>{html.escape(json.dumps(config, indent=1, default=str))}</pre></details>"
        if config
        else _note("Resolved config: not recorded in experiment.json.")
    )
    return f'<table class="facts" id="facts">{"".join(rows)}</table>{config_html}' + sources_table(
        experiment_dir
    )


def sources_table(experiment_dir: Path) -> str:
    """Every file the page reads, whether this folder has it, and what it is drawn into."""
    name = html.escape(experiment_dir.name)
    tune = experiment_dir / "tune"
    trial_dirs = sum(1 for p in tune.iterdir() if p.is_dir()) if tune.is_dir() else 0
    entries = (
        ("leaderboard.csv", "the leaderboard, parallel coordinates, importance, cost", ""),
        (
            "experiment.json",
            "the baseline, the facts above, the elapsed time",
            "written by search.run",
        ),
        (
            "tune/",
            f"learning curves ({trial_dirs} trial folders)" if trial_dirs else "learning curves",
            "Ray's trial folders; not committed",
        ),
        (
            CURVES_FILE,
            "learning curves where tune/ is absent",
            "written by <code>search.report</code> when tune/ is there",
        ),
        (
            "final/metrics.json",
            "final scores, promoted models, per-class bars",
            f"not promoted: <code>python -m search.promote experiment={name}</code>",
        ),
        ("final/overlays.npz", "predictions on test images", "written by search.promote"),
    )
    body = "".join(
        f"<tr><td><code>{path}</code></td>"
        + (
            "<td>present</td>"
            if (experiment_dir / path.rstrip("/")).exists()
            else f'<td class="missing">missing ({why})</td>'
        )
        + f"<td>{use}</td></tr>"
        for path, use, why in entries
    )
    return (
        f"<p>This page is rebuilt by <code>python -m search.report experiment={name}</code> from "
        "these files of the experiment folder:</p>"
        '<table class="facts" id="sources"><thead><tr><th>file</th><th>here</th>'
        f"<th>drawn into</th></tr></thead><tbody>{body}</tbody></table>"
    )
