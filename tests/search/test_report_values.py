"""A cell reads as a finite number or None; a JSON file that is absent is None, a broken one
is named."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from search.report.values import _number, _read_json


def test_a_cell_is_a_finite_number_or_none() -> None:
    assert _number("0.25") == 0.25 and _number(np.int64(3)) == 3.0 and _number(True) == 1.0
    for blank in (None, "", "relu", float("nan"), math.inf, "-inf"):
        assert _number(blank) is None, blank


def test_a_json_file_is_read_or_absent_or_named(tmp_path: Path) -> None:
    path = tmp_path / "experiment.json"
    assert _read_json(path) is None
    path.write_text('{"seed": 7}')
    assert _read_json(path) == {"seed": 7}
    path.write_text('{"seed": ')
    with pytest.raises(ValueError, match=r"experiment.json: not valid JSON"):
        _read_json(path)
