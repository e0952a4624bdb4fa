"""CharVocabulary: Python and in-graph lookups agree, and the vocabulary round-trips."""

import numpy as np
import pytest
import tensorflow as tf

from lstm_textgen.data import id_file
from lstm_textgen.data.vocab import END_OF_ITEM, UNKNOWN_ID, CharVocabulary
from lstm_textgen.errors import TextgenError


def test_ids_are_sorted_characters_after_the_unknown_id():
    vocab = CharVocabulary.from_text("banana!")
    assert vocab.characters == ["!", "a", "b", "n"]
    assert vocab.size == 5
    assert vocab.encode("nab") == [4, 2, 3]
    assert vocab.decode([4, 2, 3]) == "nab"


def test_unknown_characters_map_to_the_unknown_id_and_decode_to_nothing():
    vocab = CharVocabulary.from_text("abc")
    assert vocab.encode("aXb") == [1, UNKNOWN_ID, 2]
    assert vocab.decode([1, UNKNOWN_ID, 2, 99]) == "ab"
    assert vocab.unknown_characters("aXbYX") == ["X", "Y"]


def test_in_graph_lookup_agrees_with_python():
    text = "héllo, wörld\n"
    vocab = CharVocabulary.from_text(text)
    probe = "wörld? héllo"
    ids = vocab.tf_encode(tf.constant(probe)).numpy().tolist()
    assert ids == vocab.encode(probe)
    batch = vocab.tf_decode(tf.constant([vocab.encode("hé"), vocab.encode("l?")], tf.int32))
    assert [s.decode("utf-8") for s in batch.numpy()] == ["hé", "l"]


def test_save_and_load_round_trip(tmp_path):
    vocab = CharVocabulary.from_text('Zoë\'s "quoted" text\t\n')
    vocab.save(str(tmp_path))
    assert CharVocabulary.load(str(tmp_path)) == vocab


def test_empty_text_and_missing_file_are_clear_errors(tmp_path):
    with pytest.raises(TextgenError, match="empty"):
        CharVocabulary.from_text("")
    with pytest.raises(TextgenError, match="vocab.json"):
        CharVocabulary.load(str(tmp_path))
    (tmp_path / "vocab.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(TextgenError, match="not a valid vocabulary"):
        CharVocabulary.load(str(tmp_path))


def test_encode_returns_plain_ints():
    vocab = CharVocabulary.from_text("ab")
    assert all(isinstance(i, int) for i in vocab.encode("ab"))
    assert np.asarray(vocab.encode("ba")).dtype.kind == "i"


def test_in_graph_lookup_of_a_batch_with_invalid_utf8_and_empty_strings():
    vocab = CharVocabulary.from_text("ab")
    ids = vocab.tf_encode(tf.constant([b"ab", b"\xffa", b"", b"zb"]))
    assert ids.to_list() == [[1, 2], [0, 1], [], [0, 2]]


def test_equal_vocabularies_hash_alike_and_len_counts_ids():
    # Bug: __eq__ without __hash__ made vocabularies unhashable.
    a, b = CharVocabulary.from_text("abc"), CharVocabulary.from_text("cab")
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert len(a) == a.size == len(a.characters) + 1 == 4  # the unknown id counts


def test_an_extended_vocabulary_keeps_every_id_and_adds_new_characters_last(tmp_path):
    base = CharVocabulary.from_text("hello world")
    extended = base.extended("hé! world", end_of_item=END_OF_ITEM)
    assert extended.characters[: len(base.characters)] == base.characters
    assert extended.characters[len(base.characters) :] == ["!", "é", END_OF_ITEM]
    assert extended.end_id == extended.size - 1
    for c in base.characters:
        assert extended.encode(c) == base.encode(c)
    # Python, the graph and the streamed file encoder agree on the unsorted ids.
    probe = "hé! wörld\u0003"
    expected = extended.encode(probe)
    assert vocab_tf_ids(extended, probe) == expected
    table = extended.codepoint_table()
    assert id_file._encode_piece(probe, table, np.int32).tolist() == expected
    assert extended.decode(expected) == probe.replace("ö", "")
    extended.save(str(tmp_path))
    assert CharVocabulary.load(str(tmp_path)) == extended
    assert extended.extended("") == extended  # nothing new: the same vocabulary


def vocab_tf_ids(vocab, text):
    return vocab.tf_encode(tf.constant(text)).numpy().tolist()
