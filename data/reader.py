"""Read one split of verified shards: a tf.data pipeline for training, NumPy for evaluation.

`make_dataset` streams records from the split's shards (each checked against the manifest
before use), decodes the image and the RLE masks inside the tf.data graph (so the work runs
in parallel, outside the GIL), then crops, flips, batches and prefetches.

Randomness (shuffle, crops, flips) is a pure function of `seed` and the element's position in
the stream, so `deterministic=True` gives the same batches on every run; without it, tf.data
may reorder elements between parallel calls for speed. Crops and flips are stateless; the
shuffles are tf.data's, which also mix in TensorFlow's global seed (tf.random.set_seed), so
callers that need the same order in two processes hold that fixed as well.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from data import rle
from data.shards import (
    Manifest,
    ShardError,
    load_shard,
    read_manifest,
    split_info,
)
from data.transforms import (
    CROP_MODES,
    ReaderError,
    batch_by_size,
    check_options,
    decoder,
    to_float,
)

__all__ = [
    "CROP_MODES",
    "check_options",
    "Example",
    "ReaderError",
    "count_examples",
    "iter_examples",
    "make_dataset",
    "open_split",
    "split_index",
    "SplitRecords",
]

ROWS_PER_CHUNK = 32  # records handed from Python to TF at once
SHUFFLE_BUFFER = 256  # records (raw bytes, before decoding): at 1600x256 about 100 MiB
# cache="auto" keeps a worker's undecoded records in memory after the first epoch when they
# total at most this many bytes (NEU-Seg: ~180 MiB; the full Severstal train set: ~5 GiB).
AUTO_CACHE_BYTES = 1 << 30
CACHE_MODES = ("auto", "memory", "none")


@dataclass(frozen=True)
class Example:
    """One labelled image in plain NumPy: grey uint8 (H, W) and bool masks (H, W, C)."""

    image_id: str
    image: np.ndarray
    masks: np.ndarray


def _split_tables(manifest: Manifest, split: str, limit: int | None) -> Iterator[tuple[Any, Any]]:
    """(shard, its Arrow table) in shard order, cut so that at most `limit` rows come out."""
    _check_limit(limit)
    remaining = split_info(manifest, split).rows if limit is None else limit
    for shard in split_info(manifest, split).shards:
        if remaining <= 0:
            return
        table = load_shard(manifest, shard).slice(0, remaining)
        remaining -= table.num_rows
        yield shard, table


def iter_examples(uri: str, split: str, *, limit: int | None = None) -> Iterator[Example]:
    """The split's records in shard order, decoded with NumPy (for evaluation and overlays)."""
    manifest = read_manifest(uri)
    for shard, table in _split_tables(manifest, split, limit):
        columns = {name: table.column(name).to_pylist() for name in table.column_names}
        for row in range(table.num_rows):
            yield _example(manifest, shard.path, {k: v[row] for k, v in columns.items()})


def split_index(
    uri: str, split: str, *, limit: int | None = None
) -> tuple[list[str], np.ndarray, int]:
    """Image ids, (N, 2) heights and widths, and the class count of the rows `iter_examples`
    yields, in the same order, without decoding an image or a mask."""
    manifest = read_manifest(uri)
    ids: list[str] = []
    sizes: list[tuple[int, int]] = []
    for _, table in _split_tables(manifest, split, limit):
        columns = table.select(["image_id", "height", "width"]).to_pydict()
        ids += columns["image_id"]
        sizes += zip(columns["height"], columns["width"], strict=True)
    return ids, np.asarray(sizes, dtype=np.int64).reshape(-1, 2), len(manifest.class_names)


def _example(manifest: Manifest, shard_name: str, record: dict[str, Any]) -> Example:
    height, width, image_id = record["height"], record["width"], record["image_id"]
    image = _decode_image(manifest, record["image"], height, width, image_id)
    where = f"{manifest.uri}/{shard_name}, image {image_id}"
    masks = np.stack(
        [
            rle.decode(text, height, width, where=f"{where}, class {name}")
            for text, name in zip(record["rles"], manifest.class_names, strict=True)
        ],
        axis=-1,
    )
    return Example(image_id, image, masks)


