"""Samplers driven by fake step functions with exact expected strings (keras-hub style)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from lstm_textgen.data.vocab import CharVocabulary
from lstm_textgen.errors import TextgenError
from lstm_textgen.generation.generator import first_stop
from lstm_textgen.generation.random_stream import hash_uniforms
from lstm_textgen.generation.request import GenerationRequest
from lstm_textgen.generation.sample_loop import sample_loop
from lstm_textgen.generation.samplers import (
    filter_logits,
    sample_next,
    sampling_batch,
)

VOCAB = CharVocabulary("abcdefghijklmnopqrstuvwxyz")  # ids 1..26, id 0 unknown
V = VOCAB.size


def next_letter_step(ids, state):
    """Puts almost all probability on the letter after `ids` (z -> a)."""
    following = tf.math.floormod(ids, 26) + 1
    logits = tf.one_hot(following, V, on_value=10.0, off_value=0.0)
    return logits, state + 1


def constant_step(logits_row):
    logits_row = tf.constant(logits_row, tf.float32)

    def step(ids, state):
        return tf.tile(logits_row[None], [tf.shape(ids)[0], 1]), state

    return step


def loop(step, logits, state, num_chars, seed, temperature=1.0, **kwargs):
    """`sample_loop` of these settings; `stop_ids`, `stop_lengths` and `end_id` as
    `sampling_batch` takes them."""
    extra = {k: kwargs.pop(k) for k in ("stop_ids", "stop_lengths", "end_id") if k in kwargs}
    settings = {"num_chars": num_chars, "seed": seed, "temperature": temperature, **kwargs}
    return sample_loop(step, logits, state, sampling_batch(logits, settings, **extra))


def pick(logits, uniform, temperature, top_k=0, top_p=1.0):
    return sample_next(logits, uniform, temperature=temperature, top_k=top_k, top_p=top_p)


def run(step, first_logits, n, seed=0, **kwargs):
    return [text for text, _ in run_with_reasons(step, first_logits, n, seed, **kwargs)]


def run_with_reasons(step, first_logits, n, seed=0, **kwargs):
    """`(text, finish code)` per row of a sampling loop."""
    batch = first_logits.shape[0]
    ids, lengths, finish, *_ = loop(
        step, tf.constant(first_logits, tf.float32), tf.zeros([batch]), n, seed, **kwargs
    )
    return [
        (VOCAB.decode(row[:length]), int(code))
        for row, length, code in zip(ids.numpy(), lengths.numpy(), finish.numpy())
    ]


def stops(rows):
    """Rows of stop strings as the loop's `stop_ids` and `stop_lengths`."""
    width = max(len(row) for row in rows)
    ids = np.zeros((len(rows), width, 16), np.int32)
    lengths = np.zeros((len(rows), width), np.int32)
    for r, row in enumerate(rows):
        for k, s in enumerate(row):
            ids[r, k, : len(s)] = VOCAB.encode(s)
            lengths[r, k] = len(s)
    return {"stop_ids": ids, "stop_lengths": lengths}


def start_at(letter, batch=1):
    row = np.zeros(V, np.float32)
    row[VOCAB.encode(letter)[0]] = 10.0
    return np.tile(row, [batch, 1])


def test_greedy_follows_the_step_function_exactly():
    assert run(next_letter_step, start_at("x", 2), 6, temperature=0.0) == ["xyzabc"] * 2


def test_top_k_1_and_tiny_top_p_are_greedy_even_with_flat_logits():
    rng = np.random.default_rng(0)
    first = rng.normal(size=(3, V)).astype(np.float32)
    step = constant_step(rng.normal(size=V))
    greedy = run(step, first, 8, temperature=0.0)
    assert run(step, first, 8, seed=5, temperature=1.5, top_k=1) == greedy
    assert run(step, first, 8, seed=5, temperature=1.5, top_p=1e-6) == greedy


def test_sampling_with_a_near_certain_distribution_gives_the_exact_string():
    assert run(next_letter_step, start_at("a"), 5, seed=42, temperature=1.0) == ["abcde"]


def test_same_seed_same_text_and_different_seed_different_text():
    flat = constant_step(np.zeros(V))
    first = np.zeros((2, V), np.float32)
    a = run(flat, first, 40, seed=1, temperature=1.0)
    assert a == run(flat, first, 40, seed=1, temperature=1.0)
    assert a != run(flat, first, 40, seed=2, temperature=1.0)


