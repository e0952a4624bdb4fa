"""The one sampling loop every generation path runs: picks fed back through the model until
every row has ended at its length, right before a stop string, or at its end-of-item marker.

Graph code, like `samplers`: it runs eagerly, in a `tf.function`, inside an exported
SavedModel and, converted, in LiteRT. Row r draws from `random_stream.hash_uniforms` of its
own seed, and every op works row by row, so a row's text does not depend on the rows beside
it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import tensorflow as tf

from lstm_textgen.generation.random_stream import stream_uniforms
from lstm_textgen.generation.request import FINISH_END, FINISH_LENGTH, FINISH_STOP
from lstm_textgen.generation.samplers import (
    BRANCHES,
    SamplingBatch,
    filter_settings,
    pick,
    switch_branches,
)


class Generated(NamedTuple):
    """What `sample_loop` gives back, one row per prompt.

    `ids [B, T]` are the picks (T the steps the loop ran; a row's ids past its length are
    not part of its text), `lengths [B]` the lengths of the texts, `finish [B]` codes of
    `request.FINISH_REASONS`. `state` is each row's state after its last pick (every pick
    it made, a stop string's and the end marker's included) and `steps [B]` the number of
    picks: a continuation starts from `state` at random-stream step `start_step + steps`.
    `logprobs` and `model_logprobs` `[B, T]` are each pick's log-probability under the
    distribution it was sampled from and under the model's own (see `samplers.pick`), 0
    past a row's length.
    """

    ids: tf.Tensor
    lengths: tf.Tensor
    finish: tf.Tensor
    state: object
    steps: tf.Tensor
    logprobs: tf.Tensor
    model_logprobs: tf.Tensor


class _Loop(NamedTuple):
    """What every step of one sampling loop reads, computed once before its first step."""

    step_fn: Callable  # (ids [B], state) -> (logits [B, V], state)
    batch: SamplingBatch
    filters: tuple  # the batch's `samplers.filter_settings`
    rows: tf.Tensor  # int32 scalar, B
    steps: tf.Tensor  # int32 scalar, max(num_chars): every row has ended by then
    portable: bool
    positions: tf.Tensor | None = None  # int32 [1, steps], where `portable` records picks


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
    filters = filter_settings(batch.top_k, batch.top_p, rows, tf.shape(logits)[1], logits.dtype)
    loop = _Loop(step_fn, batch, filters, rows, steps, portable)
    if portable:
        loop = loop._replace(positions=tf.range(steps)[None, :])
        return _run_loop(loop, logits, state, ended_at, BRANCHES[-1] + (True,))
    return switch_branches(
        batch, functools.partial(_run_loop, loop, logits, state, ended_at), uneven=True
    )


def _run_loop(loop: _Loop, logits, state, ended_at, branch) -> Generated:
    """The loop of one branch: `branch` is one of `samplers.BRANCHES` (the parts of a pick
    the batch needs) and a fourth boolean, whether some row may end before another."""
    uneven = branch[3]
    # Each loop variable costs TensorFlow's executor more per step than a small op: the
    # picks and their log-probabilities are recorded as one float32 [B, 3] a step (ids
    # are far below 2^24, so exact as floats). LiteRT's loop keeps three [B, steps]
    # tensors: its select of a [B, 1, 3] row into [B, steps, 3] is slow.
    if loop.portable:
        dtypes = (tf.int32, logits.dtype, logits.dtype)
        record = tuple(tf.zeros([loop.rows, loop.steps], dtype) for dtype in dtypes)
    else:
        record = tf.TensorArray(tf.float32, size=loop.steps, element_shape=[None, 3])
    # The pick before the first is -1, which no stop id equals: a stop string is found
    # in the generated text only, never across the prompt.
    recent = (tf.fill([loop.rows, tf.shape(loop.batch.stop_ids)[2]], -1),) if uneven else ()
    # Every row ends by its num_chars, at the latest after `steps` picks.
    t, _, state_out, record, ended_at_out, *_ = tf.while_loop(
        _some_row_goes_on,
        functools.partial(_loop_step, loop, branch),
        (tf.constant(0), logits, state, record, ended_at, *recent),
    )
    return _generated(loop, record, t, state_out, ended_at_out, logits.dtype)


def _some_row_goes_on(t, logits, state, record, ended_at, *recent):
    """The loop's condition: some row has not ended."""
    return tf.reduce_any(ended_at < 0)


