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


def windows_of(dataset, count):
    return [x.numpy()[:, 0] // 4 for x, _ in dataset.take(count)]  # window numbers


def test_training_batches_cover_each_window_once_per_epoch_and_restart_exactly():
    ids = np.arange(50, dtype=np.int32)  # 12 windows of 4, batches of 3: 4 steps per epoch
    stream = data.make_train_dataset(ids, 4, 3, seed=1)
    for x, y in stream.take(10):
        assert x.shape == (3, 4)
        np.testing.assert_array_equal(y.numpy(), x.numpy() + 1)
    batches = windows_of(stream, 12)
    for epoch in range(3):
        assert sorted(np.concatenate(batches[4 * epoch : 4 * epoch + 4])) == list(range(12))
    assert not np.array_equal(np.concatenate(batches[:4]), np.concatenate(batches[4:8]))
    for start in (1, 4, 7):  # a run resumed at step `start` sees the same batches
        resumed = windows_of(data.make_train_dataset(ids, 4, 3, seed=1, start_step=start), 3)
        np.testing.assert_array_equal(resumed, batches[start : start + 3])
    other_seed = windows_of(data.make_train_dataset(ids, 4, 3, seed=2), 4)
    assert not np.array_equal(other_seed, batches[:4])


def test_batches_larger_than_an_epoch_straddle_epochs():
    ids = np.arange(13, dtype=np.int32)  # 3 windows of 4, batches of 5
    stream = windows_of(data.make_train_dataset(ids, 4, 5, seed=0), 3)
    flat = np.concatenate(stream)
    for epoch in range(5):
        assert sorted(flat[3 * epoch : 3 * epoch + 3]) == [0, 1, 2]
    resumed = windows_of(data.make_train_dataset(ids, 4, 5, seed=0, start_step=2), 1)
    np.testing.assert_array_equal(resumed[0], stream[2])


def test_stream_batches_continue_each_row_where_the_batch_before_ended():
    ids = np.arange(71, dtype=np.int32)  # 14 windows of 5: 3 streams of 4 windows, 2 left out
    assert data.stream_batches(len(ids), 5, 3) == 4
    stream = [(x.numpy(), y.numpy()) for x, y in data.make_stream_dataset(ids, 5, 3).take(9)]
    for x, y in stream:
        assert x.shape == (3, 5)
        np.testing.assert_array_equal(y, x + 1)
    for (_, y), (next_x, _) in zip(stream[:3], stream[1:4]):
        np.testing.assert_array_equal(next_x[:, 0], y[:, -1])  # row b goes on where it ended
    # Row b reads stream b: characters b * 20 ... b * 20 + 20, in order.
    text = np.concatenate([x for x, _ in stream[:4]], axis=1)
    np.testing.assert_array_equal(text, np.arange(60).reshape(3, 20))
    for start in (4, 8):  # each pass starts the streams again
        np.testing.assert_array_equal(stream[start][0], stream[0][0])
    for start in (2, 5):  # a run resumed at step `start` sees the same batches
        resumed = next(iter(data.make_stream_dataset(ids, 5, 3, start_step=start)))[0]
        np.testing.assert_array_equal(resumed.numpy(), stream[start][0])
    with pytest.raises(TextgenError, match="smaller batch_size or seq_len"):
        data.make_stream_dataset(ids, 5, 15)


def test_text_files_stream_to_the_same_ids_as_the_in_memory_split(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "CHUNK_BYTES", 7)  # pieces end inside multi-byte characters
    (tmp_path / "a.txt").write_text("naïve café — ünïcödé 🙂\n" * 20, encoding="utf-8")
    (tmp_path / "b.txt").write_bytes("\ufeffsmörgåsbord".encode("utf-8"))  # BOM, no newline
    files = [str(tmp_path / "a.txt"), str(tmp_path / "b.txt")]
    corpus = data.corpus_from_text_files(files)
    vocab, train_ids, val_ids = data.encode_text_files(files, str(tmp_path / "ids"))
    assert vocab.characters == sorted(set(corpus.train))
    assert (len(train_ids), len(val_ids)) == (len(corpus.train), len(corpus.validation))
    np.testing.assert_array_equal(train_ids.read(0, len(train_ids)), vocab.encode(corpus.train))
    np.testing.assert_array_equal(val_ids.read(0, len(val_ids)), vocab.encode(corpus.validation))
    assert "🙂" in vocab and "å" not in vocab  # "å" occurs in the validation part only
    np.testing.assert_array_equal(
        train_ids.read_windows(np.array([3, 0]), 5),
        [vocab.encode(corpus.train[3:8]), vocab.encode(corpus.train[:5])],
    )
    from_file = list(data.make_dataset(val_ids, 6, 4))
    in_memory = list(data.make_dataset(data.encode_text(corpus.validation, vocab), 6, 4))
    assert len(from_file) == len(in_memory)
    for (x1, y1), (x2, y2) in zip(from_file, in_memory):
        np.testing.assert_array_equal(x1.numpy(), x2.numpy())
        np.testing.assert_array_equal(y1.numpy(), y2.numpy())
    again, _, _ = data.encode_text_files(files, str(tmp_path / "ids2"), vocab=vocab)
    assert again == vocab and not list((tmp_path / "ids").glob("*.tmp-*"))


def test_a_bad_byte_deep_in_a_streamed_file_is_reported_with_its_offset(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "CHUNK_BYTES", 5)
    (tmp_path / "bad.txt").write_bytes("ab€cdefgh".encode() + b"\xff tail")
    with pytest.raises(TextgenError, match=r"byte 0xff at offset 11"):
        data.encode_text_files([str(tmp_path / "bad.txt")], str(tmp_path / "ids"))


def test_text_too_short_for_one_window():
    with pytest.raises(TextgenError, match="seq_len"):
        data.check_length("abc", 3, "training")
    with pytest.raises(TextgenError, match="a smaller seq_len") as raised:
        data.make_dataset(np.arange(3, dtype=np.int32), 3, 1)
    assert "a smaller --seq-len or more text" in raised.value.for_command_line()


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
        (
            lambda d: (
                (d / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
                and None
                or d / "latin1.txt"
            ),
            "not UTF-8",
        ),
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


def test_items_are_lines_or_paragraphs_and_the_stream_marks_each_end():
    from lstm_textgen.vocab import END_OF_ITEM

    text = "Anna\n\nBo b\r\n  \nCy\n"
    assert data.split_items(text, "lines") == ["Anna", "Bo b", "Cy"]
    assert data.split_items("one\ntwo\n\n \nthree\n", "paragraphs") == ["one\ntwo", "three"]
    assert data.items_stream(["Anna", "Bo"]) == f"{END_OF_ITEM}Anna{END_OF_ITEM}Bo{END_OF_ITEM}"
    with pytest.raises(TextgenError, match="items"):
        data.split_items(text, "words")


def test_an_items_corpus_splits_by_items_and_refuses_the_marker(tmp_path):
    from lstm_textgen.vocab import END_OF_ITEM

    path = tmp_path / "names.txt"
    path.write_text("\n".join(f"name{k}" for k in range(40)) + "\n", encoding="utf-8")
    corpus, items = data.items_corpus([str(path)], kind="lines")
    assert items == [f"name{k}" for k in range(38)]
    assert corpus.validation == data.items_stream(["name38", "name39"])
    path.write_text(f"a\nb{END_OF_ITEM}\n", encoding="utf-8")
    with pytest.raises(TextgenError, match="U\\+0003"):
        data.items_corpus([str(path)], kind="lines")
    path.write_text("just one\n", encoding="utf-8")
    with pytest.raises(TextgenError, match="at least 2"):
        data.items_corpus([str(path)], kind="lines")