def test_unknown_id_is_never_sampled():
    row = np.zeros(V, np.float32)
    row[0] = 50.0  # the unknown id is by far the likeliest
    ids = loop(constant_step(row), tf.constant(row[None]), tf.zeros([1]), 200, 0, 1.0)[0]
    assert 0 not in ids.numpy()
    greedy = pick(tf.constant(row[None]), [0.5], 0.0)
    assert greedy.numpy()[0] != 0


def test_top_k_only_samples_among_the_k_best():
    row = np.arange(V, dtype=np.float32) * 0.01  # ids 25 and 26 are the top two
    ids = loop(constant_step(row), tf.constant(row[None]), tf.zeros([1]), 300, 3, 1.0, top_k=2)[0]
    assert set(ids.numpy().ravel().tolist()) == {25, 26}


def test_filter_logits_keeps_the_nucleus():
    probs = np.array([[0.05, 0.5, 0.3, 0.15]], np.float32)
    logits = tf.constant(np.log(probs))
    kept = np.isfinite(filter_logits(logits, 0, 0.7).numpy())
    np.testing.assert_array_equal(kept, [[False, True, True, False]])
    kept = np.isfinite(filter_logits(logits, 0, 0.85).numpy())
    np.testing.assert_array_equal(kept, [[False, True, True, True]])
    kept = np.isfinite(filter_logits(logits, 3, 1.0).numpy())
    np.testing.assert_array_equal(kept, [[False, True, True, True]])


def test_per_row_settings():
    first = np.zeros((2, V), np.float32)
    first[:, 3] = 1.0
    ids = pick(tf.constant(first), [0.3, 0.7], tf.constant([0.0, 1.0]), tf.constant([0, 1]))
    assert ids.numpy().tolist() == [3, 3]


def test_inverse_cdf_picks_the_id_whose_interval_holds_the_uniform():
    probs = np.array([0.0, 0.25, 0.5, 0.25], np.float32)  # id 0, the unknown id, has none
    logits = tf.constant(np.log(np.maximum(probs, 1e-30))[None].repeat(5, 0))
    uniforms = [0.0, 0.2499, 0.25, 0.7499, 0.9999]
    assert pick(logits, uniforms, 1.0).numpy().tolist() == [1, 1, 2, 2, 3]


def test_hash_uniforms_depend_on_the_row_seed_and_step_alone():
    together = np.stack([hash_uniforms(tf.constant([5, 9, 5]), t).numpy() for t in range(12)])
    alone = np.stack([hash_uniforms(tf.constant([9]), t).numpy() for t in range(4)])
    np.testing.assert_array_equal(together[:4, 1], alone[:, 0])
    np.testing.assert_array_equal(together[:, 0], together[:, 2])
    assert not np.array_equal(together[:, 0], together[:, 1])
    assert ((together >= 0) & (together < 1)).all()


def test_a_row_samples_the_same_alone_or_merged_with_other_settings():
    rng = np.random.default_rng(3)
    first = rng.normal(size=(6, V)).astype(np.float32)
    table = tf.constant(rng.normal(size=(V, V)).astype(np.float32))

    def step(ids, state):  # the next logits depend on the id just picked
        return tf.gather(table, ids), state

    settings = dict(
        seed=[4, 4, 7, 8, 9, 10],
        temperature=[1.0, 0.5, 0.0, 1.3, 0.9, 1.0],
        top_k=[0, 3, 0, 5, 0, 2],
        top_p=[1.0, 1.0, 0.9, 0.5, 1.0, 0.8],
    )
    merged = loop(step, tf.constant(first), tf.zeros([6]), 30, **settings)[0].numpy()
    for r in range(6):
        one = {name: [values[r]] for name, values in settings.items()}
        alone = loop(step, tf.constant(first[r : r + 1]), tf.zeros([1]), 30, **one)[0]
        np.testing.assert_array_equal(alone.numpy()[0], merged[r])


def test_a_tiny_temperature_is_greedy_and_an_empty_batch_is_empty():
    logits = tf.constant([[0.0, 3.0, 1.0, 2.9], [0.0, -1.0, 5.0, 4.0]])
    picks = pick(logits, [0.99, 0.99], tf.constant([1e-30, 1e-45]))
    assert picks.numpy().tolist() == [1, 2]
    ids = loop(next_letter_step, tf.zeros([0, V]), tf.zeros([0]), 5, [], 1.0)[0]
    assert ids.shape == (0, 0)


