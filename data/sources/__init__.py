"""Source adapters: each turns a dataset config into label entries with lazy pixel loaders."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from data.sources._base import ON_ERROR_CHOICES, Entry, Problems, Scan, SourceError
from data.sources.folder import scan_folder
from data.sources.severstal import scan_severstal
from data.sources.severstal_sim import scan_severstal_sim
from data.sources.synthetic import scan_synthetic

__all__ = [
    "ON_ERROR_CHOICES",
    "Entry",
    "Problems",
    "Scan",
    "SourceError",
    "scan_source",
    "source_names",
]

_SCANNERS: dict[str, Callable[[Mapping[str, Any], Problems], Scan]] = {
    "severstal": scan_severstal,
    "severstal-sim": scan_severstal_sim,
    "folder": scan_folder,
    "synthetic": scan_synthetic,
}


def source_names() -> tuple[str, ...]:
    return tuple(_SCANNERS)


def scan_source(cfg: Mapping[str, Any], problems: Problems) -> Scan:
    """Entries of the dataset `cfg` (a dataset group config); bad records go to `problems`."""
    name = cfg.get("source")
    if name not in _SCANNERS:
        raise SourceError(f"dataset.source={name!r}: expected one of {', '.join(_SCANNERS)}")
    if name != "synthetic" and not cfg.get("root"):
        raise SourceError(
            f"dataset.root is not set: the {name} source needs dataset.root=PATH "
            "(the folder holding the data)"
        )
    return _SCANNERS[name](cfg, problems)
