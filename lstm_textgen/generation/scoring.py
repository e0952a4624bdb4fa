"""The one interface text is scored through: a model that gives the summed cross-entropy
of a piece of text from a state, and the state after it; and `score_text`, each
character's log-probability read through it.

`evaluate` and `score` read a text through a `Scorer` whatever runs the model (the
classes are in `generation.backends`): `KerasScorer` for a run, an export or the shipped
model rebuilt in Keras, `SavedModelScorer` for an export run by its signatures, and
`LiteRTModel` for a LiteRT file. This module imports no TensorFlow, so a LiteRT model
implements it without starting TensorFlow.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np

from lstm_textgen.data.vocab import UNKNOWN_ID, CharVocabulary

# Characters read per call when a text is scored one character at a time
# (`score_text`); a Keras model compiles that length with XLA.
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


@dataclass(frozen=True)
class ScoredChar:
    """One character of a scored text and its log-probability in nats (None for a
    character outside the vocabulary, which is skipped: the state does not read it)."""

    char: str
    logprob: float | None


def score_text(scorer: Scorer, vocab: CharVocabulary, text: str, piece: int = PIECE_CHARS):
    """Each character of `text` with its log-probability under the model, read from the
    initial state (after the end-of-item marker for a model of items) with the state
    carried from piece to piece of `piece` known characters; yields `ScoredChar`s."""
    state = scorer.initial_state(1)
    if vocab.end_id is not None:
        _, state = scorer.char_log_probs(np.array([[vocab.end_id]], np.int32), state)
    ids = vocab.encode(text)
    for start in range(0, len(text), piece):
        chunk = ids[start : start + piece]
        known = np.array([[i for i in chunk if i != UNKNOWN_ID]], np.int32)
        log_probs = iter(())
        if known.size:
            scores, state = scorer.char_log_probs(known, state)
            log_probs = iter(scores[0].tolist())
        for offset, i in enumerate(chunk):
            yield ScoredChar(text[start + offset], next(log_probs) if i != UNKNOWN_ID else None)