def test_filters_leave_a_row_that_asks_for_neither_exactly_as_it_was():
    logits = tf.constant([[30.0, 0.0, -30.0, -60.0, -90.0]])  # the tail rounds to mass 1
    np.testing.assert_array_equal(filter_logits(logits, 0, 1.0).numpy(), logits.numpy())


def test_zero_steps_gives_an_empty_result():
    ids, lengths, finish, *_ = loop(
        next_letter_step, tf.constant(start_at("a", 3)), tf.zeros([3]), 0, 0, 1.0
    )
    assert ids.shape == (3, 0)
    assert lengths.numpy().tolist() == [0] * 3 and finish.numpy().tolist() == [0] * 3


@pytest.mark.parametrize(
    "temperature,top_k,top_p,match",
    [
        (-0.1, 0, 1.0, "temperature"),
        (math.nan, 0, 1.0, "temperature"),
        (1.0, -1, 1.0, "top_k"),
        (1.0, 0, 0.0, "top_p"),
        (1.0, 0, 1.5, "top_p"),
    ],
)
def test_bad_sampling_settings_are_rejected(temperature, top_k, top_p, match):
    with pytest.raises(TextgenError, match=match):
        GenerationRequest("a", temperature=temperature, top_k=top_k, top_p=top_p).checked()


# --- stop strings and end-of-item markers ---------------------------------------------------

LENGTH, STOP, END = 0, 1, 2


def test_a_row_ends_right_before_its_first_stop_string():
    # next_letter_step writes the alphabet from the first letter on.
    got = run_with_reasons(
        next_letter_step,
        start_at("a", 5),
        20,
        temperature=0.0,
        **stops([["def"], ["xyz", "c"], ["bcd", "cd"], ["zzz"], ["a"]]),
    )
    assert got == [
        ("abc", STOP),
        ("ab", STOP),
        ("a", STOP),
        ("abcdefghijklmnopqrst", LENGTH),
        ("", STOP),
    ]


def test_the_loop_agrees_with_the_reference_cut_and_stops_when_every_row_has_ended():
    calls = []

    def counting_step(ids, state):
        calls.append(1)
        return next_letter_step(ids, state)

    rows = [["e"], ["k", "fg"], ["q"]]
    in_graph = tf.function(
        lambda: loop(
            counting_step, tf.constant(start_at("a", 3)), tf.zeros([3]), 2000, 0, 0.0,
            **stops(rows),
        )
    )  # fmt: skip
    ids, lengths, finish, *_ = in_graph()
    full = VOCAB.decode(ids.numpy()[2])
    assert ids.shape[1] == 17  # 'q' is the 17th letter: the loop ran 17 steps, not 2,000
    alphabet = "abcdefghijklmnopqrstuvwxyz"
    for r, row in enumerate(rows):
        found = first_stop(alphabet, row)
        expected = alphabet if found is None else alphabet[: found[0] - found[1]]
        assert VOCAB.decode(ids.numpy()[r][: lengths.numpy()[r]]) == expected
        assert finish.numpy()[r] == (LENGTH if found is None else STOP)
    assert full == "abcdefghijklmnopq"


def test_a_stop_string_is_only_found_in_the_generated_text():
    # The prompt ends in 'a' and the text starts with 'b': "ab" spans both, so no stop.
    got = run_with_reasons(next_letter_step, start_at("b"), 5, temperature=0.0, **stops([["ab"]]))
    assert got == [("bcdef", LENGTH)]


def test_the_end_id_ends_a_row_and_is_left_out():
    end = VOCAB.encode("e")[0]
    got = run_with_reasons(
        next_letter_step, start_at("a", 2), 9, temperature=0.0, end_id=end,
        **stops([[], ["cd"]]),
    )  # fmt: skip
    assert got == [("abcd", END), ("ab", STOP)]


def logits_of(state):
    """The next logits of a `drifting_step` state, as a model's head gives them."""
    phase = state[:, None] * 0.37 + tf.range(V, dtype=tf.float32)[None, :]
    return 2.0 * tf.sin(phase)


def drifting_step(ids, state):
    """Logits that depend on the state, which every pick moves: a continuation that
    started from the wrong state or step would give other text."""
    state = state * 0.9 + tf.cast(ids, tf.float32)
    return logits_of(state), state


def continued_loop(num_chars, start_step, state, **settings):
    logits = logits_of(state)
    batch = sampling_batch(logits, {"num_chars": num_chars, **settings}, start_step=start_step)
    return sample_loop(drifting_step, logits, state, batch)


SETTINGS_OF_TWO_ROWS = {"seed": [3, 8], "temperature": [1.0, 0.7], "top_k": [0, 5]}


