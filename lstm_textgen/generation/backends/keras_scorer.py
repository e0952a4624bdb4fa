"""`KerasScorer`: a Keras `CharLanguageModel` as a `Scorer` (the one scorer that needs
TensorFlow)."""

from __future__ import annotations

import keras
import tensorflow as tf

from lstm_textgen.generation.scoring import PIECE_CHARS, Scorer
from lstm_textgen.model import stepping
from lstm_textgen.model.language_model import CharLanguageModel


class KerasScorer(Scorer):
    """A `CharLanguageModel` (from a run, an export or the shipped model) as a `Scorer`.

    Args:
        model: the Keras model; its pieces are scored in one compiled function.
    """

    def __init__(self, model: CharLanguageModel):
        self.model = model
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum")

        @tf.function
        def piece_loss(x, y, state):
            logits, state = model.logits_and_state(x, state)
            return loss_fn(y, logits), state

        def piece_log_probs(ids, state):
            first = stepping.next_logits(model, state)[:, None]
            logits, state = model.logits_and_state(ids, state)
            logits = tf.concat([first, logits[:, :-1]], axis=1)
            log_softmax = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
            return tf.gather(log_softmax, ids, batch_dims=2), state

        self._piece_loss = piece_loss
        self._piece_log_probs = tf.function(piece_log_probs, reduce_retracing=True)
        # A long text is read in pieces of PIECE_CHARS characters: under XLA the
        # one-character steps run about twice as fast (scripts/score_rate.py), for a
        # compilation of about two seconds that a short text would not win back.
        self._piece_log_probs_xla = tf.function(piece_log_probs, jit_compile=True)

    def initial_state(self, batch: int):
        return self.model.initial_state(batch)

    def char_log_probs(self, ids, state):
        ids = tf.constant(ids, tf.int32)
        run = self._piece_log_probs_xla if ids.shape[1] == PIECE_CHARS else self._piece_log_probs
        log_probs, state = run(ids, state)
        return log_probs.numpy(), state

    def summed_loss(self, x, y, state):
        loss, state = self._piece_loss(x, y, state)
        return float(loss), state
