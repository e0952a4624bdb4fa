"""Choosing the next character from logits (greedy, temperature, top-k and top-p), and the
one sampling loop every generation path runs, with stop strings and end-of-item markers.

Everything here is TensorFlow graph code (no Python branching on tensor values) so the same
functions run eagerly, in a `tf.function`, inside an exported SavedModel and, converted,
in LiteRT. Every setting is per row, and so is randomness: row r draws its random numbers
from its own seed alone (`hash_uniforms`, a counter-based stream of integer ops that LiteRT
has as builtins), and every other op here works row by row, so a row's text does not
depend on the other rows of its batch (up to how a model's matrix products round a row
at different batch sizes). That is what lets TF Serving merge unrelated requests into
one batch: the same request gives the same text, alone or merged.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import tensorflow as tf

from lstm_textgen.data.vocab import UNKNOWN_ID
from lstm_textgen.generation.request import FINISH_END, FINISH_LENGTH, FINISH_STOP
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
    return _filtered(logits, _filter_settings(top_k, top_p, rows, vocab, logits.dtype))


def _filter_settings(top_k, top_p, rows, vocab, dtype):
    """What `filter_logits` derives from its settings alone, which a loop computes once:
    the index of each row's k-th largest logit `[B]`, `top_p` `[B, 1]`, and where
    `top_p` keeps every id `[B, 1]`."""
    k = per_row(top_k, rows, tf.int32)
    k = tf.where(k > 0, tf.minimum(k, vocab), vocab)
    p = tf.expand_dims(per_row(top_p, rows, dtype), 1)
    # p >= 1 keeps every id even where the rounded mass before the last ones reaches 1.
    return k - 1, p, p >= 1.0


def _filtered(logits, settings):
    """`filter_logits` with its `_filter_settings`."""
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
_BRANCHES = (
    (True, False, False),
    (False, True, False),
    (True, True, False),
    (False, True, True),
    (True, True, True),
)


def _pick(logits, uniform, batch: SamplingBatch, branch, log_probs=False, filters=None):
    """One id per row, by inverting the cumulative distribution at `uniform` `[B]`.

    `branch`, Python booleans (one of `_BRANCHES`), says which of the greedy pick, the
    sampled pick and the top-k/top-p filters the batch needs; leaving out what no row asks
    for changes no row's pick (a row that asks for no filter is unchanged by it).

    With `log_probs`, returns `(ids, sampled, model)`: also each pick's log-probability
    under the distribution it was sampled from (after the temperature and the filters; 0
    for a greedy row, whose pick is certain) and under the model's own distribution
    (`log_softmax(logits)`), from the logits this pick computed. `filters`: the batch's
    `_filter_settings`, when a loop has computed them once.
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


def _switch(batch: SamplingBatch, run_branch, uneven=False):
    """`run_branch(branch)` for the one of `_BRANCHES` that `batch` needs, each traced as
    its own branch of a `tf.switch_case`. With `uneven`, each branch comes twice, with a
    fourth boolean that says whether some row may end before another (`batch.uneven`)."""
    found = [
        tf.equal(batch.greedy_rows, g)
        & tf.equal(batch.sampled_rows, s)
        & tf.equal(batch.filtering, f)
        for g, s, f in _BRANCHES
    ]
    # An empty batch has neither kind of row: it takes the sampled branch.
    index = tf.argmax(tf.cast(tf.stack(found), tf.int32), output_type=tf.int32)
    index = tf.where(tf.reduce_any(tf.stack(found)), index, 1)
    branches = _BRANCHES
    if uneven:
        branches = [b + (True,) for b in _BRANCHES] + [b + (False,) for b in _BRANCHES]
        index += len(_BRANCHES) * tf.cast(~batch.uneven, tf.int32)
    return tf.switch_case(index, [lambda b=b: run_branch(b) for b in branches])


def sample_next(logits, uniform, **settings):
    """Pick one id per row.

    Args:
        logits: `[B, V]`.
        uniform: `[B]` floats in [0, 1), the row's random number for this step (from
            `hash_uniforms`).
        **settings: temperature (0 picks the most likely id), top_k and top_p (see
            `filter_logits`), each a scalar or `[B]`.

    Returns:
        int32 `[B]`. The unknown-character id is never returned.
    """
    logits = tf.convert_to_tensor(logits)
    uniform = tf.convert_to_tensor(uniform, logits.dtype)
    batch = sampling_batch(logits, {"seed": 0, **settings})
    return _switch(batch, lambda branch: _pick(logits, uniform, batch, branch))


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


