"""The tf.data pipelines that feed training and evaluation: (input, target) windows of
a text's ids (an array or an `IdFile`), in order, shuffled by epoch, or as contiguous
streams for a carried state."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from lstm_textgen.data.id_file import IdFile
from lstm_textgen.errors import TextgenError, setting


def count_windows(num_chars: int, seq_len: int) -> int:
    """How many (input, target) windows of `seq_len` fit in `num_chars` characters."""
    return max(0, (num_chars - 1) // seq_len)


def check_length(text, seq_len: int, what: str) -> None:
    """Fail clearly when `text` (a string or ids) holds not even one training window."""
    if count_windows(len(text), seq_len) < 1:
        raise TextgenError(
            f"the {what} text has {len(text)} characters, fewer than seq_len + 1 = "
            f"{seq_len + 1}; use a smaller {setting('seq_len')} or more text"
        )


def _window_reader(ids, seq_len: int, batch_size: int | None = None):
    """A function from window numbers `[n]` to (inputs, targets), each int32 `[n, seq_len]`.

    `batch_size`, when every batch has it, is set as the static shape (XLA needs it).

    Window k holds ids `k * seq_len : k * seq_len + seq_len + 1`, so windows overlap by
    one character and every character but the first is a target exactly once per pass.
    """
    width = seq_len + 1
    offsets = tf.range(width, dtype=tf.int64)
    if isinstance(ids, IdFile):

        def read(windows):
            block = tf.numpy_function(
                lambda w: ids.read_windows(w * seq_len, width), [windows], tf.as_dtype(ids.dtype)
            )
            block.set_shape([batch_size, width])
            return tf.cast(block, tf.int32)

    else:
        constant = tf.constant(
            np.asarray(ids[: count_windows(len(ids), seq_len) * seq_len + 1]), tf.int32
        )

        def read(windows):
            return tf.gather(constant, windows[:, None] * seq_len + offsets)

    def inputs_and_targets(windows):
        block = read(windows)
        return block[:, :-1], block[:, 1:]

    return inputs_and_targets


def make_dataset(ids, seq_len: int, batch_size: int) -> tf.data.Dataset:
    """(input, target) batches of every window of `ids` in order, for evaluation.

    `ids` is an array of ids or an `IdFile`; the last batch may be smaller.
    """
    check_length(ids, seq_len, "given")
    windows = tf.data.Dataset.range(count_windows(len(ids), seq_len)).batch(batch_size)
    return windows.map(_window_reader(ids, seq_len)).prefetch(tf.data.AUTOTUNE)


def window_order(num_windows: int, seed: int, first_epoch: int = 0) -> tf.data.Dataset:
    """Window numbers, epoch after epoch, each epoch a fresh permutation.

    Epoch e's permutation depends on `(seed, e)` only, so the stream can be restarted at
    any point and continues exactly as an uninterrupted one would.
    """
    seed = int(seed)

    def permutation(epoch):
        return tf.data.Dataset.from_tensor_slices(
            tf.random.experimental.stateless_shuffle(
                tf.range(num_windows, dtype=tf.int64),
                seed=tf.stack([tf.constant(seed, tf.int64), epoch]),
            )
        )

    return tf.data.Dataset.range(first_epoch, 2**62).flat_map(permutation)


def make_train_dataset(
    ids, seq_len: int, batch_size: int, seed: int, start_step: int = 0
) -> tf.data.Dataset:
    """Endless shuffled (input, target) batches, starting with the batch of `start_step`.

    Batch s holds positions `s * batch_size ...` of `window_order`, so a run resumed at
    step s sees exactly the batches an uninterrupted run would (batches may straddle two
    epochs when the window count is not a multiple of the batch size).
    """
    check_length(ids, seq_len, "training")
    num_windows = count_windows(len(ids), seq_len)
    first = start_step * batch_size
    order = window_order(num_windows, seed, first_epoch=first // num_windows)
    order = order.skip(first % num_windows).batch(batch_size, drop_remainder=True)
    dataset = order.map(
        _window_reader(ids, seq_len, batch_size), num_parallel_calls=tf.data.AUTOTUNE
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


def stream_batches(num_chars: int, seq_len: int, batch_size: int) -> int:
    """Batches per pass of `make_stream_dataset`: windows per stream."""
    return count_windows(num_chars, seq_len) // batch_size


def make_stream_dataset(ids, seq_len: int, batch_size: int, start_step: int = 0):
    """Endless (input, target) batches whose row b continues row b of the batch before.

    The text is cut into `batch_size` contiguous streams of n windows each (the windows
    of `_window_reader`, in order; the last windows that do not fill a stream are left
    out). Batch s holds window `s mod n` of every stream, so a carried state
    (`CarriedState`) runs along each stream, and batch s depends on s alone: a resumed
    run sees the batches an uninterrupted one would.
    """
    check_length(ids, seq_len, "training")
    per_stream = stream_batches(len(ids), seq_len, batch_size)
    if per_stream < 1:
        raise TextgenError(
            f"{setting('carry_state')} cuts the training text into "
            f"{setting('batch_size', batch_size)} streams of at least {seq_len + 1} characters, "
            f"but it has {len(ids):,}; use a smaller {setting('batch_size')} or "
            f"{setting('seq_len')}"
        )
    starts = tf.range(batch_size, dtype=tf.int64) * per_stream
    windows = tf.data.Dataset.counter(start_step).map(
        lambda step: starts + tf.math.floormod(step, per_stream)
    )
    dataset = windows.map(_window_reader(ids, seq_len, batch_size))
    return dataset.prefetch(tf.data.AUTOTUNE)
