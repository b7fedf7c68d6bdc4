"""The tf.data side of reading a split: each record decoded inside the graph (image, RLE
masks), cropped and flipped together by stateless seeds, batched by image size, and scaled
to floats; and `check_options`, which refuses options a split cannot be batched with before
any of it runs. `data.reader.SplitRecords.dataset` chains them.
"""

from __future__ import annotations

from typing import Any

from data.shards import Manifest, shard_columns, split_info

__all__ = [
    "CROP_MODES",
    "ReaderError",
    "batch_by_size",
    "check_options",
    "decoder",
    "rle_to_masks",
    "to_float",
]

CROP_MODES = ("random", "defect")


class ReaderError(ValueError):
    """A bad reader argument; the message names it, the value given and what would be right."""


def check_options(
    manifest: Manifest,
    split: str,
    batch_size: int,
    crop: tuple[int, int] | None,
    crop_mode: str = "random",
    dtype: str = "uint8",
) -> None:
    """ReaderError naming the problem if `split` cannot be batched with these options, such as
    a crop larger than an image. `search.run` calls it before Ray starts, so the fault stops
    the driver once rather than every trial. (Whole images of different sizes are batched by
    size: see `SplitRecords.dataset`.)"""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ReaderError(f"batch_size={batch_size!r}: expected an integer >= 1")
    if crop_mode not in CROP_MODES:
        raise ReaderError(f"crop_mode={crop_mode!r}: expected one of {', '.join(CROP_MODES)}")
    if dtype not in ("float32", "uint8"):
        raise ReaderError(f"dtype={dtype!r}: expected float32 or uint8")
    if crop is not None:
        if len(crop) != 2 or any(not isinstance(c, int) or c < 1 for c in crop):
            raise ReaderError(f"crop={crop!r}: expected (height, width), two integers >= 1")
        shape = manifest.image_shape
        if shape is not None and (crop[0] > shape[0] or crop[1] > shape[1]):
            raise ReaderError(
                f"crop={tuple(crop)} is larger than the images of {manifest.uri} "
                f"({shape[0]}x{shape[1]}, HxW); expected a crop of at most that size"
            )
        if shape is None:
            small = sorted(
                (h, w) for h, w in _split_sizes(manifest, split) if h < crop[0] or w < crop[1]
            )
            if small:
                listed = ", ".join(f"{h}x{w}" for h, w in small[:8])
                raise ReaderError(
                    f"crop={tuple(crop)} is larger than {len(small)} image size(s) of split "
                    f"{split!r} of {manifest.uri} ({listed}, HxW); expected a crop no larger "
                    "than the smallest image"
                )


def _split_sizes(manifest: Manifest, split: str) -> set[tuple[int, int]]:
    sizes: set[tuple[int, int]] = set()
    for shard in split_info(manifest, split).shards:
        # search.run has just verified these shards whole: read the two columns alone.
        table = shard_columns(manifest, shard, ["height", "width"])
        sizes |= set(
            zip(table.column("height").to_pylist(), table.column("width").to_pylist(), strict=True)
        )
    return sizes


def decoder(
    manifest: Manifest,
    *,
    crop: tuple[int, int] | None,
    crop_mode: str,
    flip: bool,
    seed: int,
) -> Any:
    """(position, record) -> uint8 image (H, W, 1) and uint8 0/1 masks (H, W, C)."""
    import tensorflow as tf

    num_classes = manifest.num_classes
    raw = manifest.image_format == "raw"
    block = raw and manifest.image_shape is not None  # see _records: already uint8 (H, W, 1)

    def decode(position: Any, record: tuple[Any, ...]) -> tuple[Any, Any]:
        _, data, height, width, rles = record
        if block:
            image = data
        elif raw:
            image = tf.reshape(tf.io.decode_raw(data, tf.uint8), tf.stack([height, width, 1]))
        else:
            image = tf.io.decode_png(data, channels=1)
        masks = rle_to_masks(rles, height, width, num_classes)
        if crop is None and not flip:
            return image, masks
        both = tf.concat([image, masks], axis=-1)  # one crop/flip keeps them aligned
        seeds = tf.random.experimental.stateless_split(
            tf.stack([tf.constant(seed, tf.int64), tf.cast(position, tf.int64)]), num=4
        )
        if crop is not None:
            both = _crop(both, crop, crop_mode, seeds[0], seeds[1])
        if flip:
            both = _flip(both, seeds[2], seeds[3])
        return both[..., :1], both[..., 1:]

    return decode


