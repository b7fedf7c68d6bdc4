"""Build verified Arrow shards and manifest.json from a dataset config.

    python -m data.prepare dataset=<synthetic|severstal|folder|neu-seg> \
        dataset.root=PATH out=PATH_OR_URI [key=value ...]

Rerunning with the same inputs (same config, same files by name, size and mtime, same CSV
bytes) finds the manifest's input fingerprint unchanged and does nothing. A folder that holds
shards of another dataset, config or input is never rebuilt unless `overwrite=true` says so:
the command stops with one line naming what the folder holds and what was asked.

Images are loaded (decoded, or generated) and encoded in `workers` processes (0 = one per
CPU core, and one per 16 images at most), in order, a bounded window ahead of the shard
writer, so memory stays flat.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from data.config import (
    ConfigError,
    compose,
    offer_help,
    require,
    run_cli,
)
from data.rle import RLEError
from data.shards import (
    SCHEMA_VERSION,
    Manifest,
    ManifestMissing,
    ShardError,
    ShardRecord,
    SplitInfo,
    read_manifest,
    resolve,
    write_manifest,
    write_split,
)
from data.sources import Entry, Problems, SourceError, scan_source
from data.splits import SPLIT_METHOD, assign_splits
from data.stats import stats_from_rles

__all__ = [
    "DEFAULT_SHARD_BYTES",
    "IMAGE_FORMATS",
    "ShardsExist",
    "encoded_images",
    "main",
    "prepare",
]

IMAGE_FORMATS = ("raw", "png")
DEFAULT_SHARD_BYTES = 64 * 1024 * 1024


class ShardsExist(ShardError):
    """`out` holds shards built from other inputs, and overwrite was not asked for."""


def prepare(
    dataset: Mapping[str, Any],
    *,
    out: str,
    on_error: str = "raise",
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    image_format: str = "raw",
    overwrite: bool = False,
    workers: int = 0,
) -> Manifest:
    """Shards + manifest for `dataset` (a dataset group config) at `out`; a no-op if current.

    Raises ShardsExist, leaving `out` untouched, when it holds shards of other inputs and
    `overwrite` is false.
    """
    dataset = _plain(dataset)
    if dataset.get("source") == "folder":
        from data.sources.folder import class_names_for

        try:
            dataset["class_names"] = class_names_for(dataset)
        except SourceError as exc:
            raise ConfigError(str(exc)) from None
    _check_options(dataset, out=out, shard_bytes=shard_bytes, image_format=image_format)
    problems = Problems(on_error)
    scan = scan_source(dataset, problems)
    entries = _limit(scan.entries, dataset)
    settings = {
        "dataset": dataset,
        "schema_version": SCHEMA_VERSION,
        "shard_bytes": shard_bytes,
        "image_format": image_format,
        "on_error": on_error,
        "split_method": SPLIT_METHOD,
    }
    fingerprint = hashlib.sha256(
        json.dumps(settings, sort_keys=True).encode() + scan.fingerprint.digest()
    ).hexdigest()
    current = _current_manifest(out, fingerprint, dataset, overwrite=overwrite)
    if current is not None:
        return current
    parts, dropped_clean = assign_splits(entries, dataset["split"])
    filesystem, base = resolve(out)
    filesystem.create_dir(base, recursive=True)
    splits: dict[str, SplitInfo] = {}
    written: dict[str, list[Entry]] = {}
    for name, members in parts.items():
        written[name] = []
        records = _records(members, image_format, problems, written[name], workers=workers)
        splits[name] = write_split(filesystem, base, name, records, shard_bytes=shard_bytes)
    manifest = _manifest(out, dataset, splits, written, problems, fingerprint, image_format)
    # "dataset" covers every usable image, also the clean ones kept out of train.
    usable = [e.rles for m in written.values() for e in m] + [e.rles for e in dropped_clean]
    manifest.stats["dataset"] = stats_from_rles(usable, manifest.class_names)
    manifest = _with_dropped(manifest, len(dropped_clean))
    write_manifest(filesystem, base, manifest)
    return manifest


def _plain(dataset: Mapping[str, Any]) -> dict[str, Any]:
    from omegaconf import DictConfig, OmegaConf

    if isinstance(dataset, DictConfig):
        return OmegaConf.to_container(dataset, resolve=True)  # type: ignore[return-value]
    return json.loads(json.dumps(dict(dataset)))


def _check_options(
    dataset: Mapping[str, Any], *, out: str, shard_bytes: int, image_format: str
) -> None:
    require(bool(out), "out is not set: give out=PATH_OR_URI (a folder for the shards)")
    require(
        image_format in IMAGE_FORMATS,
        f"image_format={image_format!r}: expected one of {', '.join(IMAGE_FORMATS)}",
    )
    require(int(shard_bytes) >= 1, f"shard_bytes={shard_bytes}: expected a positive byte count")
    names = dataset.get("class_names")
    require(
        isinstance(names, list) and bool(names) and all(isinstance(n, str) and n for n in names),
        f"dataset.class_names={names!r}: expected a non-empty list of names",
    )
    require(len(set(names)) == len(names), f"dataset.class_names={names}: names repeat")
    require("split" in dataset, "dataset.split is missing; see data/conf/dataset/*.yaml")
    limit = dataset.get("max_images")
    require(
        limit is None or int(limit) >= 1,
        f"dataset.max_images={limit}: expected null or >= 1",
    )


def _limit(entries: list[Entry], dataset: Mapping[str, Any]) -> list[Entry]:
    """A seeded random sample of max_images entries (same seed as the split), or all."""
    limit = dataset.get("max_images")
    if limit is None or int(limit) >= len(entries):
        return entries
    ordered = sorted(entries, key=lambda e: e.image_id)
    rng = np.random.default_rng(int(dataset["split"]["seed"]))
    chosen = np.sort(rng.choice(len(ordered), size=int(limit), replace=False))
    return [ordered[i] for i in chosen]


def _current_manifest(
    out: str, fingerprint: str, dataset: Mapping[str, Any], *, overwrite: bool
) -> Manifest | None:
    """The manifest at `out` if it was built from these inputs and its shards are all there;
    None if there is none (or `overwrite`). Another dataset's manifest raises ShardsExist."""
    try:
        manifest = read_manifest(out)
    except ManifestMissing:
        return None
    except ShardError as exc:
        if overwrite:
            return None
        raise ShardsExist(
            f"{out} holds a manifest this version cannot read ({exc}); refusing to overwrite "
            "it: give overwrite=true to rebuild the shards there, or another folder"
        ) from None
    if manifest.input_fingerprint != fingerprint:
        if overwrite:
            return None
        raise ShardsExist(
            f"{out} holds shards of {_what_is_there(manifest, dataset)}; refusing to overwrite "
            "them: give overwrite=true to rebuild them there, or another folder"
        )
    filesystem, base = resolve(out)
    for info in manifest.splits.values():
        for shard in info.shards:
            found = filesystem.get_file_info(f"{base.rstrip('/')}/{shard.path}")
            if found.size != shard.bytes:
                return None
    return manifest


