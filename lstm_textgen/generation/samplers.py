"""Choosing the next character from logits (greedy, temperature, top-k and top-p), and a
batch's settings as the sampling loop (`sample_loop`) reads them (`SamplingBatch`).

Everything here is TensorFlow graph code (no Python branching on tensor values) so the same
functions run eagerly, in a `tf.function`, inside an exported SavedModel and, converted,
in LiteRT. Every setting is per row, and so is randomness: row r draws its random numbers
from its own seed alone (`random_stream.hash_uniforms`, a counter-based stream of integer
ops that LiteRT has as builtins), and every other op here works row by row, so a row's
text does not depend on the other rows of its batch (up to how a model's matrix products
round a row at different batch sizes). That is what lets TF Serving merge unrelated requests into
one batch: the same request gives the same text, alone or merged.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import tensorflow as tf

from lstm_textgen.data.vocab import UNKNOWN_ID
from lstm_textgen.generation.random_stream import stream_key
from lstm_textgen.generation.settings import numbers

# Temperatures below this divide as this: logits / 1e-20 stay finite, and as good as greedy.
MIN_TEMPERATURE = 1e-20


def per_row(value, batch, dtype):
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

    A row with top_k 0 and top_p 1 comes back exactly as it went in.
    """
    rows, vocab = tf.shape(logits)[0], tf.shape(logits)[1]
    return _filtered(logits, filter_settings(top_k, top_p, rows, vocab, logits.dtype))


def filter_settings(top_k, top_p, rows, vocab, dtype):
    """What `filter_logits` derives from its settings alone, which a loop computes once:
    the index of each row's k-th largest logit `[B]`, `top_p` `[B, 1]`, and where
    `top_p` keeps every id `[B, 1]`."""
    k = per_row(top_k, rows, tf.int32)
    k = tf.where(k > 0, tf.minimum(k, vocab), vocab)
    p = tf.expand_dims(per_row(top_p, rows, dtype), 1)
    # p >= 1 keeps every id even where the rounded mass before the last ones reaches 1.
    return k - 1, p, p >= 1.0


def _filtered(logits, settings):
    """`filter_logits` with its `filter_settings`."""
    kth_index, p, keep_all = settings
    neg_inf = tf.constant(-math.inf, logits.dtype)
    ranked = tf.sort(logits, axis=-1, direction="DESCENDING")
    kth_largest = tf.expand_dims(tf.gather(ranked, kth_index, batch_dims=1), 1)
    # Cutting the sorted logits below the k-th keeps them sorted: one sort serves both.
    ranked = tf.where(ranked < kth_largest, neg_inf, ranked)
    mass_before = tf.cumsum(tf.nn.softmax(ranked, axis=-1), axis=-1, exclusive=True)
    in_nucleus = (mass_before < p) | keep_all
    cutoff = tf.reduce_min(
        tf.where(in_nucleus, ranked, tf.constant(math.inf, logits.dtype)), axis=-1, keepdims=True
    )
    return tf.where(logits < tf.maximum(cutoff, kth_largest), neg_inf, logits)


class SamplingBatch(NamedTuple):
    """A batch's generation settings inside the graph, one `[B]` tensor per setting of
    `settings.SETTINGS`, and what the sampling loop derives from them once, before its
    first step. Build it with `sampling_batch`.

    `greedy_rows`, `sampled_rows` and `filtering` are scalar booleans: some row picks the
    likeliest id (temperature 0), some row samples, some sampled row filters with top-k or
    top-p. The loop leaves out the parts of a pick that no row asks for.
    """

    num_chars: tf.Tensor  # int32 [B], within its limits
    temperature: tf.Tensor  # float [B]
    top_k: tf.Tensor  # int32 [B]
    top_p: tf.Tensor  # float [B]
    seed: tf.Tensor  # int32 [B]
    start_step: tf.Tensor  # int32 [B], the step of the random stream the first pick draws
    key: tf.Tensor  # uint32 [B], the row's random stream (`stream_key` of its seed)
    stop_ids: tf.Tensor  # int32 [B, S, L], each stop string at the right end, -1 before it
    stop_lengths: tf.Tensor  # int32 [B, S], 0 for an unused slot
    end_id: tf.Tensor  # int32 scalar, the end-of-item id or -1
    divisor: tf.Tensor  # float [B, 1], what a sampled row's logits are divided by
    sampled: tf.Tensor  # bool [B], the rows that sample (temperature > 0)
    unknown: tf.Tensor  # float [1, V]: -inf at the unknown-character id (never picked), else 0
    greedy_rows: tf.Tensor
    sampled_rows: tf.Tensor
    filtering: tf.Tensor
    uneven: tf.Tensor  # bool scalar: some row may end before another (see `sampling_batch`)