def _loop_step(loop: _Loop, branch, t, logits, state, record, ended_at, *recent):
    """One step of `_run_loop`: pick, record, see which rows end, feed the picks back."""
    parts, uneven = branch[:3], branch[3]
    batch = loop.batch
    done = ended_at >= 0
    # Greedy rows draw nothing: a batch of them alone skips the random stream.
    sampled_rows = parts[1]
    uniform = stream_uniforms(batch.key, batch.start_step + t) if sampled_rows else None
    chosen = pick(logits, uniform, batch, parts, True, loop.filters)  # ids, log-probs
    ids = chosen[0]
    if loop.portable:
        at_t = tf.equal(loop.positions, t)
        record = tuple(tf.where(at_t, tf.expand_dims(c, 1), r) for c, r in zip(chosen, record))
    else:
        record = record.write(t, tf.stack([tf.cast(c, tf.float32) for c in chosen], 1))
    picked = t + 1
    ends = tf.equal(ids, batch.end_id) | (picked >= batch.num_chars)
    # Where rows end together, no row has a stop string: no recent picks, no matching.
    if uneven:
        (recent,) = recent
        recent = tf.concat([tf.slice(recent, [0, 1], [-1, -1]), tf.expand_dims(ids, 1)], 1)
        ends |= _stop_match_length(recent, batch.stop_ids, batch.stop_lengths) > 0
        recent = (recent,)
    # ended_at is -1 until the row ends: adding picked + 1 then sets it to picked.
    ended_at += tf.cast(~done & ends, tf.int32) * (picked + 1)
    logits, new_state = loop.step_fn(ids, state)
    # A row that had ended before this pick keeps its state (where rows end
    # together, none has ended before the last pick).
    state = _keep_rows(done, state, new_state) if uneven else new_state
    return (picked, logits, state, record, ended_at, *recent)


def _generated(loop: _Loop, record, t, state, ended_at, dtype) -> Generated:
    """The `Generated` of a finished loop: its `record` after `t` steps, the rows' final
    `state` and `ended_at`; `dtype` is the logits'."""
    if loop.portable:
        picks, logprobs, model_logprobs = record
    else:
        picks, logprobs, model_logprobs = tf.unstack(_recorded(record, t, loop.rows), axis=2)
        picks = tf.cast(picks, tf.int32)
        logprobs, model_logprobs = (tf.cast(p, dtype) for p in (logprobs, model_logprobs))
    finish, cut = _how_rows_ended(picks, ended_at, loop.batch)
    lengths = ended_at - cut
    in_text = tf.range(tf.shape(picks)[1])[None, :] < lengths[:, None]
    return Generated(
        picks,
        lengths,
        finish,
        state,
        ended_at,
        tf.where(in_text, logprobs, tf.zeros_like(logprobs)),
        tf.where(in_text, model_logprobs, tf.zeros_like(model_logprobs)),
    )


def _stop_match_length(recent, aligned, stop_lengths):
    """Per row, the length of the longest stop string that the last picks `recent [B, L]`
    end with, 0 where none does."""
    same = tf.equal(aligned, tf.expand_dims(recent, 1)) | tf.equal(aligned, -1)
    # An unused slot (length 0) matches anything and adds its length, 0, to the max.
    return tf.reduce_max(tf.where(tf.reduce_all(same, axis=2), stop_lengths, 0), axis=1)


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
