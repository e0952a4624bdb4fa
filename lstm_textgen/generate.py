"""Text generation: prime the LSTM state with a prompt, then sample one character at a
time, carrying the state forward, all inside one `tf.function`.

`generate_text` is the one generation graph: strings in, strings out, every setting per
row. `TextGenerator` (the library and `lstm-textgen generate --run`) and the export's
`serving_default` signature both run it.
"""

from __future__ import annotations

import tensorflow as tf

from lstm_textgen.errors import TextgenError
from lstm_textgen.model import CharLanguageModel
from lstm_textgen.rows import row_settings
from lstm_textgen.samplers import per_row, sample_loop
from lstm_textgen.vocab import UNKNOWN_ID, CharVocabulary

# At most 4 bytes a character in UTF-8, and up to 3 more of a character cut in half.
_UTF8_WINDOW = lambda chars: 4 * chars + 3  # noqa: E731


def prime_prompts(model, prompt_ids):
    """Graph code: the state after each prompt and the logits of what follows it.

    `prompt_ids [B, T]` are right-padded with the unknown id 0; those positions (padding
    and characters the model never saw) are skipped, so prompts of different lengths
    share one batch.
    """
    state = model.prime(prompt_ids, mask=tf.not_equal(prompt_ids, UNKNOWN_ID))
    return model.next_logits(state), state


def model_step_fn(model):
    """`model.step` with the weights read once, for a sampling loop."""
    weights = model.step_weights()
    return lambda ids, state: model.step(ids, state, weights)


def generate_ids(model, prompt_ids, num_chars, temperature, top_k, top_p, seed):
    """Graph code: continue each prompt by its row's `num_chars` sampled ids.

    Every setting is a scalar or `[B]`. Returns int32 `[B, max(num_chars)]`; a row's ids
    past its own `num_chars` are the unknown id, which decodes to nothing.
    """
    logits, state = prime_prompts(model, prompt_ids)
    num_chars = per_row(num_chars, tf.shape(logits)[0], tf.int32)
    steps = tf.reduce_max(tf.concat([num_chars, [0]], axis=0))
    picks = sample_loop(model_step_fn(model), logits, state, steps, seed, temperature, top_k, top_p)
    wanted = tf.range(steps)[None, :] < num_chars[:, None]
    return tf.where(wanted, picks, tf.zeros_like(picks))


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


def generate_text(
    model,
    vocab,
    prompt,
    num_chars,
    temperature,
    top_k,
    top_p,
    seed,
    max_prompt_chars: int | None = None,
    max_num_chars: int | None = None,
):
    """Graph code: the continuation of each prompt, as a string `[B]`.

    Args:
        prompt: string `[B]`. Only its last `max_prompt_chars` characters prime the state
            (all of it if None); characters the model never saw are skipped.
        num_chars, temperature, top_k, top_p, seed: `[B]` (or scalars), per row. A
            negative `num_chars` is 0, and at most `max_num_chars` are generated.
    """
    if max_prompt_chars is None:
        codepoints = tf.strings.unicode_decode(prompt, "UTF-8", errors="replace")
    else:
        codepoints = last_characters(prompt, max_prompt_chars)
    prompt_ids = vocab.tf_encode_codepoints(codepoints).to_tensor(default_value=UNKNOWN_ID)
    num_chars = tf.maximum(tf.cast(num_chars, tf.int32), 0)
    if max_num_chars is not None:
        num_chars = tf.minimum(num_chars, max_num_chars)
    ids = generate_ids(model, prompt_ids, num_chars, temperature, top_k, top_p, seed)
    return vocab.tf_decode(ids)


def generate_spec():
    """The input signature of `generate_text`'s six inputs, every one `[B]`."""
    return [
        tf.TensorSpec([None], tf.string, name="prompt"),
        tf.TensorSpec([None], tf.int32, name="num_chars"),
        tf.TensorSpec([None], tf.float32, name="temperature"),
        tf.TensorSpec([None], tf.int32, name="top_k"),
        tf.TensorSpec([None], tf.float32, name="top_p"),
        tf.TensorSpec([None], tf.int64, name="seed"),
    ]


class TextGenerator:
    """Samples text from a trained `CharLanguageModel`.

    Args:
        model: the trained model.
        vocab: the run's `CharVocabulary`.

    Example:

    >>> generator = TextGenerator(model, vocab)
    >>> generator.generate(["ROMEO:"], num_chars=100, temperature=0.8, seed=1)
    """

    def __init__(self, model: CharLanguageModel, vocab: CharVocabulary):
        if model.vocab_size != vocab.size:
            raise TextgenError(
                f"model predicts {model.vocab_size} ids but the vocabulary has {vocab.size}"
            )
        self.model = model
        self.vocab = vocab
        self._generate = tf.function(
            lambda *inputs: generate_text(self.model, self.vocab, *inputs),
            input_signature=generate_spec(),
        )

    def unknown_characters(self, prompts) -> list[str]:
        """Prompt characters outside the vocabulary; generation skips them."""
        return self.vocab.unknown_characters("".join(prompts))

    def generate(
        self,
        prompts,
        num_chars=500,
        temperature=1.0,
        top_k=0,
        top_p=1.0,
        seed=None,
    ) -> list[str]:
        """The continuation of each prompt (the prompt itself not included).

        Args:
            prompts: a string or a list of strings; unknown characters are skipped, and an
                empty prompt starts from the zero state.
            num_chars: characters to generate per prompt.
            temperature: 0 is greedy; higher is more random.
            top_k: sample among the k most likely characters (0: all).
            top_p: sample among the most likely characters whose probability adds up to
                top_p (1: all).
            seed: the same seed gives the same text; None picks one at random. Several
                prompts get `seed`, `seed + 1`, ... (or a list gives one each).

        Every setting but `prompts` may also be a list with one value per prompt. A
        prompt's text depends only on its own settings, not on the other prompts.
        """
        if isinstance(prompts, str):
            prompts = [prompts]
        prompts = list(prompts)
        if not prompts:
            raise TextgenError("give at least one prompt")
        rows = row_settings(len(prompts), num_chars, temperature, top_k, top_p, seed)
        texts = self._generate(
            tf.constant(prompts, tf.string),
            tf.constant(rows["num_chars"], tf.int32),
            tf.constant(rows["temperature"], tf.float32),
            tf.constant(rows["top_k"], tf.int32),
            tf.constant(rows["top_p"], tf.float32),
            tf.constant(rows["seed"], tf.int64),
        )
        return [t.decode("utf-8") for t in texts.numpy()]
