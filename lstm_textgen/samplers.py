"""Choosing the next character from logits: greedy, temperature, top-k and top-p.

Everything here is TensorFlow graph code (no Python branching on tensor values) so the same
functions run eagerly, in a `tf.function` and inside an exported SavedModel. Every setting
is per row, and so is randomness: row r draws its random numbers from its own seed alone
(`row_uniforms`), and every other op here works row by row, so a row's text does not
depend on the other rows of its batch (up to how a model's matrix products round a row
at different batch sizes). That is what lets TF Serving merge unrelated requests into
one batch: the same request gives the same text, alone or merged.
"""

from __future__ import annotations

import math

import tensorflow as tf

from lstm_textgen.vocab import UNKNOWN_ID

# The second half of each row's stateless seed: a fixed stream id, so that a seed means
# the same random numbers in the library, the CLI and the export.
SEED_STREAM = 0x5EED
# Temperatures below this divide as this: logits / 1e-20 stay finite, and as good as greedy.
MIN_TEMPERATURE = 1e-20


def per_row(value, batch, dtype):
    """A scalar or `[B]` setting as a `[B]` tensor."""
    value = tf.cast(value, dtype)
    return tf.broadcast_to(tf.reshape(value, [-1]), [batch])


def row_uniforms(seeds, num_steps):
    """`[B, num_steps]` uniform floats in [0, 1); row r depends on `seeds[r]` alone.

    The stream is counter-based, so the first n numbers of a row are the same whatever
    `num_steps` is: a row's text does not depend on how long the other rows run.
    """
    seeds = tf.cast(seeds, tf.int64)
    num_steps = tf.cast(num_steps, tf.int32)
    # map_fn cannot stack zero rows of unknown length: an empty batch gets an empty array.
    return tf.cond(
        tf.size(seeds) > 0,
        lambda: tf.map_fn(
            lambda s: tf.random.stateless_uniform([num_steps], seed=tf.stack([s, SEED_STREAM])),
            seeds,
            fn_output_signature=tf.TensorSpec([None], tf.float32),
        ),
        lambda: tf.zeros([0, num_steps]),
    )


def filter_logits(logits, top_k, top_p):
    """Set to -inf every logit outside the top-k and outside the top-p nucleus.

    Args:
        logits: `[B, V]` float logits (already divided by the temperature).
        top_k: scalar or `[B]` int; 0 keeps all.
        top_p: scalar or `[B]` float in (0, 1]; 1 keeps all. The nucleus is the smallest
            set of most likely ids whose probability reaches `top_p`; the most likely id is
            always kept.

    A row with top_k 0 and top_p 1 comes back exactly as it went in.
    """
    batch = tf.shape(logits)[0]
    vocab = tf.shape(logits)[1]
    neg_inf = tf.constant(-math.inf, logits.dtype)
    ranked = tf.sort(logits, axis=-1, direction="DESCENDING")

    k = per_row(top_k, batch, tf.int32)
    k = tf.where(k > 0, tf.minimum(k, vocab), vocab)
    kth_largest = tf.gather(ranked, k - 1, batch_dims=1)[:, None]
    # Cutting the sorted logits below the k-th keeps them sorted: one sort serves both.
    ranked = tf.where(ranked < kth_largest, neg_inf, ranked)

    p = per_row(top_p, batch, logits.dtype)[:, None]
    mass_before = tf.cumsum(tf.nn.softmax(ranked, axis=-1), axis=-1, exclusive=True)
    # p >= 1 keeps every id even where the rounded mass before the last ones reaches 1.
    in_nucleus = (mass_before < p) | (p >= 1.0)
    cutoff = tf.reduce_min(
        tf.where(in_nucleus, ranked, tf.constant(math.inf, logits.dtype)), axis=-1, keepdims=True
    )
    return tf.where(logits < tf.maximum(cutoff, kth_largest), neg_inf, logits)


