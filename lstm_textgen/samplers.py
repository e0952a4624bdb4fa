"""Choosing the next character from logits: greedy, temperature, top-k and top-p.

Everything here is TensorFlow graph code (no Python branching on tensor values) so the same
functions run eagerly, in a `tf.function` and inside an exported SavedModel. Sampling is
stateless: the random stream is a function of `(seed, step)` alone, so the same request
always yields the same text.
"""

from __future__ import annotations

import math

import tensorflow as tf

from lstm_textgen.vocab import UNKNOWN_ID


def _per_row(value, batch, dtype):
    """A scalar or `[B]` setting as a `[B]` tensor."""
    value = tf.cast(value, dtype)
    return tf.broadcast_to(tf.reshape(value, [-1]), [batch])


def filter_logits(logits, top_k, top_p):
    """Set to -inf every logit outside the top-k and outside the top-p nucleus.

    Args:
        logits: `[B, V]` float logits (already divided by the temperature).
        top_k: scalar or `[B]` int; 0 keeps all.
        top_p: scalar or `[B]` float in (0, 1]; 1 keeps all. The nucleus is the smallest
            set of most likely ids whose probability reaches `top_p`; the most likely id is
            always kept.
    """
    batch = tf.shape(logits)[0]
    vocab = tf.shape(logits)[1]
    neg_inf = tf.constant(-math.inf, logits.dtype)

    k = _per_row(top_k, batch, tf.int32)
    k = tf.where(k > 0, tf.minimum(k, vocab), vocab)
    ranked = tf.sort(logits, axis=-1, direction="DESCENDING")
    kth_largest = tf.gather(ranked, k - 1, batch_dims=1)
    logits = tf.where(logits < kth_largest[:, None], neg_inf, logits)

    p = _per_row(top_p, batch, logits.dtype)
    ranked = tf.sort(logits, axis=-1, direction="DESCENDING")
    mass_before = tf.cumsum(tf.nn.softmax(ranked, axis=-1), axis=-1, exclusive=True)
    in_nucleus = mass_before < p[:, None]
    cutoff = tf.reduce_min(
        tf.where(in_nucleus, ranked, tf.constant(math.inf, logits.dtype)), axis=-1
    )
    return tf.where(logits < cutoff[:, None], neg_inf, logits)


def _prepare(logits, temperature, top_k, top_p):
    """What `_pick` needs that does not change from step to step of a sampling loop."""
    batch = tf.shape(logits)[0]
    vocab = tf.shape(logits)[1]
    t = _per_row(temperature, batch, logits.dtype)
    filtering = tf.reduce_any(tf.cast(top_k, tf.int32) > 0) | tf.reduce_any(
        tf.cast(top_p, logits.dtype) < 1.0
    )
    return {
        # Id 0 stands for "a character the model never saw"; it must never be emitted.
        "unknown": tf.one_hot(UNKNOWN_ID, vocab, on_value=True, off_value=False)[None, :],
        "sampling": t > 0,
        # Rows with t == 0 take the greedy pick; dividing by 1 there keeps them finite.
        "divisor": tf.where(t > 0, t, tf.ones_like(t))[:, None],
        "filtering": filtering,
    }


def _pick(logits, seed, prepared, top_k, top_p, filtering):
    """One id per row; `filtering` (a Python bool) says whether to apply top-k/top-p."""
    logits = tf.where(prepared["unknown"], tf.constant(-math.inf, logits.dtype), logits)
    greedy = tf.argmax(logits, axis=-1, output_type=tf.int32)
    scaled = logits / prepared["divisor"]
    if filtering:
        scaled = filter_logits(scaled, top_k, top_p)
    sampled = tf.random.stateless_categorical(scaled, 1, seed=seed, dtype=tf.int32)[:, 0]
    return tf.where(prepared["sampling"], sampled, greedy)


def sample_next(logits, seed, temperature, top_k=0, top_p=1.0):
    """Pick one id per row.

    Args:
        logits: `[B, V]`.
        seed: int `[2]`, the stateless random seed for this step.
        temperature: scalar or `[B]`; 0 picks the most likely id (greedy).
        top_k, top_p: see `filter_logits`.

    Returns:
        int32 `[B]`. The unknown-character id is never returned.
    """
    logits = tf.convert_to_tensor(logits)
    prepared = _prepare(logits, temperature, top_k, top_p)
    # The filters sort the logits twice: skip them when no row asks for them.
    return tf.cond(
        prepared["filtering"],
        lambda: _pick(logits, seed, prepared, top_k, top_p, True),
        lambda: _pick(logits, seed, prepared, top_k, top_p, False),
    )


def sample_loop(step_fn, logits, state, num_steps, seed, temperature, top_k=0, top_p=1.0):
    """Sample `num_steps` ids, feeding each pick back through `step_fn`.

    Args:
        step_fn: `(ids [B], state) -> (logits [B, V], state)`; the state is any nest of
            tensors whose shapes stay fixed (e.g. the LSTM `(h, c)` of every layer).
        logits: `[B, V]`, the distribution of the first id to sample.
        state: the state that goes with `logits`.
        num_steps: scalar int, how many ids to sample (0 is allowed).
        seed: scalar int; step t draws with the stateless seed `(seed, t)`.
        temperature, top_k, top_p: see `sample_next`.

    Returns:
        int32 `[B, num_steps]`.
    """
    num_steps = tf.cast(num_steps, tf.int32)
    seed = tf.cast(seed, tf.int64)
    logits = tf.convert_to_tensor(logits)
    batch = tf.shape(logits)[0]
    # Each op in the loop body costs a kernel launch per character, so everything that
    # does not change between steps is computed here, and the choice to filter is made
    # once for the whole loop rather than by a branch at every step.
    prepared = _prepare(logits, temperature, top_k, top_p)

    def loop(filtering):
        def body(t, logits, state, picks):
            step_seed = tf.stack([seed, tf.cast(t, tf.int64)])
            ids = _pick(logits, step_seed, prepared, top_k, top_p, filtering)
            picks = picks.write(t, ids)
            logits, state = step_fn(ids, state)
            return t + 1, logits, state, picks

        picks = tf.TensorArray(tf.int32, size=num_steps, element_shape=[None])
        _, _, _, picks = tf.while_loop(
            lambda t, *_: t < num_steps,
            body,
            (tf.constant(0), logits, state, picks),
            maximum_iterations=num_steps,
        )
        return tf.cond(
            num_steps > 0,
            lambda: tf.transpose(picks.stack()),
            lambda: tf.zeros([batch, 0], tf.int32),
        )

    return tf.cond(prepared["filtering"], lambda: loop(True), lambda: loop(False))