def _what_is_there(manifest: Manifest, dataset: Mapping[str, Any]) -> str:
    """What a folder's manifest holds against what was asked, in one phrase."""
    held, asked = manifest.dataset or {}, dict(dataset)
    if held.get("name") != asked.get("name"):
        return (
            f"dataset={held.get('name', manifest.name)} ({manifest.source} source), but "
            f"dataset={asked.get('name')} was asked for"
        )
    changed = sorted(_changed_keys(held, asked))
    if changed:
        shown = ", ".join(f"dataset.{k}: {v[0]!r} there, {v[1]!r} asked" for k, v in changed[:4])
        more = f" and {len(changed) - 4} more" if len(changed) > 4 else ""
        return f"dataset={held.get('name')} with another config ({shown}{more})"
    return (
        f"dataset={held.get('name')} built from other inputs (the source files, or the "
        "shard settings or split method, changed since)"
    )


def _changed_keys(held: Mapping[str, Any], asked: Mapping[str, Any], prefix: str = "") -> Iterator:
    for key in sorted(set(held) | set(asked)):
        there, here = held.get(key), asked.get(key)
        if isinstance(there, Mapping) and isinstance(here, Mapping):
            yield from _changed_keys(there, here, f"{prefix}{key}.")
        elif there != here:
            yield f"{prefix}{key}", (there, here)