def _prepare(logits, temperature, top_k, top_p):
    """What `_pick` needs that does not change from step to step of a sampling loop."""
    batch = tf.shape(logits)[0]
    vocab = tf.shape(logits)[1]
    t = per_row(temperature, batch, logits.dtype)
    k = per_row(top_k, batch, tf.int32)
    p = per_row(top_p, batch, logits.dtype)
    return {
        # Id 0 stands for "a character the model never saw"; it must never be emitted.
        "unknown": tf.one_hot(UNKNOWN_ID, vocab, on_value=True, off_value=False)[None, :],
        "sampling": t > 0,
        # Rows with t == 0 take the greedy pick; dividing by 1 there keeps them finite, and
        # the floor keeps logits / t finite for a tiny positive t (softmax then does the rest).
        "divisor": tf.where(t > 0, tf.maximum(t, MIN_TEMPERATURE), tf.ones_like(t))[:, None],
        "top_k": k,
        "top_p": p,
        # Which kind of pick the batch needs, decided once for a whole sampling loop:
        # 0 every row greedy, 1 every row sampled, 2 both; +3 if a sampled row filters.
        "kind": tf.where(tf.reduce_all(t > 0), 1, tf.where(tf.reduce_any(t > 0), 2, 0))
        + tf.where(tf.reduce_any((t > 0) & ((k > 0) | (p < 1.0))), 3, 0),
    }


# (greedy rows, sampled rows, filtering) for each value of `_prepare`'s "kind".
_KINDS = {
    0: (True, False, False),
    1: (False, True, False),
    2: (True, True, False),
    4: (False, True, True),
    5: (True, True, True),
}


def _pick(logits, uniform, prepared, kind):
    """One id per row, by inverting the cumulative distribution at `uniform` `[B]`.

    `kind`, a Python int (see `_KINDS`), says which of the greedy pick, the sampled pick
    and the top-k/top-p filters the batch needs; leaving out what no row asks for changes
    no row's pick (a row that asks for no filter is unchanged by it).
    """
    greedy_rows, sampled_rows, filtering = _KINDS[kind]
    logits = tf.where(prepared["unknown"], tf.constant(-math.inf, logits.dtype), logits)
    if greedy_rows:
        greedy = tf.argmax(logits, axis=-1, output_type=tf.int32)
        if not sampled_rows:
            return greedy
    scaled = logits / prepared["divisor"]
    if filtering:
        scaled = filter_logits(scaled, prepared["top_k"], prepared["top_p"])
    cdf = tf.cumsum(tf.nn.softmax(scaled, axis=-1), axis=-1)
    # uniform < 1, so the threshold stays below the total and lands on an id of weight > 0.
    threshold = uniform[:, None] * cdf[:, -1:]
    # The number of cdf entries <= threshold (what searchsorted(side="right") returns for
    # a sorted cdf), in ops that LiteRT has as builtins.
    sampled = tf.reduce_sum(tf.cast(cdf <= threshold, tf.int32), axis=-1)
    if not greedy_rows:
        return sampled
    return tf.where(prepared["sampling"], sampled, greedy)


def _switch(kind, branch):
    """`branch(kind)` for the tensor `kind`, each value traced as its own branch."""
    kinds = sorted(_KINDS)
    return tf.switch_case(
        tf.searchsorted(kinds, tf.reshape(kind, [1]))[0],
        [lambda k=k: branch(k) for k in kinds],
    )


def sample_next(logits, uniform, temperature, top_k=0, top_p=1.0):
    """Pick one id per row.

    Args:
        logits: `[B, V]`.
        uniform: `[B]` floats in [0, 1), the row's random number for this step (from
            `row_uniforms`).
        temperature: scalar or `[B]`; 0 picks the most likely id (greedy).
        top_k, top_p: scalar or `[B]`, see `filter_logits`.

    Returns:
        int32 `[B]`. The unknown-character id is never returned.
    """
    logits = tf.convert_to_tensor(logits)
    uniform = tf.convert_to_tensor(uniform, logits.dtype)
    prepared = _prepare(logits, temperature, top_k, top_p)
    return _switch(prepared["kind"], lambda kind: _pick(logits, uniform, prepared, kind))


def _mix32(x):
    """Chris Wellons's "lowbias32" integer hash of uint32 `x` (public domain)."""
    for shift, multiplier in ((16, 0x7FEB352D), (15, 0x846CA68B)):
        x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, tf.constant(shift, tf.uint32)))
        x = x * tf.constant(multiplier, tf.uint32)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, tf.constant(16, tf.uint32)))


