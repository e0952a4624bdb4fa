"""`KerasScorer`: a Keras `CharLanguageModel` as a `Scorer` (the one scorer that needs
TensorFlow)."""

from __future__ import annotations

import keras
import tensorflow as tf

from lstm_textgen import stepping
from lstm_textgen.model import CharLanguageModel
from lstm_textgen.scoring import Scorer


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

        @tf.function(reduce_retracing=True)
        def piece_log_probs(ids, state):
            first = stepping.next_logits(model, state)[:, None]
            logits, state = model.logits_and_state(ids, state)
            logits = tf.concat([first, logits[:, :-1]], axis=1)
            log_softmax = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
            return tf.gather(log_softmax, ids, batch_dims=2), state

        self._piece_loss = piece_loss
        self._piece_log_probs = piece_log_probs

    def initial_state(self, batch: int):
        return self.model.initial_state(batch)

    def char_log_probs(self, ids, state):
        log_probs, state = self._piece_log_probs(tf.constant(ids, tf.int32), state)
        return log_probs.numpy(), state

    def summed_loss(self, x, y, state):
        loss, state = self._piece_loss(x, y, state)
        return float(loss), state
