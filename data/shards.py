"""Arrow IPC shards of bounded size plus `manifest.json`, on a local path or any pyarrow.fs URI.

Each shard is written whole to `<name>.tmp-<random>` and renamed when complete, so an
interrupted write leaves nothing that looks finished. The manifest (written last, the same
way) records each shard's row count, byte size and sha256; readers refuse a shard that
disagrees, naming it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "SCHEMA_VERSION",
    "MANIFEST_NAME",
    "ShardError",
    "ManifestMissing",
    "ShardInfo",
    "SplitInfo",
    "Manifest",
    "ShardRecord",
    "resolve",
    "join",
    "write_split",
    "write_manifest",
    "read_manifest",
    "load_shard",
    "shard_columns",
    "iter_split_tables",
    "read_split_rles",
    "VerifyReport",
    "verify_shards",
]

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
ROWS_PER_BATCH = 16


class ShardError(ValueError):
    """A missing, truncated or corrupted shard or manifest; the message names it."""


class ManifestMissing(ShardError):
    """The folder has no manifest.json at all (nothing prepared there yet)."""


@dataclass(frozen=True)
class ShardInfo:
    path: str  # relative to the manifest's folder
    rows: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class SplitInfo:
    rows: int
    shards: tuple[ShardInfo, ...]


@dataclass(frozen=True)
class Manifest:
    uri: str
    schema_version: int
    name: str
    source: str
    class_names: tuple[str, ...]
    image_format: str  # "raw": H*W uint8 bytes; "encoded": the source file's bytes
    image_shape: tuple[int, int] | None  # None when image sizes vary
    split_seed: int
    splits: dict[str, SplitInfo]
    stats: dict[str, Any]
    skipped: tuple[dict[str, str], ...]
    input_fingerprint: str
    dataset: dict[str, Any] = field(default_factory=dict)
    dropped_clean: int = 0

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("uri")
        data["skipped_count"] = len(self.skipped)
        return json.dumps(data, indent=2)


@dataclass(frozen=True)
class ShardRecord:
    image_id: str
    image: bytes
    height: int
    width: int
    rles: tuple[str, ...]


def resolve(uri: str) -> tuple[Any, str]:
    """(pyarrow FileSystem, path within it) for a local path or a URI such as file://, s3://."""
    from pyarrow import fs

    if "://" in uri:
        try:
            return fs.FileSystem.from_uri(uri)
        except (ValueError, OSError) as exc:
            raise ShardError(f"{uri}: not a usable pyarrow.fs URI ({exc})") from None
    return fs.LocalFileSystem(), os.path.abspath(uri)


def join(base: str, name: str) -> str:
    return f"{base.rstrip('/')}/{name}"


def _schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("image_id", pa.string()),
            ("image", pa.binary()),
            ("height", pa.int32()),
            ("width", pa.int32()),
            ("rles", pa.list_(pa.string())),
        ]
    )


def _write_atomic(filesystem: Any, path: str, data: bytes) -> None:
    temporary = f"{path}.tmp-{uuid.uuid4().hex[:12]}"
    try:
        with filesystem.open_output_stream(temporary) as stream:
            stream.write(data)
        filesystem.move(temporary, path)
    except OSError as exc:
        _delete_quietly(filesystem, temporary)
        if exc.filename:
            raise
        # pyarrow's filesystem errors name no file: the caller's one-line error must.
        raise OSError(exc.errno, str(exc), path) from exc
    except BaseException:
        _delete_quietly(filesystem, temporary)
        raise


def _delete_quietly(filesystem: Any, path: str) -> None:
    with contextlib.suppress(OSError, FileNotFoundError):
        filesystem.delete_file(path)


def _encode_shard(records: list[ShardRecord]) -> bytes:
    import pyarrow as pa

    columns = {
        "image_id": [r.image_id for r in records],
        "image": [r.image for r in records],
        "height": [r.height for r in records],
        "width": [r.width for r in records],
        "rles": [list(r.rles) for r in records],
    }
    table = pa.Table.from_pydict(columns, schema=_schema())
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_file(sink, table.schema, options=options) as writer:
        writer.write_table(table, max_chunksize=ROWS_PER_BATCH)
    return sink.getvalue().to_pybytes()