def sampling_batch(
    logits, settings, stop_ids=None, stop_lengths=None, end_id=None, start_step=None
):
    """Graph code: the `SamplingBatch` of a batch whose first logits are `logits [B, V]`.

    Args:
        settings: `{name: scalar or [B]}` for the settings of `settings.SETTINGS` but
            `stop` (a setting left out takes its default; `seed` has none). A number the
            table clamps in an export is clamped here (num_chars to 0..MAX_NUM_CHARS).
        stop_ids: optional int32 `[B, S, L]`, each row's stop strings as ids, left-aligned
            (id 0, which is never picked, where a character is outside the vocabulary).
        stop_lengths: int32 `[B, S]`, their lengths; 0 marks an unused slot.
        end_id: the end-of-item id, or None for a model of plain text.
        start_step: scalar or int32 `[B]`, where each row's random stream starts (0 when
            None): a continuation starts at the steps its first part used, so its text is
            what one longer request would have given.
    """
    logits = tf.convert_to_tensor(logits)
    batch = tf.shape(logits)[0]
    vocab = tf.shape(logits)[1]
    unknown = sorted(set(settings) - {s.name for s in numbers()})
    if unknown:
        raise ValueError(f"not a per-row number of the settings table: {unknown}")
    values = {}
    for spec in numbers():
        value = settings.get(spec.name, spec.default)
        if value is None:
            raise ValueError(f"the sampling loop needs {spec.name}")
        value = per_row(value, batch, tf.int32 if spec.is_integer else logits.dtype)
        if spec.in_graph == "clamp":
            value = tf.clip_by_value(
                value,
                tf.constant(spec.minimum, value.dtype),
                tf.constant(spec.maximum, value.dtype),
            )
        values[spec.name] = value
    if stop_ids is None:
        stop_ids = tf.zeros([batch, 1, 1], tf.int32)
        stop_lengths = tf.zeros([batch, 1], tf.int32)
    stop_lengths = tf.cast(stop_lengths, tf.int32)
    t, k, p = values["temperature"], values["top_k"], values["top_p"]
    return SamplingBatch(
        **values,
        start_step=per_row(0 if start_step is None else start_step, batch, tf.int32),
        key=stream_key(values["seed"]),
        stop_ids=_right_aligned(tf.cast(stop_ids, tf.int32), stop_lengths),
        stop_lengths=stop_lengths,
        # -1 is no id: a model of plain text never ends a row by itself.
        end_id=tf.constant(-1 if end_id is None else end_id, tf.int32),
        # Rows with t == 0 take the greedy pick; dividing by 1 there keeps them finite, and
        # the floor keeps logits / t finite for a tiny positive t (the pick's exp of the
        # logits less their max then does the rest).
        divisor=tf.where(t > 0, tf.maximum(t, MIN_TEMPERATURE), tf.ones_like(t))[:, None],
        sampled=t > 0,
        # Id 0 stands for "a character the model never saw"; it must never be emitted.
        unknown=tf.one_hot(UNKNOWN_ID, vocab, on_value=-math.inf, dtype=logits.dtype)[None, :],
        greedy_rows=tf.reduce_any(t <= 0),
        sampled_rows=tf.reduce_any(t > 0),
        filtering=tf.reduce_any((t > 0) & ((k > 0) | (p < 1.0))),
        # Rows end together at their shared num_chars unless a stop string, the end
        # marker or a different num_chars ends one earlier.
        uneven=tf.reduce_any(stop_lengths > 0)
        | (end_id is not None)
        | tf.not_equal(tf.reduce_min(values["num_chars"]), tf.reduce_max(values["num_chars"])),
    )


# The parts of a pick a batch can need: (greedy rows, sampled rows, filtering).
BRANCHES = (
    (True, False, False),
    (False, True, False),
    (True, True, False),
    (False, True, True),
    (True, True, True),
)


