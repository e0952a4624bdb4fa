"""Corpus loading and the (input, target) windows fed to training."""

import numpy as np
import pytest

from lstm_textgen import data
from lstm_textgen.errors import TextgenError


def test_windows_shift_targets_by_one_and_cover_every_character_once():
    ids = np.arange(23, dtype=np.int32)
    batches = list(data.make_dataset(ids, seq_len=5, batch_size=2))
    inputs = np.concatenate([x.numpy() for x, _ in batches])
    targets = np.concatenate([y.numpy() for _, y in batches])
    assert inputs.shape == (4, 5)  # (23 - 1) // 5 windows
    np.testing.assert_array_equal(targets, inputs + 1)
    np.testing.assert_array_equal(np.sort(targets.ravel()), np.arange(1, 21))


def test_shuffled_repeated_batches_have_fixed_shape():
    ds = data.make_dataset(np.arange(50, dtype=np.int32), 4, 3, shuffle=True, seed=1, repeat=True, drop_remainder=True)
    for x, y in ds.take(20):
        assert x.shape == (3, 4) and y.shape == (3, 4)
        np.testing.assert_array_equal(y.numpy(), x.numpy() + 1)


def test_text_too_short_for_one_window():
    with pytest.raises(TextgenError, match="seq_len"):
        data.check_length("abc", 3, "training")
    with pytest.raises(TextgenError, match="seq-len"):
        data.make_dataset(np.arange(3, dtype=np.int32), 3, 1)


def test_text_files_globs_and_split(tmp_path):
    (tmp_path / "a.txt").write_text("alpha\n" * 100, encoding="utf-8")
    (tmp_path / "b.txt").write_bytes("\ufeffbeta".encode("utf-8"))  # BOM, no final newline
    text = data.read_text_files([str(tmp_path / "*.txt")])
    assert text == "alpha\n" * 100 + "beta\n"
    corpus = data.corpus_from_text_files([str(tmp_path / "a.txt"), str(tmp_path / "b.txt")])
    assert corpus.train + corpus.validation == text
    assert len(corpus.validation) == len(text) - int(len(text) * 0.95)
    with pytest.raises(TextgenError, match="no test split"):
        corpus.split("test")


@pytest.mark.parametrize(
    "setup,match",
    [
        (lambda d: d / "missing.txt", "does not exist"),
        (lambda d: (d / "empty.txt").write_text("") and None or d / "empty.txt", "is empty"),
        (lambda d: (d / "latin1.txt").write_bytes("caf\xe9".encode("latin-1")) and None or d / "latin1.txt", "not UTF-8"),
        (lambda d: d / "*.nothing", "matches no file"),
        (lambda d: d, "not a regular file"),
    ],
)
def test_bad_text_files_are_clear_errors(tmp_path, setup, match):
    with pytest.raises(TextgenError, match=match):
        data.read_text_files([str(setup(tmp_path))])


def test_missing_manual_dir_falls_back_to_downloading_with_a_warning(tmp_path, caplog, monkeypatch):
    monkeypatch.delenv(data.MANUAL_DIR_ENV, raising=False)
    with caplog.at_level("WARNING", logger="lstm_textgen"):
        assert data.resolve_manual_dir(str(tmp_path / "nowhere")) is None
    assert "does not exist" in caplog.text
    assert data.resolve_manual_dir(str(tmp_path)) == str(tmp_path)
    monkeypatch.setenv(data.MANUAL_DIR_ENV, str(tmp_path))
    assert data.resolve_manual_dir(None) == str(tmp_path)


def test_tiny_shakespeare_from_tfds(manual_dir):
    corpus = data.corpus_from_tfds("tiny_shakespeare", manual_dir=manual_dir)
    # tfds splits karpathy's 1,115,394 characters 90 / 5 / 5.
    assert (len(corpus.train), len(corpus.validation), len(corpus.test)) == (1003854, 55770, 55770)
    assert corpus.train.startswith("First Citizen:")