def _decode_image(
    manifest: Manifest, data: bytes, height: int, width: int, image_id: str
) -> np.ndarray:
    if manifest.image_format == "raw":
        if len(data) != height * width:
            raise ShardError(
                f"{manifest.uri}: image {image_id} has {len(data)} bytes, expected "
                f"{height}x{width} = {height * width}"
            )
        return np.frombuffer(data, np.uint8).reshape(height, width).copy()
    from data.images import decode_grey

    return decode_grey(data, name=f"{manifest.uri}: image {image_id}")


def count_examples(
    uri: str, split: str, *, num_workers: int = 1, index: int = 0, limit: int | None = None
) -> int:
    """How many examples `make_dataset` yields per epoch with these options (before batching)."""
    manifest = read_manifest(uri)
    _check_sharding(num_workers, index)
    _check_limit(limit)
    rows = split_info(manifest, split).rows
    rows = rows if limit is None else min(rows, limit)
    return len(range(index, rows, num_workers))


def make_dataset(
    uri: str,
    split: str,
    *,
    num_workers: int = 1,
    index: int = 0,
    limit: int | None = None,
    cache: str = "auto",
    **options: Any,
) -> Any:
    """A tf.data.Dataset of (image (B,H,W,1), masks (B,H,W,C) in {0,1}): uint8 by default
    (the image in 0..255, as the models take it), or with dtype="float32" the image in [0, 1].

    `open_split(uri, split, ...).dataset(**options)`: the split's part (see `open_split`:
    worker sharding, `limit`, `cache`) and one pass over it. The options (`batch_size`,
    `crop`, `crop_mode`, `flip`, `shuffle`, `repeat`, `seed`, `deterministic`,
    `drop_remainder`, `dtype`) are those of `SplitRecords.dataset`. A training loop that
    wants several epochs from one in-memory copy of the records opens the split once and
    calls `dataset` per epoch.
    """
    records = open_split(uri, split, num_workers=num_workers, index=index, limit=limit, cache=cache)
    return records.dataset(**options)


def open_split(
    uri: str,
    split: str,
    *,
    num_workers: int = 1,
    index: int = 0,
    limit: int | None = None,
    cache: str = "auto",
) -> SplitRecords:
    """This worker's part of a split, read from the shards at most once when it is cached.

    `cache`: "memory" keeps the part's undecoded records in memory once the first dataset
    made from it has been read, so every later one (a training loop's next epoch) skips
    reading and verifying the shards; "auto" does so when they total at most
    AUTO_CACHE_BYTES; "none" streams from the shards every time.
    """
    manifest = read_manifest(uri)
    info = split_info(manifest, split)
    _check_sharding(num_workers, index)
    _check_limit(limit)
    if cache not in CACHE_MODES:
        raise ReaderError(f"cache={cache!r}: expected one of {', '.join(CACHE_MODES)}")
    rows = info.rows if limit is None else min(info.rows, limit)
    part_bytes = sum(s.bytes for s in info.shards) * rows / max(info.rows, 1) / num_workers
    cached = cache == "memory" or (cache == "auto" and part_bytes <= AUTO_CACHE_BYTES)
    return SplitRecords(manifest, split, rows, num_workers, index, cached)