def _right_aligned(stop_ids, stop_lengths):
    """Stop strings `[B, S, L]` (left-aligned ids) moved to the right end of their `L`
    slots, the rest -1, to compare with the last `L` picks at once."""
    width = tf.shape(stop_ids)[2]
    source = tf.range(width)[None, None, :] - (width - stop_lengths[:, :, None])
    aligned = tf.gather(stop_ids, tf.maximum(source, 0), batch_dims=2)
    return tf.where(source >= 0, aligned, -1)


def _stop_match_length(recent, aligned, stop_lengths):
    """Per row, the length of the longest stop string that the last picks `recent [B, L]`
    end with, 0 where none does."""
    same = tf.equal(aligned, tf.expand_dims(recent, 1)) | tf.equal(aligned, -1)
    # An unused slot (length 0) matches anything and adds its length, 0, to the max.
    return tf.reduce_max(tf.where(tf.reduce_all(same, axis=2), stop_lengths, 0), axis=1)


class Generated(NamedTuple):
    """What `sample_loop` gives back, one row per prompt.

    `ids [B, T]` are the picks (T the steps the loop ran; a row's ids past its length are
    not part of its text), `lengths [B]` the lengths of the texts, `finish [B]` codes of
    `request.FINISH_REASONS`. `state` is each row's state after its last pick (every pick
    it made, a stop string's and the end marker's included) and `steps [B]` the number of
    picks: a continuation starts from `state` at random-stream step `start_step + steps`.
    `logprobs` and `model_logprobs` `[B, T]` are each pick's log-probability under the
    distribution it was sampled from and under the model's own (see `_pick`), 0 past a
    row's length.
    """

    ids: tf.Tensor
    lengths: tf.Tensor
    finish: tf.Tensor
    state: object
    steps: tf.Tensor
    logprobs: tf.Tensor
    model_logprobs: tf.Tensor


def sample_loop(step_fn, logits, state, batch: SamplingBatch, portable=False) -> Generated:
    """Sample up to `num_chars` ids per row, feeding each pick back through `step_fn`,
    until every row has ended.

    A row ends at its `num_chars` (`length`), right before the first of its stop strings
    to be completed (`stop`; the longest of those completed at the same pick), or when
    it picks `end_id` (`end`, the end-of-item marker, left out). The loop stops when every
    row has ended, so a batch costs what its longest row costs; a row that has ended keeps
    its state while the others go on.

    Args:
        step_fn: `(ids [B], state) -> (logits [B, V], state)`; the state is any nest of
            `[B, ...]` tensors whose shapes stay fixed (e.g. the LSTM `(h, c)` of every
            layer).
        logits: `[B, V]`, the distribution of the first id to sample.
        state: the state that goes with `logits`.
        batch: the `SamplingBatch` of the rows (`sampling_batch`); row r draws from
            `hash_uniforms` of its seed, from its `start_step` on.
        portable: build the loop from ops LiteRT has as builtins: each pick is written
            into a `[B, max(num_chars)]` tensor by a select over all of it (TensorArrays of
            an unknown batch size do not convert, and a loop variable that changes shape
            makes LiteRT's WHILE allocate at every step), every row takes every part of
            the pick (greedy, sampled, filtered), which picks the same ids.

    Returns:
        a `Generated`.
    """
    logits = tf.convert_to_tensor(logits)
    rows = tf.shape(logits)[0]
    num_chars = batch.num_chars
    steps = tf.reduce_max(tf.concat([num_chars, [0]], axis=0))
    # The number of picks each row made before it ended, -1 while it goes on; why it ended
    # is read from its picks afterwards. A row asked for no characters has ended at 0.
    ended_at = tf.where(num_chars <= 0, 0, -1)
    # What does not change from step to step is computed here, once.
    filters = _filter_settings(batch.top_k, batch.top_p, rows, tf.shape(logits)[1], logits.dtype)

    def loop(branch):
        pick, uneven = branch[:3], branch[3]

        def body(t, logits, state, record, ended_at, *recent):
            done = ended_at >= 0
            # Greedy rows draw nothing: a batch of them alone skips the random stream.
            sampled_rows = pick[1]
            uniform = stream_uniforms(batch.key, batch.start_step + t) if sampled_rows else None
            chosen = _pick(logits, uniform, batch, pick, True, filters)  # ids, log-probs
            ids = chosen[0]
            if portable:
                at_t = tf.equal(positions, t)
                record = tuple(
                    tf.where(at_t, tf.expand_dims(c, 1), r) for c, r in zip(chosen, record)
                )
            else:
                record = record.write(t, tf.stack([tf.cast(c, tf.float32) for c in chosen], 1))
            picked = t + 1
            ends = tf.equal(ids, batch.end_id) | (picked >= num_chars)
            # Where rows end together, no row has a stop string: no recent picks, no matching.
            if uneven:
                (recent,) = recent
                recent = tf.concat([tf.slice(recent, [0, 1], [-1, -1]), tf.expand_dims(ids, 1)], 1)
                ends |= _stop_match_length(recent, batch.stop_ids, batch.stop_lengths) > 0
                recent = (recent,)
            # ended_at is -1 until the row ends: adding picked + 1 then sets it to picked.
            ended_at += tf.cast(~done & ends, tf.int32) * (picked + 1)
            logits, new_state = step_fn(ids, state)
            # A row that had ended before this pick keeps its state (where rows end
            # together, none has ended before the last pick).
            state = _keep_rows(done, state, new_state) if uneven else new_state
            return (picked, logits, state, record, ended_at, *recent)

        # Each loop variable costs TensorFlow's executor more per step than a small op: the
        # picks and their log-probabilities are recorded as one float32 [B, 3] a step (ids
        # are far below 2^24, so exact as floats). LiteRT's loop keeps three [B, steps]
        # tensors: its select of a [B, 1, 3] row into [B, steps, 3] is slow.
        if portable:
            dtypes = (tf.int32, logits.dtype, logits.dtype)
            record = tuple(tf.zeros([rows, steps], dtype) for dtype in dtypes)
        else:
            record = tf.TensorArray(tf.float32, size=steps, element_shape=[None, 3])
        # The pick before the first is -1, which no stop id equals: a stop string is found
        # in the generated text only, never across the prompt.
        recent = (tf.fill([rows, tf.shape(batch.stop_ids)[2]], -1),) if uneven else ()
        # Every row ends by its num_chars, at the latest after `steps` picks.
        t, _, state_out, record, ended_at_out, *_ = tf.while_loop(
            lambda *loop_vars: tf.reduce_any(loop_vars[4] < 0),
            body,
            (tf.constant(0), logits, state, record, ended_at, *recent),
        )
        if portable:
            picks, logprobs, model_logprobs = record
        else:
            picks, logprobs, model_logprobs = tf.unstack(_recorded(record, t, rows), axis=2)
            picks = tf.cast(picks, tf.int32)
            logprobs, model_logprobs = (
                tf.cast(p, logits.dtype) for p in (logprobs, model_logprobs)
            )
        finish, cut = _how_rows_ended(picks, ended_at_out, batch)
        lengths = ended_at_out - cut
        in_text = tf.range(tf.shape(picks)[1])[None, :] < lengths[:, None]
        return Generated(
            picks,
            lengths,
            finish,
            state_out,
            ended_at_out,
            tf.where(in_text, logprobs, tf.zeros_like(logprobs)),
            tf.where(in_text, model_logprobs, tf.zeros_like(model_logprobs)),
        )

    if portable:
        positions = tf.range(steps)[None, :]
        return loop(_BRANCHES[-1] + (True,))
    return _switch(batch, loop, uneven=True)


