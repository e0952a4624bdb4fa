"""Evaluation: window-by-window and with the state carried across windows."""

import keras
import numpy as np
import pytest

from lstm_textgen.config import ModelConfig
from lstm_textgen.data.vocab import CharVocabulary
from lstm_textgen.errors import TextgenError
from lstm_textgen.evaluation.evaluate import evaluate_text
from lstm_textgen.evaluation.run import evaluate_run
from lstm_textgen.generation.backends.keras_scorer import KerasScorer
from lstm_textgen.model.language_model import CharLanguageModel
from lstm_textgen.store.loading import load_trained_model

from helpers import assert_close, train_tiny, write_corpus


@pytest.fixture
def model_and_vocab():
    # Seeded: with some random initialisations the carried state changes the loss by
    # less than the 1e-4 the last test asks for.
    keras.utils.set_random_seed(0)
    vocab = CharVocabulary.from_text("abcde ")
    model = CharLanguageModel(vocab_size=vocab.size, embedding_dim=3, units=4, num_layers=2)
    model.build()
    return model, vocab


def cross_entropy(logits, targets):
    logits = logits - logits.max(-1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    return -np.take_along_axis(log_probs, targets[..., None], -1)[..., 0]


def test_carried_state_equals_reading_each_stream_in_one_pass(model_and_vocab):
    model, vocab = model_and_vocab
    text = "abc de" * 7 + "ab"  # 44 characters: 43 targets, 3 streams of 14, one left out
    result = evaluate_text(
        KerasScorer(model), vocab, text, seq_len=4, batch_size=3, carry_state=True
    )
    ids = np.array(vocab.encode(text))
    rows = np.stack([ids[k * 14 : k * 14 + 15] for k in range(3)])
    logits = model(rows[:, :-1]).numpy()  # one call over the whole stream, no windows
    assert result.num_chars == 42
    assert_close(result.nats_per_char, cross_entropy(logits, rows[:, 1:]).mean())


def test_windows_start_from_zero_state(model_and_vocab):
    model, vocab = model_and_vocab
    text = "abc de" * 7 + "ab"
    result = evaluate_text(KerasScorer(model), vocab, text, seq_len=4, batch_size=3)
    ids = np.array(vocab.encode(text))
    windows = np.stack([ids[k * 4 : k * 4 + 5] for k in range(10)])  # (44 - 1) // 4 windows
    logits = model(windows[:, :-1]).numpy()
    assert result.num_chars == 40
    assert_close(result.nats_per_char, cross_entropy(logits, windows[:, 1:]).mean())
    carried = evaluate_text(
        KerasScorer(model), vocab, text, seq_len=4, batch_size=3, carry_state=True
    )
    assert abs(carried.nats_per_char - result.nats_per_char) > 1e-4


@pytest.mark.parametrize("carry_state", [False, True])
def test_a_text_file_run_is_evaluated_on_the_ids_it_trained_with(tmp_path, small_text, carry_state):
    # Bug: evaluate read the whole corpus into memory again, and re-split files that may
    # have changed since training. It now reads RUN/data/validation.ids from disk.
    corpus = write_corpus(tmp_path, small_text)
    run = tmp_path / "run"
    train_tiny(run, corpus, ModelConfig(units=4, num_layers=1, embedding_dim=3))
    model, vocab = load_trained_model(str(run))
    validation = small_text[int(len(small_text) * 0.95) :]
    expected = evaluate_text(KerasScorer(model), vocab, validation, 16, 4, carry_state=carry_state)
    corpus.write_text("changed since training\n" * 50, encoding="utf-8")
    got = evaluate_run(str(run), split="validation", carry_state=carry_state)
    assert got.num_chars == expected.num_chars
    assert_close(got.nats_per_char, expected.nats_per_char)
    with pytest.raises(TextgenError, match="no test split"):
        evaluate_run(str(run), split="test")