class SplitRecords:
    """One worker's part of a split: `dataset(seed=...)` gives its batches for one pass.

    Cached, the records are read in shard order once, the first time a dataset of this object
    is iterated, and every dataset shuffles the whole part with its own seed; streamed, each
    dataset reads the shards in a seeded order and mixes records within SHUFFLE_BUFFER. Either
    way a dataset's batches depend on `seed` alone, not on how many came before it, so epoch
    e of a resumed training run equals epoch e of an uninterrupted one.
    """

    def __init__(
        self, manifest: Manifest, split: str, rows: int, num_workers: int, index: int, cached: bool
    ) -> None:
        self.manifest = manifest
        self.split = split
        self.rows = rows
        self.num_workers = num_workers
        self.index = index
        self.cached = cached
        self.examples = len(range(index, rows, num_workers))
        self._cache = None
        if cached:
            records = _records(manifest, split, rows, num_workers, index, False, 0)
            self._cache = records.cache()

    def dataset(
        self,
        *,
        batch_size: int,
        crop: tuple[int, int] | None = None,
        crop_mode: str = "random",
        flip: bool = False,
        shuffle: bool = False,
        repeat: bool = False,
        seed: int = 0,
        deterministic: bool = False,
        drop_remainder: bool = False,
        dtype: str = "uint8",
    ) -> Any:
        """One pass over the part: (image (B,H,W,1), masks (B,H,W,C) in {0,1}).

        - `crop` (height, width): a window per example, `crop_mode` "random" or "defect"
          (centred on a random defect pixel; a clean image gets a random window).
        - `flip`: random left-right and up-down flips.
        - `shuffle`/`seed`: the order, crops and flips are a function of `seed`.
        - `dtype`: "uint8" (default): the image in 0..255 and 0/1 masks, as the project's
          models take them (`models.inputs`: the model scales the image on its device, the
          loss casts the masks); "float32": the image in [0, 1] and the masks cast, on the
          CPU, for a model that does not scale its input (8.2 MB of float writes a 256x1600
          sample, against 2 MB).
        Whole images (no `crop`) of a split whose sizes differ are batched by size: a batch
        holds images of one height and width, nothing is padded, so a model, its loss and its
        metrics see exactly what they would one image at a time. A batch is emitted when
        `batch_size` images of its size have arrived, and the part's end flushes the rest, so
        a split of many sizes gives many short batches.
        """
        import tensorflow as tf

        manifest = self.manifest
        check_options(manifest, self.split, batch_size, crop, crop_mode, dtype)
        if self._cache is not None:
            records = self._cache
            if shuffle:  # the whole part is in memory: shuffle all of it
                records = records.shuffle(
                    max(1, self.examples), seed=seed, reshuffle_each_iteration=True
                )
        else:
            records = _records(
                manifest, self.split, self.rows, self.num_workers, self.index, shuffle, seed
            )
            if shuffle:
                records = records.shuffle(SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
        if repeat:
            records = records.repeat()
        decode = decoder(manifest, crop=crop, crop_mode=crop_mode, flip=flip, seed=seed)
        examples = records.enumerate().map(
            decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic
        )
        if crop is None and manifest.image_shape is None:
            batches = batch_by_size(examples, batch_size, drop_remainder)
        else:
            batches = examples.batch(batch_size, drop_remainder=drop_remainder)
            if not repeat:
                # Declared, and checked by tf.data: read from shards the count is unknown, and
                # Keras then finds a pass's end by running out of data, which it reports as
                # "Your input ran out of data; interrupting training" on every trial's
                # first validation.
                whole, part = divmod(self.examples, batch_size)
                count = whole if drop_remainder else whole + (part > 0)
                batches = batches.apply(tf.data.experimental.assert_cardinality(count))
        if dtype == "float32":
            # Cast whole batches: the float32 tensors are written once, not again by batch().
            batches = batches.map(
                to_float, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic
            )
        options = tf.data.Options()
        options.deterministic = deterministic
        options.experimental_optimization.map_parallelization = True
        return batches.prefetch(tf.data.AUTOTUNE).with_options(options)


def _check_sharding(num_workers: int, index: int) -> None:
    if not isinstance(num_workers, int) or num_workers < 1:
        raise ReaderError(f"num_workers={num_workers!r}: expected an integer >= 1")
    if not isinstance(index, int) or not 0 <= index < num_workers:
        raise ReaderError(f"index={index!r}: expected an integer in 0..{num_workers - 1}")


def _check_limit(limit: int | None) -> None:
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ReaderError(f"limit={limit!r}: expected None or an integer >= 1")


def _records(
    manifest: Manifest,
    split: str,
    rows: int,
    num_workers: int,
    index: int,
    shuffle: bool,
    seed: int,
) -> Any:
    """Undecoded records (image_id, image bytes, height, width, rles) of this worker's part."""
    import tensorflow as tf

    shards = split_info(manifest, split).shards
    offsets = np.concatenate([[0], np.cumsum([s.rows for s in shards])]).astype(np.int64)
    wanted = [i for i in range(len(shards)) if offsets[i] < rows]
    num_classes = manifest.num_classes

    def generate(shard_index: Any) -> Iterator[tuple[Any, ...]]:
        shard_index = int(shard_index)
        first = int(offsets[shard_index])
        table = load_shard(manifest, shards[shard_index])
        # Global row r belongs to worker r % num_workers; rows from `rows` on are past limit.
        positions = np.arange(first, min(first + table.num_rows, rows), dtype=np.int64)
        table = table.take(positions[positions % num_workers == index] - first)
        # One Python call per chunk, not per record: the records become tensors in bulk.
        for low in range(0, table.num_rows, ROWS_PER_CHUNK):
            chunk = table.slice(low, ROWS_PER_CHUNK)
            if block_shape is None:
                images = np.array(chunk.column("image").to_pylist(), dtype=object)
            else:
                images = _image_block(chunk, block_shape, manifest, shards[shard_index].path)
            yield (
                np.array(chunk.column("image_id").to_pylist(), dtype=object),
                images,
                chunk.column("height").to_numpy().astype(np.int32),
                chunk.column("width").to_numpy().astype(np.int32),
                np.array(chunk.column("rles").to_pylist(), dtype=object).reshape(-1, num_classes),
            )

    # Raw images of one size travel as a uint8 block: a string tensor of 400 KB elements
    # costs a copy per element at every stage and capped the reader at ~450 records/s.
    block_shape = manifest.image_shape if manifest.image_format == "raw" else None
    signature = (
        tf.TensorSpec((None,), tf.string),
        tf.TensorSpec((None,), tf.string)
        if block_shape is None
        else tf.TensorSpec((None, *block_shape, 1), tf.uint8),
        tf.TensorSpec((None,), tf.int32),
        tf.TensorSpec((None,), tf.int32),
        tf.TensorSpec((None, num_classes), tf.string),
    )
    order = tf.data.Dataset.from_tensor_slices(np.array(wanted, np.int64))
    if shuffle:
        order = order.shuffle(max(1, len(wanted)), seed=seed, reshuffle_each_iteration=True)
    # Shards are read in order, one at a time: shuffling within SHUFFLE_BUFFER mixes records.
    return order.flat_map(
        lambda i: tf.data.Dataset.from_generator(
            generate, args=(i,), output_signature=signature
        ).unbatch()
    )


def _image_block(
    chunk: Any, shape: tuple[int, int], manifest: Manifest, shard_name: str
) -> np.ndarray:
    """The chunk's raw images as one (N, H, W, 1) uint8 array, a view of the Arrow buffer."""
    import pyarrow as pa

    column = pa.concat_arrays(chunk.column("image").chunks) if chunk.num_rows else None
    if column is None:
        return np.zeros((0, *shape, 1), np.uint8)
    offset_type = np.int64 if pa.types.is_large_binary(column.type) else np.int32
    _, offsets_buffer, data_buffer = column.buffers()
    offsets = np.frombuffer(offsets_buffer, offset_type)[
        column.offset : column.offset + len(column) + 1
    ]
    if not np.all(np.diff(offsets) == shape[0] * shape[1]):
        sizes = sorted(set(np.diff(offsets).tolist()))
        raise ShardError(
            f"{manifest.uri}/{shard_name}: raw images of {sizes} bytes, expected "
            f"{shape[0]}x{shape[1]} = {shape[0] * shape[1]} (the manifest's image shape)"
        )
    pixels = np.frombuffer(data_buffer, np.uint8)[offsets[0] : offsets[-1]]
    return pixels.reshape(len(column), shape[0], shape[1], 1)