def write_split(
    filesystem: Any, base: str, split: str, records: Iterable[ShardRecord], *, shard_bytes: int
) -> SplitInfo:
    """Write `records` as `<split>-NNNNN.arrow` shards of about `shard_bytes` (before zstd)."""
    shards: list[ShardInfo] = []
    pending: list[ShardRecord] = []
    pending_bytes = 0

    def flush() -> None:
        nonlocal pending, pending_bytes
        data = _encode_shard(pending)
        name = f"{split}-{len(shards):05d}.arrow"
        _write_atomic(filesystem, join(base, name), data)
        digest = hashlib.sha256(data).hexdigest()
        shards.append(ShardInfo(name, len(pending), len(data), digest))
        pending, pending_bytes = [], 0

    for record in records:
        pending.append(record)
        pending_bytes += len(record.image) + sum(len(s) for s in record.rles) + 64
        if pending_bytes >= shard_bytes:
            flush()
    if pending or not shards:
        flush()  # an empty split still gets one (empty) shard, so readers see its schema
    return SplitInfo(rows=sum(s.rows for s in shards), shards=tuple(shards))


def write_manifest(filesystem: Any, base: str, manifest: Manifest) -> None:
    _write_atomic(filesystem, join(base, MANIFEST_NAME), manifest.to_json().encode())
    keep = {MANIFEST_NAME} | {s.path for info in manifest.splits.values() for s in info.shards}
    _remove_stale_shards(filesystem, base, keep)


def _remove_stale_shards(filesystem: Any, base: str, keep: set[str]) -> None:
    from pyarrow import fs

    for info in filesystem.get_file_info(fs.FileSelector(base)):
        name = info.base_name
        if name not in keep and (name.endswith(".arrow") or ".arrow.tmp-" in name):
            _delete_quietly(filesystem, info.path)


def read_manifest(uri: str) -> Manifest:
    """The manifest of the shard folder `uri` (or of `uri` itself if it names manifest.json)."""
    folder = uri[: -len(MANIFEST_NAME)].rstrip("/") if uri.endswith(MANIFEST_NAME) else uri
    filesystem, base = resolve(folder)
    path = join(base, MANIFEST_NAME)
    try:
        with filesystem.open_input_stream(path) as stream:
            data = json.loads(stream.read())
    except FileNotFoundError:
        raise ManifestMissing(
            f"{join(folder, MANIFEST_NAME)}: no manifest (run python -m data.prepare)"
        ) from None
    except (OSError, ValueError) as exc:
        raise ShardError(f"{join(folder, MANIFEST_NAME)}: unreadable manifest ({exc})") from None
    return _manifest_from_json(folder, data)


def _manifest_from_json(folder: str, data: Mapping[str, Any]) -> Manifest:
    where = join(folder, MANIFEST_NAME)
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ShardError(
            f"{where}: schema_version {data.get('schema_version')!r}, this reader reads "
            f"{SCHEMA_VERSION}; rebuild the shards with python -m data.prepare"
        )
    try:
        splits = {
            name: SplitInfo(
                rows=int(info["rows"]), shards=tuple(ShardInfo(**s) for s in info["shards"])
            )
            for name, info in data["splits"].items()
        }
        shape = data["image_shape"]
        return Manifest(
            uri=folder,
            schema_version=SCHEMA_VERSION,
            name=data["name"],
            source=data["source"],
            class_names=tuple(data["class_names"]),
            image_format=data["image_format"],
            image_shape=tuple(shape) if shape else None,
            split_seed=int(data["split_seed"]),
            splits=splits,
            stats=data["stats"],
            skipped=tuple(data["skipped"]),
            input_fingerprint=data["input_fingerprint"],
            dataset=data.get("dataset", {}),
            dropped_clean=int(data.get("dropped_clean", 0)),
        )
    except (KeyError, TypeError) as exc:
        raise ShardError(f"{where}: missing or malformed field {exc}") from None


def split_info(manifest: Manifest, split: str) -> SplitInfo:
    if split not in manifest.splits:
        raise ShardError(
            f"split {split!r} is not in {manifest.uri}; it has {', '.join(manifest.splits)}"
        )
    return manifest.splits[split]


def load_shard(manifest: Manifest, shard: ShardInfo) -> Any:
    """The shard as a pyarrow Table, after checking its size, sha256 and row count."""
    import pyarrow as pa

    filesystem, base = resolve(manifest.uri)
    name = join(manifest.uri, shard.path)
    try:
        with filesystem.open_input_file(join(base, shard.path)) as handle:
            data = handle.read()
    except FileNotFoundError:
        raise ShardError(f"{name}: shard is missing") from None
    if len(data) != shard.bytes:
        raise ShardError(
            f"{name}: shard is {len(data)} bytes, the manifest says {shard.bytes} "
            "(truncated or replaced); rebuild with python -m data.prepare"
        )
    if hashlib.sha256(data).hexdigest() != shard.sha256:
        raise ShardError(f"{name}: sha256 does not match the manifest (corrupted shard)")
    try:
        table = pa.ipc.open_file(pa.py_buffer(data)).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise ShardError(f"{name}: not a readable Arrow IPC file ({exc})") from None
    if table.num_rows != shard.rows:
        raise ShardError(f"{name}: {table.num_rows} rows, the manifest says {shard.rows}")
    return table


