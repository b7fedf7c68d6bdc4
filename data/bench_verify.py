"""What the driver's shard check (`data.shards.verify_shards`) costs, first run and stamped.

    python -m data.bench_verify shards=results/shards/neu-seg
    python -m data.bench_verify simulate_gb=5 [dir=/tmp]

`shards=`: the train and val shards of a prepared set, as `search.run` checks them.
`simulate_gb=N`: N GB of real Arrow IPC shards (256 MB each, random image bytes) written to
a temporary folder under `dir=` and described by an in-memory manifest. The file system's
page cache holds what was just written (or read), so the first check measures hashing and
Arrow parsing more than the disk; a cold cache adds the disk's read time.

Each set is checked twice with a fresh stamp: the first reads and hashes every shard, the
second finds each unchanged since the first and reads only sizes and mtimes. The last line
printed is one JSON object with the figures.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data.config import compose_schema, require, run_cli
from data.shards import Manifest, ShardInfo, SplitInfo, read_manifest, verify_shards

__all__ = ["main", "simulated_manifest", "timed_checks"]

SHARD_BYTES = 256 * 2**20


def timed_checks(manifest: Manifest, splits: Sequence[str], workdir: Path) -> dict[str, float]:
    """Seconds of a first (hashing) check and of a second (stamped) one, and the bytes hashed."""
    stamp = workdir / "verified.json"
    stamp.unlink(missing_ok=True)
    first = verify_shards(manifest, splits, stamp=stamp)
    second = verify_shards(manifest, splits, stamp=stamp)
    return {
        "shards": first.shards,
        "gb": round(first.bytes_hashed / 1e9, 3),
        "first_s": round(first.seconds, 3),
        "first_gb_per_s": round(first.bytes_hashed / 1e9 / max(first.seconds, 1e-9), 2),
        "stamped_s": round(second.seconds, 4),
        "stamped_hashed": second.hashed,
    }


def simulated_manifest(
    folder: Path, gigabytes: float, *, shard_bytes: int = SHARD_BYTES
) -> Manifest:
    """`gigabytes` of Arrow shards of about `shard_bytes` in `folder` (one written, the rest
    copies)."""
    import pyarrow as pa

    rng = np.random.default_rng(0)
    image = 1600 * 256
    rows = max(1, shard_bytes // image)
    table = pa.table(
        {
            "image_id": [f"sim_{i:06d}.jpg" for i in range(rows)],
            "image": [rng.integers(0, 256, image, dtype=np.uint8).tobytes() for _ in range(rows)],
        }
    )
    first = folder / "train-00000.arrow"
    with pa.OSFile(str(first), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    data = first.read_bytes()
    info = {"rows": rows, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    count = max(1, round(gigabytes * 1e9 / len(data)))
    shards = [ShardInfo(path=first.name, **info)]
    for index in range(1, count):
        path = folder / f"train-{index:05d}.arrow"
        shutil.copyfile(first, path)
        shards.append(ShardInfo(path=path.name, **info))
    return Manifest(
        uri=str(folder),
        schema_version=1,
        name="simulated",
        source="simulated",
        class_names=("a",),
        image_format="raw",
        image_shape=(256, 1600),
        split_seed=0,
        splits={"train": SplitInfo(rows=rows * count, shards=tuple(shards))},
        stats={},
        skipped=(),
        input_fingerprint="simulated",
    )


@dataclass
class BenchVerifyConfig:
    """`python -m data.bench_verify`'s keys: `shards`, `simulate_gb` or both."""

    shards: str | None = None  # a prepared shard set (its train and val splits)
    simulate_gb: float | None = None  # check N GB of simulated shards
    dir: str | None = None  # where simulated shards are written (None: the system's temp)


def main(argv: Sequence[str]) -> int:
    args = compose_schema(BenchVerifyConfig, argv, __doc__ or "")
    require(
        args.simulate_gb is None or args.simulate_gb > 0,
        f"simulate_gb={args.simulate_gb}: expected a positive number of GB",
    )
    require(bool(args.shards or args.simulate_gb), "give shards=URI and/or simulate_gb=N")
    figures = {}
    with tempfile.TemporaryDirectory(dir=args.dir or None) as scratch:
        work = Path(scratch)
        if args.shards:
            manifest = read_manifest(args.shards)
            figures["shards"] = timed_checks(manifest, ("train", "val"), work)
            print(f"{args.shards} (train + val): {figures['shards']}", flush=True)
        if args.simulate_gb:
            folder = work / "simulated"
            folder.mkdir()
            manifest = simulated_manifest(folder, args.simulate_gb)
            figures["simulated"] = timed_checks(manifest, ("train",), work)
            print(f"simulated {args.simulate_gb:g} GB: {figures['simulated']}", flush=True)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    run_cli(main)