def test_four_continued_loops_give_the_text_and_state_of_one():
    start = tf.constant([1.0, 2.0])
    whole = continued_loop(40, 0, start, **SETTINGS_OF_TWO_ROWS)
    state, step, pieces = start, 0, []
    for _ in range(4):
        part = continued_loop(10, step, state, **SETTINGS_OF_TWO_ROWS)
        np.testing.assert_array_equal(part.steps.numpy(), [10, 10])
        pieces.append(part.ids.numpy())
        state, step = part.state, step + 10
    np.testing.assert_array_equal(np.concatenate(pieces, axis=1), whole.ids.numpy())
    np.testing.assert_allclose(state.numpy(), whole.state.numpy(), rtol=1e-6)
    # Continuing at another step of the stream is other text.
    other = continued_loop(10, 0, whole.state, **SETTINGS_OF_TWO_ROWS)
    shifted = continued_loop(10, 5, whole.state, **SETTINGS_OF_TWO_ROWS)
    assert not np.array_equal(other.ids.numpy(), shifted.ids.numpy())


def test_a_row_that_ended_keeps_its_state_while_the_others_go_on():
    start = tf.constant([1.0, 2.0])
    short = continued_loop([4, 30], 0, start, **SETTINGS_OF_TWO_ROWS)
    alone = continued_loop(4, 0, start[:1], seed=3, temperature=1.0)
    assert short.ids.shape[1] == 30
    np.testing.assert_array_equal(short.steps.numpy(), [4, 30])
    np.testing.assert_allclose(short.state.numpy()[0], alone.state.numpy()[0], rtol=1e-6)


def test_rows_that_end_together_take_the_even_path_with_the_same_picks_and_state():
    start = tf.constant([1.0, 2.0])
    logits = logits_of(start)
    settings = {"num_chars": 20, **SETTINGS_OF_TWO_ROWS}
    even = sampling_batch(logits, settings)
    # A stop string of the unknown id, which is never picked: the loop must keep ended
    # rows (the uneven path), and no row ends early.
    never = sampling_batch(logits, settings, np.zeros([2, 1, 1], np.int32), [[1], [1]])
    assert not even.uneven.numpy() and never.uneven.numpy()
    assert sampling_batch(logits, {**settings, "num_chars": [20, 19]}).uneven.numpy()
    assert sampling_batch(logits, settings, end_id=3).uneven.numpy()
    a = sample_loop(drifting_step, logits, start, even)
    b = sample_loop(drifting_step, logits, start, never)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.numpy(), y.numpy())


@pytest.mark.parametrize("portable", [False, True])
def test_log_probs_are_the_log_softmax_of_the_distribution_each_pick_came_from(portable):
    # Distinct logits: the filters keep every logit tied with the last one they keep.
    row = np.log(np.arange(V, dtype=np.float32) * 0.37 % 3.1 + 0.01)
    step = constant_step(row)
    first = tf.constant(np.stack([row] * 4))
    settings = {
        "num_chars": 50,
        "seed": [1, 2, 3, 4],
        "temperature": [0.0, 1.0, 0.5, 2.0],
        "top_k": [0, 0, 3, 0],
        "top_p": [1.0, 1.0, 1.0, 0.6],
    }
    batch = sampling_batch(first, settings)
    out = sample_loop(step, first, tf.zeros([4]), batch, portable=portable)
    ids = out.ids.numpy()
    shifted = row - row.max()
    model = shifted - np.log(np.exp(shifted).sum())
    np.testing.assert_allclose(out.model_logprobs.numpy(), model[ids], atol=1e-5)
    sampled = out.logprobs.numpy()
    np.testing.assert_array_equal(sampled[0], 0.0)  # greedy: the pick is certain
    for r, (t, k, p) in enumerate([(1.0, 0, 1.0), (0.5, 3, 1.0), (2.0, 0, 0.6)], start=1):
        scaled = np.where(np.arange(V) == 0, -np.inf, row / t)
        kept = np.argsort(-scaled)
        if k:
            scaled[kept[k:]] = -np.inf
        if p < 1.0:
            probs = np.exp(scaled - scaled.max())
            probs /= probs.sum()
            before = np.cumsum(probs[kept]) - probs[kept]
            scaled[kept[before >= p]] = -np.inf
        log_softmax = scaled - scaled.max() - np.log(np.exp(scaled - scaled.max()).sum())
        np.testing.assert_allclose(sampled[r], log_softmax[ids[r]], atol=1e-5, err_msg=str(r))
