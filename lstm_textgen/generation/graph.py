"""Text generation: prime the LSTM state with a prompt, then sample one character at a
time, carrying the state forward, all inside one `tf.function`.

`generate_text` is the one generation graph: strings in, strings out, every setting per
row, from the initial state or from each row's state of an earlier request. `TextGenerator`
(`generation.backends.keras`: the library and `lstm-textgen generate --run`) and the
export's `serving_default` and `continue` signatures all run it; the LiteRT export runs the
same sampling loop.
"""

from __future__ import annotations

import tensorflow as tf

from lstm_textgen.data.vocab import UNKNOWN_ID
from lstm_textgen.generation.request import (
    FINISH_REASONS,
)
from lstm_textgen.generation.sample_loop import Generated, sample_loop
from lstm_textgen.generation.samplers import sampling_batch
from lstm_textgen.generation.settings import (
    MAX_PROMPT_CHARS,
    MAX_STOP_CHARS,
    MAX_STOP_STRINGS,
    SETTINGS,
    START_STEP,
)
from lstm_textgen.generation.signature_state import stacked_state, unstacked_state
from lstm_textgen.model import stepping

# At most 4 bytes a character in UTF-8, and up to 3 more of a character cut in half.
_UTF8_WINDOW = lambda chars: 4 * chars + 3  # noqa: E731


def prime_prompts(model, prompt_ids, state=None):
    """Graph code: the state after each prompt and the logits of what follows it.

    `prompt_ids [B, T]` are right-padded with the unknown id 0; those positions (padding
    and characters the model never saw) are skipped, so prompts of different lengths
    share one batch. `state`: where each prompt starts (the initial state when None).
    """
    state = stepping.prime(
        model, prompt_ids, mask=tf.not_equal(prompt_ids, UNKNOWN_ID), state=state
    )
    return stepping.next_logits(model, state), state


def model_step_fn(model, batch=None):
    """`model.stepping.step` with the weights read once, for a sampling loop of `batch`
    rows (see `stepping.step_weights`)."""
    weights = stepping.step_weights(model, batch)
    return lambda ids, state: stepping.step(model, ids, state, weights)


def generate_ids(
    model, prompt_ids, settings, stop_ids=None, stop_lengths=None, end_id=None, start=None
) -> Generated:
    """Graph code: continue each prompt by up to its row's `num_chars` sampled ids.

    `settings` are as `samplers.sampling_batch` takes them, and so are the stop strings
    and `end_id`; `start`: optional `(state, start_step)` to continue each row from.
    Returns `sample_loop.sample_loop`'s `Generated`.
    """
    state, start_step = (None, None) if start is None else start
    logits, state = prime_prompts(model, prompt_ids, state)
    batch = sampling_batch(logits, settings, stop_ids, stop_lengths, end_id, start_step)
    return sample_loop(model_step_fn(model, tf.shape(logits)[0]), logits, state, batch)


def encode_stop_strings(vocab, stop):
    """Graph code: stop strings `[B, S]` (empty: unused) as left-aligned ids
    `[B, S, MAX_STOP_CHARS]` and their lengths `[B, S]` in characters. A character outside
    the vocabulary gets id 0, which is never generated, so that string never stops a row."""
    codepoints = tf.strings.unicode_decode(stop, "UTF-8", errors="replace")
    ids = vocab.tf_encode_codepoints(codepoints)
    lengths = tf.cast(ids.row_lengths(axis=2).to_tensor(), tf.int32)
    ids = ids.to_tensor(default_value=UNKNOWN_ID)
    width = tf.shape(ids)[2]
    ids = tf.pad(ids, [[0, 0], [0, 0], [0, tf.maximum(MAX_STOP_CHARS - width, 0)]])
    return ids[:, :, :MAX_STOP_CHARS], lengths


def with_end_marker(vocab, prompt_ids):
    """Graph code: an items model's prompts `[B, T]` after the end-of-item marker, so
    each prompt begins a new item; other models' prompts as they are."""
    if vocab.end_id is None:
        return prompt_ids
    marker = tf.fill([tf.shape(prompt_ids)[0], 1], tf.constant(vocab.end_id, prompt_ids.dtype))
    return tf.concat([marker, prompt_ids], axis=1)


def last_characters(text, count: int):
    """Graph code: the last `count` characters of each string `[B]`, as code points
    (ragged `[B, <= count]`), read from the last bytes only so a huge string costs no more
    than a short one. A character cut in half at the window's start decodes to U+FFFD,
    which no vocabulary holds."""
    length = tf.strings.length(text)
    window = _UTF8_WINDOW(count)
    start = tf.maximum(length - window, 0)
    tail = tf.strings.substr(text, start, tf.fill(tf.shape(start), window))
    return tf.strings.unicode_decode(tail, "UTF-8", errors="replace")[:, -count:]