def shard_columns(manifest: Manifest, shard: ShardInfo, columns: Sequence[str]) -> Any:
    """Only `columns` of a shard, reading no other column's buffers and hashing nothing.

    For checks that run right after `verify_shards` has hashed the same shards (the search
    driver's size check of mixed-size splits): a second full read would double their cost.
    """
    import pyarrow as pa

    filesystem, base = resolve(manifest.uri)
    name = join(manifest.uri, shard.path)
    try:
        with filesystem.open_input_file(join(base, shard.path)) as handle:
            schema = pa.ipc.open_file(handle).schema
            missing = [c for c in columns if schema.get_field_index(c) < 0]
            if missing:
                raise ShardError(f"{name}: no column {', '.join(missing)}")
            fields = [schema.get_field_index(c) for c in columns]
            options = pa.ipc.IpcReadOptions(included_fields=fields)
            table = pa.ipc.open_file(handle, options=options).read_all()
    except FileNotFoundError:
        raise ShardError(f"{name}: shard is missing") from None
    except (pa.ArrowInvalid, OSError) as exc:
        raise ShardError(f"{name}: not a readable Arrow IPC file ({exc})") from None
    if table.num_rows != shard.rows:
        raise ShardError(f"{name}: {table.num_rows} rows, the manifest says {shard.rows}")
    return table


def iter_split_tables(manifest: Manifest, split: str) -> Iterator[Any]:
    for shard in split_info(manifest, split).shards:
        yield load_shard(manifest, shard)


def read_split_rles(manifest: Manifest, split: str) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for table in iter_split_tables(manifest, split):
        rows += [tuple(r) for r in table.column("rles").to_pylist()]
    return rows


@dataclass(frozen=True)
class VerifyReport:
    shards: int
    hashed: int  # read whole and checked: size, sha256, Arrow, row count
    stamped: int  # unchanged since a check recorded in the stamp: size and mtime only
    bytes_hashed: int
    seconds: float


def verify_shards(
    manifest: Manifest, splits: Iterable[str], *, stamp: str | os.PathLike | None = None
) -> VerifyReport:
    """Check every shard of `splits` against the manifest; ShardError names the first bad one.

    A shard is read whole (size, sha256, Arrow, row count: `load_shard`) unless `stamp` (a
    local JSON file) records a check of it at the same size and modification time, against
    the same sha256; then only its size and mtime are read. The stamp is rewritten
    atomically with every shard that passed. Any change to a shard's bytes through the
    file system changes its mtime, so a stamped shard is rehashed after any rewrite.
    """
    from pyarrow import fs

    started = time.perf_counter()
    filesystem, base = resolve(manifest.uri)
    seen: dict[str, dict[str, Any]] = {}
    if stamp is not None and os.path.exists(stamp):
        try:
            with open(stamp) as handle:
                seen = json.load(handle)
        except (OSError, ValueError):
            seen = {}  # a damaged stamp only costs a full check
    checked: dict[str, dict[str, Any]] = {}
    shards = hashed = stamped = bytes_hashed = 0
    for split in splits:
        for shard in split_info(manifest, split).shards:
            shards += 1
            name = join(manifest.uri, shard.path)
            info = filesystem.get_file_info(join(base, shard.path))
            if info.type == fs.FileType.NotFound:
                raise ShardError(f"{name}: shard is missing; rebuild with python -m data.prepare")
            if info.size != shard.bytes:
                raise ShardError(
                    f"{name}: shard is {info.size} bytes, the manifest says {shard.bytes} "
                    "(truncated or replaced); rebuild with python -m data.prepare"
                )
            mark = {"bytes": shard.bytes, "mtime_ns": info.mtime_ns, "sha256": shard.sha256}
            if seen.get(name) == mark:
                stamped += 1
            else:
                load_shard(manifest, shard)
                hashed += 1
                bytes_hashed += shard.bytes
            checked[name] = mark
    if stamp is not None:
        temporary = f"{stamp}.tmp-{uuid.uuid4().hex[:12]}"
        with open(temporary, "w") as handle:
            json.dump({**seen, **checked}, handle, indent=1, sort_keys=True)
        os.replace(temporary, stamp)
    return VerifyReport(shards, hashed, stamped, bytes_hashed, time.perf_counter() - started)
