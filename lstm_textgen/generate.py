"""Text generation: prime the LSTM state with a prompt, then sample one character at a
time, carrying the state forward, all inside one `tf.function`."""

from __future__ import annotations

import random

import numpy as np
import tensorflow as tf

from lstm_textgen.errors import TextgenError
from lstm_textgen.model import CharLanguageModel
from lstm_textgen.rows import check_sampling_args
from lstm_textgen.samplers import sample_loop
from lstm_textgen.vocab import UNKNOWN_ID, CharVocabulary

MAX_SEED = 2**31 - 1


def prime_prompts(model, prompt_ids):
    """Graph code: the state after each prompt and the logits of what follows it.

    `prompt_ids [B, T]` are right-padded with the unknown id 0; those positions (padding
    and characters the model never saw) are skipped, so prompts of different lengths
    share one batch.
    """
    state = model.prime(prompt_ids, mask=tf.not_equal(prompt_ids, UNKNOWN_ID))
    return model.next_logits(state), state


def generate_ids(model, prompt_ids, num_chars, temperature, top_k, top_p, seed):
    """Graph code: continue each prompt by `num_chars` sampled ids; int32 `[B, num_chars]`."""
    logits, state = prime_prompts(model, prompt_ids)
    return sample_loop(
        model_step_fn(model), logits, state, num_chars, seed, temperature, top_k, top_p
    )


def model_step_fn(model):
    """`model.step` with the weights read once, for a sampling loop."""
    weights = model.step_weights()
    return lambda ids, state: model.step(ids, state, weights)


def encode_prompts(vocab: CharVocabulary, prompts) -> np.ndarray:
    """Prompts as ids `[B, T]`, right-padded with the unknown id."""
    encoded = [vocab.encode(p) for p in prompts]
    width = max((len(e) for e in encoded), default=0)
    ids = np.full((len(encoded), width), UNKNOWN_ID, dtype=np.int32)
    for row, e in enumerate(encoded):
        ids[row, : len(e)] = e
    return ids


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
        self._generate_ids = tf.function(
            lambda ids, n, t, k, p, s: generate_ids(self.model, ids, n, t, k, p, s),
            input_signature=[
                tf.TensorSpec([None, None], tf.int32),
                tf.TensorSpec([], tf.int32),
                tf.TensorSpec([], tf.float32),
                tf.TensorSpec([], tf.int32),
                tf.TensorSpec([], tf.float32),
                tf.TensorSpec([], tf.int64),
            ],
        )

    def unknown_characters(self, prompts) -> list[str]:
        """Prompt characters outside the vocabulary; generation skips them."""
        return self.vocab.unknown_characters("".join(prompts))

    def generate(
        self,
        prompts,
        num_chars: int = 500,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int | None = None,
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
            seed: the same seed gives the same text; None picks one at random.
        """
        if isinstance(prompts, str):
            prompts = [prompts]
        prompts = list(prompts)
        if not prompts:
            raise TextgenError("give at least one prompt")
        if num_chars < 0:
            raise TextgenError(f"num-chars must be >= 0, got {num_chars}")
        check_sampling_args(temperature, top_k, top_p)
        if seed is None:
            seed = random.randint(0, MAX_SEED)
        elif not 0 <= seed < 2**63:
            raise TextgenError(f"seed must be in [0, 2**63), got {seed}")
        ids = self._generate_ids(
            tf.constant(encode_prompts(self.vocab, prompts)),
            tf.constant(num_chars, tf.int32),
            tf.constant(temperature, tf.float32),
            tf.constant(top_k, tf.int32),
            tf.constant(top_p, tf.float32),
            tf.constant(seed, tf.int64),
        )
        return [self.vocab.decode(row) for row in ids.numpy()]
