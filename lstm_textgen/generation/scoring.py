"""The one interface text is scored through: a model that gives the summed cross-entropy
of a piece of text from a state, and the state after it.

`evaluate` reads a text through a `Scorer` whatever runs the model: `KerasScorer`
(`lstm_textgen.evaluation.evaluate`) for a run, an export or the shipped model rebuilt in Keras,
`SavedModelScorer` (`lstm_textgen.store.export_layout`) for an export run by its signatures, and
`LiteRTModel` (`lstm_textgen.generation.backends.litert`) for a LiteRT file. This module imports no
TensorFlow, so a LiteRT model implements it without starting TensorFlow.
"""

from __future__ import annotations

import abc

import numpy as np

# Characters read per call when a text is scored one character at a time
# (`scorers.score_text`); a Keras model compiles that length with XLA.
PIECE_CHARS = 1024


def log_softmax(logits):
    """log_softmax over the last axis, in float64 (for scorers that run outside TensorFlow)."""
    logits = np.asarray(logits, np.float64)
    top = logits.max(axis=-1, keepdims=True)
    return logits - top - np.log(np.exp(logits - top).sum(axis=-1, keepdims=True))


class Scorer(abc.ABC):
    """A language model that scores text piece by piece.

    Example:
        state = scorer.initial_state(2)
        nats, state = scorer.summed_loss(x, y, state)  # x, y: int [2, T], y = x shifted
        log_probs, state = scorer.char_log_probs(x, state)  # each of x, from the state
    """

    @abc.abstractmethod
    def initial_state(self, batch: int):
        """The zero state of `batch` rows, in the form `summed_loss` takes and gives."""

    @abc.abstractmethod
    def char_log_probs(self, ids, state) -> tuple[object, object]:
        """The log-probability (nats) of each id of `ids` (int `[B, T]`) given `state` and
        the ids before it, the first one scored from `state` alone (float `[B, T]`); and
        the state after the last."""

    @abc.abstractmethod
    def summed_loss(self, x, y, state) -> tuple[float, object]:
        """The cross-entropy in nats, summed over every position, of targets `y` given
        inputs `x` (both int `[B, T]`) read from `state`; and the state after `x`."""
