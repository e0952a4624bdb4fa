"""Corpora as text: the user's files, tfds, and items."""

import pytest

from lstm_textgen.data.corpus import (
    MANUAL_DIR_ENV,
    corpus_from_text_files,
    corpus_from_tfds,
    items_corpus,
    items_stream,
    read_text_files,
    resolve_manual_dir,
    split_items,
)
from lstm_textgen.errors import TextgenError


def test_text_files_globs_and_split(tmp_path):
    (tmp_path / "a.txt").write_text("alpha\n" * 100, encoding="utf-8")
    (tmp_path / "b.txt").write_bytes("\ufeffbeta".encode("utf-8"))  # BOM, no final newline
    text = read_text_files([str(tmp_path / "*.txt")])
    assert text == "alpha\n" * 100 + "beta\n"
    corpus = corpus_from_text_files([str(tmp_path / "a.txt"), str(tmp_path / "b.txt")])
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
        read_text_files([str(setup(tmp_path))])


def test_missing_manual_dir_falls_back_to_downloading_with_a_warning(tmp_path, caplog, monkeypatch):
    monkeypatch.delenv(MANUAL_DIR_ENV, raising=False)
    with caplog.at_level("WARNING", logger="lstm_textgen"):
        assert resolve_manual_dir(str(tmp_path / "nowhere")) is None
    assert "does not exist" in caplog.text
    assert resolve_manual_dir(str(tmp_path)) == str(tmp_path)
    monkeypatch.setenv(MANUAL_DIR_ENV, str(tmp_path))
    assert resolve_manual_dir(None) == str(tmp_path)


def test_tiny_shakespeare_from_tfds(manual_dir):
    corpus = corpus_from_tfds("tiny_shakespeare", manual_dir=manual_dir)
    # tfds splits karpathy's 1,115,394 characters 90 / 5 / 5.
    assert (len(corpus.train), len(corpus.validation), len(corpus.test)) == (1003854, 55770, 55770)
    assert corpus.train.startswith("First Citizen:")


def test_items_are_lines_or_paragraphs_and_the_stream_marks_each_end():
    from lstm_textgen.data.vocab import END_OF_ITEM

    text = "Anna\n\nBo b\r\n  \nCy\n"
    assert split_items(text, "lines") == ["Anna", "Bo b", "Cy"]
    assert split_items("one\ntwo\n\n \nthree\n", "paragraphs") == ["one\ntwo", "three"]
    assert items_stream(["Anna", "Bo"]) == f"{END_OF_ITEM}Anna{END_OF_ITEM}Bo{END_OF_ITEM}"
    with pytest.raises(TextgenError, match="items"):
        split_items(text, "words")


def test_an_items_corpus_splits_by_items_and_refuses_the_marker(tmp_path):
    from lstm_textgen.data.vocab import END_OF_ITEM

    path = tmp_path / "names.txt"
    path.write_text("\n".join(f"name{k}" for k in range(40)) + "\n", encoding="utf-8")
    corpus, items = items_corpus([str(path)], kind="lines")
    assert items == [f"name{k}" for k in range(38)]
    assert corpus.validation == items_stream(["name38", "name39"])
    path.write_text(f"a\nb{END_OF_ITEM}\n", encoding="utf-8")
    with pytest.raises(TextgenError, match="U\\+0003"):
        items_corpus([str(path)], kind="lines")
    path.write_text("just one\n", encoding="utf-8")
    with pytest.raises(TextgenError, match="at least 2"):
        items_corpus([str(path)], kind="lines")
