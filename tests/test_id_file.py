"""The user's text files encoded to ids on disk, and the windows read back from them."""

import numpy as np
import pytest

from lstm_textgen.data import corpus as corpus_module
from lstm_textgen.data import id_file
from lstm_textgen.data import windows as data
from lstm_textgen.data.corpus import corpus_from_text_files
from lstm_textgen.errors import TextgenError


def test_text_files_stream_to_the_same_ids_as_the_in_memory_split(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus_module, "CHUNK_BYTES", 7)  # pieces end inside multi-byte characters
    (tmp_path / "a.txt").write_text("naïve café — ünïcödé 🙂\n" * 20, encoding="utf-8")
    (tmp_path / "b.txt").write_bytes("\ufeffsmörgåsbord".encode("utf-8"))  # BOM, no newline
    files = [str(tmp_path / "a.txt"), str(tmp_path / "b.txt")]
    corpus = corpus_from_text_files(files)
    vocab, train_ids, val_ids = id_file.encode_text_files(files, str(tmp_path / "ids"))
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
    in_memory = list(data.make_dataset(id_file.encode_text(corpus.validation, vocab), 6, 4))
    assert len(from_file) == len(in_memory)
    for (x1, y1), (x2, y2) in zip(from_file, in_memory):
        np.testing.assert_array_equal(x1.numpy(), x2.numpy())
        np.testing.assert_array_equal(y1.numpy(), y2.numpy())
    again, _, _ = id_file.encode_text_files(files, str(tmp_path / "ids2"), vocab=vocab)
    assert again == vocab and not list((tmp_path / "ids").glob("*.tmp-*"))


def test_a_bad_byte_deep_in_a_streamed_file_is_reported_with_its_offset(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus_module, "CHUNK_BYTES", 5)
    (tmp_path / "bad.txt").write_bytes("ab€cdefgh".encode() + b"\xff tail")
    with pytest.raises(TextgenError, match=r"byte 0xff at offset 11"):
        id_file.encode_text_files([str(tmp_path / "bad.txt")], str(tmp_path / "ids"))


def test_windows_are_read_through_a_map_that_closes_with_the_batch(tmp_path, monkeypatch):
    path = tmp_path / "x.ids"
    np.arange(200, dtype=np.uint8).tofile(path)
    ids = id_file.IdFile(str(path), np.uint8, 200)
    opened = []
    memmap = np.memmap

    def counting(*args, **kwargs):
        opened.append(memmap(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(np, "memmap", counting)
    rows = ids.read_windows(np.array([190, 0, 7]), 10)
    np.testing.assert_array_equal(rows, [np.arange(190, 200), np.arange(10), np.arange(7, 17)])
    assert len(opened) == 1 and not isinstance(rows, memmap) and rows.base is None
    with pytest.raises(IndexError, match="holds 200 ids"):
        ids.read_windows(np.array([195]), 10)
