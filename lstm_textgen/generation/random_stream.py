"""The counter-based random stream every sampling loop draws from.

Row r's numbers come from its own seed alone: a hash of the seed and the step, built of
integer ops that LiteRT has as builtins (unlike TF's stateless random ops), so a seed
means the same numbers in every backend and a row's numbers do not depend on its batch.
"""

from __future__ import annotations

import tensorflow as tf


def _mix32(x):
    """Chris Wellons's "lowbias32" integer hash of uint32 `x` (public domain)."""
    for shift, multiplier in ((16, 0x7FEB352D), (15, 0x846CA68B)):
        x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, tf.constant(shift, tf.uint32)))
        x = x * tf.constant(multiplier, tf.uint32)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, tf.constant(16, tf.uint32)))


def hash_uniforms(seeds, step):
    """`[B]` uniform floats in [0, 1) for step `step` of rows seeded `seeds` (int32 `[B]`).

    A counter-based stream built from integer ops (a hash of the row's seed and the step)
    that LiteRT has as builtins, unlike TF's stateless random ops: every sampling loop
    draws from it, so a seed means the same numbers in every backend. The first n numbers
    of a row are the same however long the loop runs.
    """
    return stream_uniforms(stream_key(seeds), step)


def stream_key(seeds):
    """uint32 `[B]`: the part of `hash_uniforms` that depends on the seed alone, which a
    loop computes once."""
    return _mix32(tf.cast(seeds, tf.uint32))


def stream_uniforms(key, step):
    """`hash_uniforms` of the rows whose `stream_key` is `key`, at `step`."""
    counter = tf.cast(step, tf.uint32) * tf.constant(0x9E3779B9, tf.uint32)
    bits24 = tf.bitwise.right_shift(_mix32(key + counter), tf.constant(8, tf.uint32))
    return tf.cast(bits24, tf.float32) * (1.0 / (1 << 24))