def _load_record(load: Callable[[], np.ndarray], image_format: str) -> tuple[bytes | None, str]:
    """(encoded pixels, "") or (None, the SourceError's message): one image, in a worker."""
    from data.images import encode_png

    try:
        pixels = load()
    except SourceError as exc:
        return None, str(exc)
    return (pixels.tobytes() if image_format == "raw" else encode_png(pixels)), ""


def encoded_images(
    members: Sequence[Entry], image_format: str, workers: int
) -> Iterator[tuple[bytes | None, str]]:
    """Each member's `_load_record`, in order; in worker processes when there is more than one.

    At most `4 * workers` images are in flight, so a slow shard writer never makes the loaded
    images pile up in memory. Workers are spawned, not forked: the caller may hold TensorFlow's
    threads (search.run prepares shards after its validation imported Keras).
    """
    if not workers:  # auto: a process per core, but no process for fewer than 16 images
        workers = max(1, min(os.cpu_count() or 1, len(members) // 16))
    if workers == 1 or len(members) < 2:
        for entry in members:
            yield _load_record(entry.load, image_format)
        return
    import multiprocessing
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: deque = deque()
        for entry in members:
            pending.append(pool.submit(_load_record, entry.load, image_format))
            if len(pending) >= 4 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _records(
    members: Sequence[Entry],
    image_format: str,
    problems: Problems,
    written: list[Entry],
    *,
    workers: int = 0,
) -> Iterator[ShardRecord]:
    for entry, (image, problem) in zip(
        members, encoded_images(members, image_format, workers), strict=True
    ):
        if image is None:
            problems.report(entry.image_id, problem)
            continue
        written.append(entry)
        yield ShardRecord(entry.image_id, image, entry.height, entry.width, entry.rles)


def _manifest(
    out: str,
    dataset: Mapping[str, Any],
    splits: dict[str, SplitInfo],
    written: Mapping[str, list[Entry]],
    problems: Problems,
    fingerprint: str,
    image_format: str,
) -> Manifest:
    names = list(dataset["class_names"])
    everything = [e for members in written.values() for e in members]
    shapes = {(e.height, e.width) for e in everything}
    stats = {name: stats_from_rles([e.rles for e in m], names) for name, m in written.items()}
    stats["all"] = stats_from_rles([e.rles for e in everything], names)
    return Manifest(
        uri=out,
        schema_version=SCHEMA_VERSION,
        name=str(dataset["name"]),
        source=str(dataset["source"]),
        class_names=tuple(names),
        image_format=image_format,
        image_shape=next(iter(shapes)) if len(shapes) == 1 else None,
        split_seed=int(dataset["split"]["seed"]),
        splits=splits,
        stats=stats,
        skipped=tuple(problems.skipped),
        input_fingerprint=fingerprint,
        dataset=dict(dataset),
    )


def _with_dropped(manifest: Manifest, dropped_clean: int) -> Manifest:
    from dataclasses import replace

    return replace(manifest, dropped_clean=dropped_clean)


def main(argv: Sequence[str]) -> int:
    offer_help("data.conf", "prepare", argv, __doc__ or "")
    cfg = compose("data.conf", "prepare", argv)
    require(cfg.get("out") is not None, "out is not set: give out=PATH_OR_URI")
    try:
        manifest = prepare(
            cfg.dataset,
            out=str(cfg.out),
            on_error=str(cfg.on_error),
            shard_bytes=int(cfg.shard_bytes),
            image_format=str(cfg.image_format),
            overwrite=bool(cfg.overwrite),
            workers=int(cfg.workers),
        )
    except (SourceError, RLEError, ShardError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ConfigError:
        raise
    print(_summary(manifest))
    return 0


def _summary(manifest: Manifest) -> str:
    splits = ", ".join(
        f"{name} {info.rows} rows in {len(info.shards)} shard(s)"
        for name, info in manifest.splits.items()
    )
    lines = [f"{manifest.uri}: {manifest.name} ({manifest.source}), {splits}"]
    if manifest.dropped_clean:
        lines.append(f"clean images left out of train (keep_clean=false): {manifest.dropped_clean}")
    if manifest.skipped:
        lines.append(f"skipped {len(manifest.skipped)} bad record(s) (listed in manifest.json):")
        lines += [f"  {s['reason']}" for s in manifest.skipped[:20]]
    return "\n".join(lines)


if __name__ == "__main__":
    run_cli(main)
