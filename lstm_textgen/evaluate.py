"""Loss of a trained model on a text, in nats and bits per character."""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from lstm_textgen import data
from lstm_textgen.config import load_run_config
from lstm_textgen.model import CharLanguageModel
from lstm_textgen.train import load_trained_model
from lstm_textgen.vocab import UNKNOWN_ID, CharVocabulary


@dataclass
class Evaluation:
    nats_per_char: float
    num_chars: int
    unknown_chars: int

    @property
    def bits_per_char(self) -> float:
        return self.nats_per_char / math.log(2.0)


def evaluate_text(
    model: CharLanguageModel,
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
    """
    data.check_length(text, seq_len, "evaluation")
    ids = data.encode_text(text, vocab)
    if carry_state:
        return _evaluate_streams(model, ids, seq_len, batch_size)
    dataset = data.make_dataset(ids, seq_len, batch_size)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum")

    @tf.function
    def batch_loss(x, y):
        return loss_fn(y, model(x, training=False)), tf.size(y)

    total, count = 0.0, 0
    for x, y in dataset:
        loss, n = batch_loss(x, y)
        total += float(loss)
        count += int(n)
    targets = ids[1 : data.count_windows(len(ids), seq_len) * seq_len + 1]
    return Evaluation(total / count, count, int((targets == UNKNOWN_ID).sum()))


def _evaluate_streams(model, ids, seq_len, streams) -> Evaluation:
    streams = max(1, min(streams, (len(ids) - 1) // seq_len))
    length = (len(ids) - 1) // streams  # targets per stream; up to streams - 1 are left out
    rows = np.stack([ids[k * length : k * length + length + 1] for k in range(streams)])
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum")

    @tf.function
    def piece_loss(x, y, state):
        logits, state = model.logits_and_state(x, state)
        return loss_fn(y, logits), state

    state = model.initial_state(streams)
    total = 0.0
    for start in range(0, length, seq_len):
        stop = min(start + seq_len, length)
        loss, state = piece_loss(rows[:, start:stop], rows[:, start + 1 : stop + 1], state)
        total += float(loss)
    targets = rows[:, 1:]
    return Evaluation(total / targets.size, int(targets.size), int((targets == UNKNOWN_ID).sum()))


def evaluate_run(
    run_dir: str,
    split: str = "validation",
    text_files=(),
    manual_dir: str | None = None,
    checkpoint: str = "best",
    batch_size: int | None = None,
    carry_state: bool = False,
) -> Evaluation:
    """Evaluate a training run on a split of its corpus or on `text_files`.

    `split` is train, validation, test or validation+test (the two joined, in order:
    for tiny_shakespeare, the last 10% of the text).
    """
    _, train_config = load_run_config(run_dir)
    model, vocab = load_trained_model(run_dir, checkpoint)
    if text_files:
        text = data.read_text_files(text_files)
    else:
        corpus = data.load_corpus(train_config.text_files, train_config.tfds_name, manual_dir)
        text = "".join(corpus.split(name) for name in split.split("+"))
    return evaluate_text(
        model,
        vocab,
        text,
        train_config.seq_len,
        batch_size or train_config.batch_size,
        carry_state=carry_state,
    )