def hash_uniforms(seeds, step):
    """`[B]` uniform floats in [0, 1) for step `step` of rows seeded `seeds` (int32 `[B]`).

    A counter-based stream built from integer ops (a hash of the row's seed and the step)
    that LiteRT has as builtins, unlike TF's stateless random ops: the portable sampling
    loop draws from it. Its numbers are not those of `row_uniforms`.
    """
    key = _mix32(tf.cast(seeds, tf.uint32))
    counter = tf.cast(step, tf.uint32) * tf.constant(0x9E3779B9, tf.uint32)
    bits24 = tf.bitwise.right_shift(_mix32(key + counter), tf.constant(8, tf.uint32))
    return tf.cast(bits24, tf.float32) * (1.0 / (1 << 24))


def sample_loop(
    step_fn, logits, state, num_steps, seed, temperature, top_k=0, top_p=1.0, portable=False
):
    """Sample `num_steps` ids per row, feeding each pick back through `step_fn`.

    Args:
        step_fn: `(ids [B], state) -> (logits [B, V], state)`; the state is any nest of
            tensors whose shapes stay fixed (e.g. the LSTM `(h, c)` of every layer).
        logits: `[B, V]`, the distribution of the first id to sample.
        state: the state that goes with `logits`.
        num_steps: scalar int, how many ids to sample (0 is allowed).
        seed: scalar or `[B]` int: row r draws from `row_uniforms` of its seed.
        temperature, top_k, top_p: scalar or `[B]`, see `sample_next`.
        portable: build the loop from ops LiteRT has as builtins: row r draws from
            `hash_uniforms` of its (int32) seed instead, and each pick is written into a
            `[B, num_steps]` tensor by a select over all of it, O(B * num_steps) per step
            (TensorArrays of an unknown batch size do not convert, and a loop variable
            that changes shape makes LiteRT's WHILE allocate at every step).

    Returns:
        int32 `[B, num_steps]`.
    """
    num_steps = tf.cast(num_steps, tf.int32)
    logits = tf.convert_to_tensor(logits)
    batch = tf.shape(logits)[0]
    if portable:
        seeds = per_row(seed, batch, tf.int32)
        uniform_at = lambda t: hash_uniforms(seeds, t)  # noqa: E731
        positions = tf.range(num_steps)[None, :]
    else:
        uniforms = tf.TensorArray(logits.dtype, size=num_steps).unstack(
            tf.transpose(row_uniforms(per_row(seed, batch, tf.int64), num_steps))
        )
        uniform_at = uniforms.read
    # Each op in the loop body costs a kernel launch per character, so everything that
    # does not change between steps is computed here, and the kind of pick (greedy,
    # sampled, filtered) is chosen once for the whole loop, not by a branch at every step.
    prepared = _prepare(logits, temperature, top_k, top_p)

    def loop(kind):
        def body(t, logits, state, picks):
            ids = _pick(logits, uniform_at(t), prepared, kind)
            if portable:
                picks = tf.where(tf.equal(positions, t), ids[:, None], picks)
            else:
                picks = picks.write(t, ids)
            logits, state = step_fn(ids, state)
            return t + 1, logits, state, picks

        if portable:
            picks = tf.zeros([batch, num_steps], tf.int32)
        else:
            picks = tf.TensorArray(tf.int32, size=num_steps, element_shape=[None])
        _, _, _, picks = tf.while_loop(
            lambda t, *_: t < num_steps,
            body,
            (tf.constant(0), logits, state, picks),
            maximum_iterations=num_steps,
        )
        if portable:
            return picks
        return tf.cond(
            num_steps > 0,
            lambda: tf.transpose(picks.stack()),
            lambda: tf.zeros([batch, 0], tf.int32),
        )

    if portable:
        # LiteRT ran the loop 3-4x slower nested in IF branches (measured at batch 1), so
        # the portable loop always does every part of the pick: it picks the same ids.
        return loop(max(_KINDS))
    return _switch(prepared["kind"], loop)