def _how_rows_ended(picks, ended_at, batch: SamplingBatch):
    """Why each row ended, from its picks `[B, T]` up to `ended_at [B]`: the finish code
    and how many of its last picks its text leaves out (the end marker, or the stop
    string completed at its last pick; the end marker first, then the longest stop)."""
    rows = tf.shape(picks)[0]
    width = tf.shape(batch.stop_ids)[2]
    # The last `width` picks of each row, -1 before its first (a column of -1 in front,
    # so a row with no picks reads it).
    padded = tf.concat([tf.fill([rows, 1], -1), picks], axis=1)
    positions = ended_at[:, None] - width + tf.range(width)[None, :] + 1
    window = tf.gather(padded, tf.maximum(positions, 0), batch_dims=1)
    ended = tf.equal(window[:, -1], batch.end_id) & (ended_at > 0)
    stop_length = _stop_match_length(window, batch.stop_ids, batch.stop_lengths)
    finish = tf.where(ended, FINISH_END, tf.where(stop_length > 0, FINISH_STOP, FINISH_LENGTH))
    return finish, tf.where(ended, 1, stop_length)


def _keep_rows(kept, old, new):
    """The nest `old` in the rows where `kept [B]` is True, `new` elsewhere (tensors of
    any rank >= 1).

    TensorFlow's v1 `Select` takes a `[B]` condition for whole rows, and in a loop costs
    less than `tf.where` with a broadcast `[B, 1]` mask (docs/performance.md)."""
    return tf.nest.map_structure(lambda o, n: tf.raw_ops.Select(condition=kept, x=o, y=n), old, new)


def _recorded(record, t, rows):
    """The `[B, t, 3]` rows the loop wrote into the TensorArray `record`."""

    def written():
        return tf.transpose(record.gather(tf.range(t)), [1, 0, 2])

    def empty():
        return tf.zeros([rows, 0, 3], tf.float32)

    return tf.cond(t > 0, written, empty)
