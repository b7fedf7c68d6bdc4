"""The cost and reproduce sections show what experiment.json records, and name a value of
the wrong kind."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest
from report_fixture import section, write_search_outputs

from search.report import build_report


def test_reproduce_section_shows_what_experiment_json_records(tmp_path: Path) -> None:
    experiment = tmp_path / "results" / "demo"
    experiment.mkdir(parents=True)
    write_search_outputs(experiment, trials=2, epochs=1)
    recorded = {
        "command": "python -m search.run space=unet 'space.models.unet.grid.filters=[8]'",
        "seed": 7,
        "git_commit": "40b4d1b",
        "versions": {"ray": "2.60.0", "keras": "3.11.0"},
        "elapsed_s": 100.0,
        "config": {"seed": 7, "train": {"epochs": 3}},
        "space": "unet",
    }
    (experiment / "experiment.json").write_text(json.dumps(recorded))
    page = build_report(experiment)
    facts = section(page, "reproduce")
    assert html.escape(recorded["command"]) in facts and "<td>7</td>" in facts
    assert "<td>40b4d1b</td>" in facts and "<td>keras 3.11.0, ray 2.60.0</td>" in facts
    assert "<th>space</th><td>&quot;unet&quot;</td>" in facts
    assert html.escape(json.dumps(recorded["config"], indent=1)) in facts
    assert "not recorded" not in facts
    # The search's elapsed time beside the summed trial time (30 + 31 s): 0.61× side by side.
    cost = section(page, "cost")
    assert "Elapsed wall time of the search: <b>100 s (0.03 h)</b>" in cost and "0.61×" in cost
    recorded["elapsed_s"] = "an hour"
    (experiment / "experiment.json").write_text(json.dumps(recorded))
    with pytest.raises(ValueError, match=r"experiment.json: elapsed_s=\"an hour\": expected sec"):
        build_report(experiment)
