"""Loss of a model on a text, in nats and bits per character: the text cut into
windows as in training, or read as streams with a carried state, through a `Scorer`.

Training validates with these; `evaluation.run` finds the model and the text of a run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from lstm_textgen.config import bits
from lstm_textgen.data import id_file
from lstm_textgen.data import windows as data
from lstm_textgen.data.vocab import UNKNOWN_ID, CharVocabulary
from lstm_textgen.generation.scoring import Scorer

log = logging.getLogger("lstm_textgen")


@dataclass
class Evaluation:
    nats_per_char: float
    num_chars: int
    unknown_chars: int

    @property
    def bits_per_char(self) -> float:
        return bits(self.nats_per_char)


def evaluate_text(
    scorer: Scorer,
    vocab: CharVocabulary,
    text: str,
    seq_len: int,
    batch_size: int = 64,
    carry_state: bool = False,
) -> Evaluation:
    """Mean cross-entropy of every predicted character of `text`.

    By default the text is cut into windows of `seq_len` as in training, each starting
    from the zero state, so the first characters of every window are guessed with little
    context. With `carry_state` the text is read as `batch_size` contiguous streams whose
    state carries from one window to the next, as in generation: only each stream's start
    lacks context. Characters outside the vocabulary still count (the model gives them
    almost no probability), and their number is reported.

    Args:
        scorer: the model, as a `Scorer`: `KerasScorer(model)` for a Keras model, or a
            `litert.LiteRTModel`.
    """
    data.check_length(text, seq_len, "evaluation")
    return evaluate_ids(scorer, id_file.encode_text(text, vocab), seq_len, batch_size, carry_state)


def evaluate_ids(
    scorer: Scorer, ids, seq_len: int, batch_size: int = 64, carry_state: bool = False
) -> Evaluation:
    """`evaluate_text` for a text already encoded: an array of ids or a `id_file.IdFile`,
    which is read from disk a batch at a time."""
    data.check_length(ids, seq_len, "evaluation")
    if carry_state:
        return _evaluate_streams(scorer, ids, seq_len, batch_size)
    total, count, unknown = 0.0, 0, 0
    for x, y in data.make_dataset(ids, seq_len, batch_size):
        x, y = x.numpy(), y.numpy()
        loss, _ = scorer.summed_loss(x, y, scorer.initial_state(len(x)))
        total += loss
        count += y.size
        unknown += int((y == UNKNOWN_ID).sum())
    return Evaluation(total / count, count, unknown)


def _read_rows(ids, starts, width: int) -> np.ndarray:
    if isinstance(ids, id_file.IdFile):
        return ids.read_windows(np.asarray(starts), width).astype(np.int32)
    return np.stack([ids[s : s + width] for s in starts]).astype(np.int32)


def _evaluate_streams(scorer: Scorer, ids, seq_len, streams) -> Evaluation:
    streams = max(1, min(streams, (len(ids) - 1) // seq_len))
    length = (len(ids) - 1) // streams  # targets per stream; up to streams - 1 are left out
    state = scorer.initial_state(streams)
    total, unknown = 0.0, 0
    for start in range(0, length, seq_len):
        stop = min(start + seq_len, length)
        rows = _read_rows(ids, [k * length + start for k in range(streams)], stop - start + 1)
        loss, state = scorer.summed_loss(rows[:, :-1], rows[:, 1:], state)
        total += loss
        unknown += int((rows[:, 1:] == UNKNOWN_ID).sum())
    count = streams * length
    return Evaluation(total / count, count, unknown)