def pick(logits, uniform, batch: SamplingBatch, branch, log_probs=False, filters=None):
    """One id per row, by inverting the cumulative distribution at `uniform` `[B]`.

    `branch`, Python booleans (one of `BRANCHES`), says which of the greedy pick, the
    sampled pick and the top-k/top-p filters the batch needs; leaving out what no row asks
    for changes no row's pick (a row that asks for no filter is unchanged by it).

    With `log_probs`, returns `(ids, sampled, model)`: also each pick's log-probability
    under the distribution it was sampled from (after the temperature and the filters; 0
    for a greedy row, whose pick is certain) and under the model's own distribution
    (`log_softmax(logits)`), from the logits this pick computed. `filters`: the batch's
    `filter_settings`, when a loop has computed them once.
    """
    greedy_rows, sampled_rows, filtering = branch
    raw = logits
    # Adding 0 leaves a (finite) logit as it is; a TensorFlow select costs more than an add.
    logits = logits + batch.unknown
    if greedy_rows:
        ids = greedy = tf.argmax(logits, axis=-1, output_type=tf.int32)
    if sampled_rows:
        scaled = logits / batch.divisor
        if filtering:
            if filters is None:
                scaled = filter_logits(scaled, batch.top_k, batch.top_p)
            else:
                scaled = _filtered(scaled, filters)
        # The weights need no normalising: the threshold is a fraction of their total.
        # (TensorFlow's oneDNN softmax also costs several times exp and a sum at batch 32.)
        weights = tf.exp(scaled - tf.reduce_max(scaled, axis=-1, keepdims=True))
        cdf = tf.cumsum(weights, axis=-1)
        # uniform < 1, so the threshold stays below the total and lands on an id of
        # weight > 0.
        # The last cdf entry, as its max: the cdf of non-negative weights never falls.
        threshold = tf.expand_dims(uniform, 1) * tf.reduce_max(cdf, axis=-1, keepdims=True)
        # The number of cdf entries <= threshold (what searchsorted(side="right") returns
        # for a sorted cdf), in ops that LiteRT has as builtins.
        ids = tf.reduce_sum(tf.cast(cdf <= threshold, tf.int32), axis=-1)
        if greedy_rows:
            ids = tf.where(batch.sampled, ids, greedy)
    if not log_probs:
        return ids
    model = tf.gather(tf.nn.log_softmax(raw, axis=-1), ids, batch_dims=1)
    if not sampled_rows:
        return ids, tf.zeros_like(model), model
    sampled = tf.gather(tf.nn.log_softmax(scaled, axis=-1), ids, batch_dims=1)
    if greedy_rows:
        sampled = tf.where(batch.sampled, sampled, tf.zeros_like(sampled))
    return ids, sampled, model


def switch_branches(batch: SamplingBatch, run_branch, uneven=False):
    """`run_branch(branch)` for the one of `BRANCHES` that `batch` needs, each traced as
    its own branch of a `tf.switch_case`. With `uneven`, each branch comes twice, with a
    fourth boolean that says whether some row may end before another (`batch.uneven`)."""
    found = [
        tf.equal(batch.greedy_rows, g)
        & tf.equal(batch.sampled_rows, s)
        & tf.equal(batch.filtering, f)
        for g, s, f in BRANCHES
    ]
    # An empty batch has neither kind of row: it takes the sampled branch.
    index = tf.argmax(tf.cast(tf.stack(found), tf.int32), output_type=tf.int32)
    index = tf.where(tf.reduce_any(tf.stack(found)), index, 1)
    branches = BRANCHES
    if uneven:
        branches = [b + (True,) for b in BRANCHES] + [b + (False,) for b in BRANCHES]
        index += len(BRANCHES) * tf.cast(~batch.uneven, tf.int32)
    return tf.switch_case(index, [lambda b=b: run_branch(b) for b in branches])


def sample_next(logits, uniform, **settings):
    """Pick one id per row.

    Args:
        logits: `[B, V]`.
        uniform: `[B]` floats in [0, 1), the row's random number for this step (from
            `random_stream.hash_uniforms`).
        **settings: temperature (0 picks the most likely id), top_k and top_p (see
            `filter_logits`), each a scalar or `[B]`.

    Returns:
        int32 `[B]`. The unknown-character id is never returned.
    """
    logits = tf.convert_to_tensor(logits)
    uniform = tf.convert_to_tensor(uniform, logits.dtype)
    batch = sampling_batch(logits, {"seed": 0, **settings})
    return switch_branches(batch, lambda branch: pick(logits, uniform, batch, branch))


def _right_aligned(stop_ids, stop_lengths):
    """Stop strings `[B, S, L]` (left-aligned ids) moved to the right end of their `L`
    slots, the rest -1, to compare with the last `L` picks at once."""
    width = tf.shape(stop_ids)[2]
    source = tf.range(width)[None, None, :] - (width - stop_lengths[:, :, None])
    aligned = tf.gather(stop_ids, tf.maximum(source, 0), batch_dims=2)
    return tf.where(source >= 0, aligned, -1)
