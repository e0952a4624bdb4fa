"""Loss of a trained model on a text, in nats and bits per character."""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
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
) -> Evaluation:
    """Mean cross-entropy of every predicted character of `text`.

    The text is cut into windows of `seq_len` as in training, each starting from the zero
    state. Characters outside the vocabulary still count (the model gives them almost no
    probability), and their number is reported.
    """
    data.check_length(text, seq_len, "evaluation")
    ids = data.encode_text(text, vocab)
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


def evaluate_run(
    run_dir: str,
    split: str = "validation",
    text_files=(),
    manual_dir: str | None = None,
    checkpoint: str = "best",
    batch_size: int | None = None,
) -> Evaluation:
    """Evaluate a training run on a split of its corpus or on `text_files`."""
    _, train_config = load_run_config(run_dir)
    model, vocab = load_trained_model(run_dir, checkpoint)
    if text_files:
        text = data.read_text_files(text_files)
    else:
        corpus = data.load_corpus(train_config.text_files, train_config.tfds_name, manual_dir)
        text = corpus.split(split)
    return evaluate_text(
        model, vocab, text, train_config.seq_len, batch_size or train_config.batch_size
    )
