"""The report's tables: the leaderboard (sortable, the baseline row shaded), the final test
scores and the promoted models' per-class scores."""

from __future__ import annotations

import html
import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from search.records import BASELINE_STATUS, INPUT_BOUND_SHARE, METRIC
from search.report.values import _number


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
    if column == METRIC:
        attributes += ' data-initial-sort="1"'  # best trial first when the page opens
    if not numeric:
        attributes += ' class="text"'
    return f"<th {attributes}>{html.escape(column)}</th>"


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
    scores = [_number(r.get(METRIC)) for r in rows]
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


def input_wait_note(rows: Sequence[Mapping[str, Any]]) -> str:
    """One line: how much of their training time the trials waited for input, and how many
    are input-bound; a note that none measured it where no row has `input_wait`."""
    shares = sorted(
        v
        for r in rows
        if r.get("status") != BASELINE_STATUS and (v := _number(r.get("input_wait"))) is not None
    )
    if not shares:
        return (
            '<p class="note" id="input-wait">No trial recorded its input wait (the measure '
            "came after these trials ran).</p>"
        )
    bound = sum(v > INPUT_BOUND_SHARE for v in shares)
    text = (
        f'<p id="input-wait">Training steps waited for their input batches '
        f"{statistics.median(shares):.0%} of their time at the median trial (most: "
        f"{shares[-1]:.0%}; column input_wait). "
    )
    if bound:
        return text + (
            f"<b>{bound} of {len(shares)} trials are input-bound</b> (waited more than "
            f"{INPUT_BOUND_SHARE:.0%}): more CPUs per trial would speed them up.</p>"
        )
    return text + f"No trial waited more than {INPUT_BOUND_SHARE:.0%}: none is input-bound.</p>"


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
    best = next((m for m in metrics["models"] if m["name"] == metrics["best_single"]), None)
    test_of = {"best": (best or {}).get("test", {}), "ensemble": metrics["ensemble"]["test"]}
    rows = [
        ("best single model, raw (threshold 0.5)", metrics["best_single"], "best", "raw"),
        ("best single model, tuned post-processing", metrics["best_single"], "best", "tuned"),
        ("ensemble, raw", members, "ensemble", "raw"),
        ("ensemble, tuned post-processing", members, "ensemble", "tuned"),
    ]
    fallback = {
        ("best", "raw"): gains["best_single_raw"],
        ("best", "tuned"): gains["best_single_tuned"],
        ("ensemble", "raw"): gains["ensemble_raw"],
        ("ensemble", "tuned"): gains["ensemble_tuned"],
    }
    baseline = gains.get("baseline")

    def line(what: str, who: str, score: float, entry: Mapping[str, Any]) -> str:
        lift = entry.get("lift_over_nothing")
        cells = f'<td class="big">{score:.4f}{_interval(entry.get("interval95"))}</td>'
        if baseline is not None:
            gain = lift["value"] if lift else score - baseline
            shown = f"{gain:+.4f}{_interval((lift or {}).get('interval95'), sign='+')}"
            cells += f'<td class="lift">{shown}</td>'
        return (
            f'<tr><td class="text">{html.escape(what)}</td><td class="text">'
            f"{html.escape(who)}</td>{cells}</tr>"
        )

    body = "".join(
        line(what, who, fallback[(key, kind)], test_of[key].get(kind, {}))
        for what, who, key, kind in rows
    )
    if baseline is not None:
        body += line("predict nothing (the baseline)", "no model", baseline, {})
    lift_head = "<th>lift over predict-nothing</th>" if baseline is not None else ""
    return (
        '<table class="scores" id="scores"><thead><tr><th class="text">test split '
        f'({metrics["splits"]["test"]} images)</th><th class="text">model</th>'
        f"<th>Kaggle Dice</th>{lift_head}</tr></thead><tbody>{body}</tbody></table>"
        f"<p>Post-processing gained {gains['postprocess_gain']:+.4f} on the best single model; "
        f"the ensemble gained {gains['ensemble_gain_over_best_single_tuned']:+.4f} over it "
        f"(both tuned), {gains['total_gain_over_best_single_raw']:+.4f} in all. "
        "Everything was chosen on the validation split; these are test numbers. Brackets: "
        "95% intervals of a paired bootstrap over the test images (a lift's interval is of the "
        "per-image differences); a gain whose interval holds 0 is not a win. The leaderboard's "
        "validation scores are each trial's best epoch, chosen on those same images: "
        "optimistic, where test is not.</p>"
    )


def _interval(interval: Sequence[float] | None, *, sign: str = "") -> str:
    if not interval:
        return ""
    low, high = interval
    return f"<br><small>[{low:{sign}.4f}, {high:{sign}.4f}]</small>"


def _versus_best(score: Mapping[str, Any]) -> str:
    """' ≈ best' where the images cannot tell this score from the best single model's."""
    versus = score.get("vs_best_single")
    if not versus or versus["clear"] or versus["interval95"] == [0.0, 0.0]:  # or itself
        return ""
    return (
        ' <small class="tie" title="the paired interval of the difference holds 0">≈ best</small>'
    )


def _area(entry: Mapping[str, Any]) -> str:
    """A class's minimum component area, as a percentage of its image."""
    fraction = float(entry["min_area_fraction"])
    return f"{100 * fraction:.3g}%" if fraction else "off"


def promoted_table(metrics: Mapping[str, Any]) -> str:
    classes = list(metrics["class_names"])
    heads = "".join(f"<th>{html.escape(c)}</th>" for c in classes)
    lines = []
    entries = [*metrics["models"], {"name": "ensemble", **metrics["ensemble"]}]
    for m in entries:
        post = {e["name"]: e for e in m["postprocess"]["classes"]}
        cells = "".join(
            f"<td>{m['test']['tuned']['per_class'][c]:.4f}<br><small>t={post[c]['threshold']:.2f} "
            f"a={_area(post[c])} g={post[c]['gate'] or 'off'}</small></td>"
            for c in classes
        )
        lines.append(
            f'<tr><td class="text">{html.escape(m["name"])}</td>'
            f"<td>{m['test']['raw']['kaggle_dice']:.4f}"
            f"{_interval(m['test']['raw'].get('interval95'))}</td>"
            f"<td>{m['test']['tuned']['kaggle_dice']:.4f}{_versus_best(m['test']['tuned'])}"
            f"{_interval(m['test']['tuned'].get('interval95'))}</td>{cells}</tr>"
        )
    return (
        '<table id="promoted"><thead><tr><th class="text">model</th><th>test raw</th>'
        f"<th>test tuned</th>{heads}</tr></thead><tbody>{''.join(lines)}</tbody></table>"
    )