def batch_by_size(examples: Any, batch_size: int, drop_remainder: bool) -> Any:
    """Batches of one image size each (tf.data group_by_window, keyed by height and width)."""
    import tensorflow as tf

    def size_key(image: Any, masks: Any) -> Any:
        shape = tf.shape(image, out_type=tf.int64)
        return shape[0] * (1 << 31) + shape[1]

    return examples.group_by_window(
        key_func=size_key,
        reduce_func=lambda _, window: window.batch(batch_size, drop_remainder=drop_remainder),
        window_size=batch_size,
    )


def to_float(image: Any, masks: Any) -> tuple[Any, Any]:
    import tensorflow as tf

    return tf.cast(image, tf.float32) * (1.0 / 255.0), tf.cast(masks, tf.float32)


def rle_to_masks(rles: Any, height: Any, width: Any, num_classes: int) -> Any:
    """uint8 (H, W, C) 0/1 masks from C Kaggle RLE strings, as TF ops (no Python per pixel).

    The work is proportional to the defect area, not the image: every run expands to its
    pixel positions, which are mapped from Kaggle's column-major order straight to their
    (row, column, class) place and scattered into zeros. (A cumulative sum over the whole
    buffer is 30x slower on CPU.) The shards were validated when they were written, so the
    strings are well formed and runs never overlap.
    """
    import tensorflow as tf

    height, width = tf.cast(height, tf.int64), tf.cast(width, tf.int64)
    tokens = tf.strings.split(rles)
    numbers = tf.strings.to_number(tokens.flat_values, out_type=tf.int64)
    starts = numbers[0::2] - 1
    runs = tf.ragged.range(starts, starts + numbers[1::2])
    positions = runs.flat_values  # 0-indexed, column-major within its class
    classes = tf.repeat(tokens.value_rowids()[0::2], runs.row_lengths())
    rows, columns = positions % height, positions // height
    places = (rows * width + columns) * num_classes + classes
    flat = tf.scatter_nd(
        places[:, None],
        tf.ones_like(places, tf.uint8),
        tf.reshape(height * width * num_classes, [1]),
    )
    return tf.reshape(flat, tf.stack([height, width, tf.constant(num_classes, tf.int64)]))


def _crop(both: Any, crop: tuple[int, int], crop_mode: str, seed_y: Any, seed_x: Any) -> Any:
    import tensorflow as tf

    height, width = tf.shape(both)[0], tf.shape(both)[1]
    tf.debugging.assert_greater_equal(
        tf.stack([height, width]),
        tf.constant(crop, tf.int32),
        message=f"an image is smaller than crop={tuple(crop)} (HxW)",
    )
    room_y, room_x = height - crop[0], width - crop[1]
    top = tf.random.stateless_uniform([], seed_y, 0, room_y + 1, tf.int32)
    left = tf.random.stateless_uniform([], seed_x, 0, room_x + 1, tf.int32)
    if crop_mode == "defect":
        defects = tf.where(tf.reduce_any(both[..., 1:] > 0, axis=-1))
        count = tf.shape(defects, out_type=tf.int64)[0]
        pick = tf.random.stateless_uniform([], seed_y, 0, tf.maximum(count, 1), tf.int64)

        def centred() -> tuple[Any, Any]:
            centre = tf.cast(defects[pick], tf.int32)
            return (
                tf.clip_by_value(centre[0] - crop[0] // 2, 0, room_y),
                tf.clip_by_value(centre[1] - crop[1] // 2, 0, room_x),
            )

        top, left = tf.cond(count > 0, centred, lambda: (top, left))
    return tf.slice(both, tf.stack([top, left, 0]), tf.stack([crop[0], crop[1], -1]))


def _flip(both: Any, seed_lr: Any, seed_ud: Any) -> Any:
    import tensorflow as tf

    both = tf.image.stateless_random_flip_left_right(both, seed_lr)
    return tf.image.stateless_random_flip_up_down(both, seed_ud)
