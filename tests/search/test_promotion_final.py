"""search.promotion.final: final/ written aside and swapped in whole."""

from __future__ import annotations

from pathlib import Path

from search.promotion.final import swap_in


def test_swap_in_replaces_final_whole(tmp_path: Path) -> None:
    final = tmp_path / "final"
    final.mkdir()
    (final / "old.txt").write_text("old")
    new = tmp_path / "final.tmp-1"
    new.mkdir()
    (new / "metrics.json").write_text("{}")
    swap_in(new, final)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final"]
    assert sorted(p.name for p in final.iterdir()) == ["metrics.json"]