def first_characters(text, count: int):
    """Graph code: the first `count` characters of each string `[B]` (ragged code
    points), read from the first bytes only."""
    window = tf.fill(tf.shape(text), _UTF8_WINDOW(count))
    head = tf.strings.substr(text, tf.zeros_like(window), window)
    return tf.strings.unicode_decode(head, "UTF-8", errors="replace")[:, :count]


def generate_text(model, vocab, prompt, settings, continued=None):
    """Graph code: the continuation of each prompt, with the prompt policy of
    `lstm_textgen.generation.request`.

    Args:
        prompt: string `[B]`. Only its last `MAX_PROMPT_CHARS` characters prime the state;
            characters the model never saw are skipped.
        settings: `{name: [B] tensor}` of every setting of `settings.SETTINGS`, as
            `generate_spec` describes them; `stop` is string `[B, S]`, each row's stop
            strings, an empty one an unused slot.
        continued: optional `{"h", "c", "start_step"}`: each row goes on from that state
            (`[B, layers, units]`) at that step of its random stream, and its prompt is
            read on from there (an items model adds no end-of-item marker). None starts
            every row from the initial state at step 0.

    Returns:
        `{"text", "finish_reason"}` strings `[B]`; `h`, `c` `[B, layers, units]` and
        `next_step [B]`, where each row continues; `logprobs` and `model_logprobs`
        float32 `[B, T]`, the log-probability of each generated character (0 past a row's
        text) under the distribution it was sampled from and under the model's own.
    """
    codepoints = last_characters(prompt, MAX_PROMPT_CHARS)
    prompt_ids = vocab.tf_encode_codepoints(codepoints).to_tensor(default_value=UNKNOWN_ID)
    if continued is None:
        prompt_ids, start, start_step = with_end_marker(vocab, prompt_ids), None, 0
    else:
        state = unstacked_state(continued["h"], continued["c"], model.num_layers)
        start_step = continued[START_STEP.name]
        start = (state, start_step)
    stop_ids, stop_lengths = encode_stop_strings(vocab, settings["stop"])
    numbers = {name: value for name, value in settings.items() if name != "stop"}
    out = generate_ids(model, prompt_ids, numbers, stop_ids, stop_lengths, vocab.end_id, start)
    kept = tf.range(tf.shape(out.ids)[1])[None, :] < out.lengths[:, None]
    state = tf.nest.map_structure(lambda x: tf.cast(x, tf.float32), out.state)
    return {
        "text": vocab.tf_decode(tf.where(kept, out.ids, tf.zeros_like(out.ids))),
        "finish_reason": tf.gather(tf.constant(FINISH_REASONS), out.finish),
        **stacked_state(state),
        "next_step": start_step + out.steps,
        "logprobs": tf.cast(out.logprobs, tf.float32),
        "model_logprobs": tf.cast(out.model_logprobs, tf.float32),
    }


def setting_spec(spec) -> tf.TensorSpec:
    """The `[B]` export input of one setting (`stop`: `[B, MAX_STOP_STRINGS]` strings)."""
    shape = [None] if spec.is_number else [None, MAX_STOP_STRINGS]
    return tf.TensorSpec(shape, tf.as_dtype(spec.dtype), name=spec.name)


def generate_spec():
    """The input signature of `generate_text`, every input batch-first: `prompt`, then
    each setting of `settings.SETTINGS` in its order."""
    return [tf.TensorSpec([None], tf.string, name="prompt")] + [
        setting_spec(spec) for spec in SETTINGS.values()
    ]


def continue_spec(num_layers: int, units: int):
    """The input signature of a continuation: `generate_spec`'s, then `h`, `c`
    `[B, layers, units]` (float32) and `start_step [B]`."""
    return generate_spec() + [
        tf.TensorSpec([None, num_layers, units], tf.float32, name="h"),
        tf.TensorSpec([None, num_layers, units], tf.float32, name="c"),
        tf.TensorSpec([None], tf.as_dtype(START_STEP.dtype), name=START_STEP.name),
    ]


def generate_function(model, vocab):
    """`generate_text` over `generate_spec`'s positional inputs, as a signature takes them."""

    def generate(prompt, *settings):
        return generate_text(model, vocab, prompt, dict(zip(SETTINGS, settings)))

    return generate


def continue_function(model, vocab):
    """`generate_text` over `continue_spec`'s positional inputs."""

    def generate(prompt, *inputs):
        *settings, h, c, start_step = inputs
        continued = {"h": h, "c": c, START_STEP.name: start_step}
        return generate_text(model, vocab, prompt, dict(zip(SETTINGS, settings)), continued)

    return generate
