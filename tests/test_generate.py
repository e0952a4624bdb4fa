"""TextGenerator on a tiny random model: reproducible, batched prompts primed correctly."""

import pytest
import tensorflow as tf

from lstm_textgen.config import ModelConfig
from lstm_textgen.errors import TextgenError
from lstm_textgen.generate import TextGenerator
from lstm_textgen.model import CharLanguageModel
from lstm_textgen.vocab import CharVocabulary


@pytest.fixture(scope="module")
def generator():
    vocab = CharVocabulary.from_text("abcdefgh \n")
    model = CharLanguageModel.from_model_config(
        ModelConfig(vocab_size=vocab.size, embedding_dim=3, units=4, num_layers=2)
    )
    return TextGenerator(model, vocab)


def test_output_length_vocabulary_and_reproducibility(generator):
    texts = generator.generate(["ab", "c"], num_chars=30, temperature=1.0, seed=7)
    assert [len(t) for t in texts] == [30, 30]
    assert set("".join(texts)) <= set(generator.vocab.characters)
    assert generator.generate(["ab", "c"], num_chars=30, temperature=1.0, seed=7) == texts


def test_prompts_of_different_lengths_share_a_batch(generator):
    prompts = ["a", "bcd fgh", ""]
    together = generator.generate(prompts, num_chars=12, temperature=0.0)
    alone = [generator.generate([p], num_chars=12, temperature=0.0)[0] for p in prompts]
    assert together == alone


def test_unknown_prompt_characters_are_skipped(generator):
    assert generator.unknown_characters(["aXb", "Y"]) == ["X", "Y"]
    assert generator.generate(["aXbY"], 15, temperature=0.0) == generator.generate(
        ["ab"], 15, temperature=0.0
    )


def test_bad_requests_are_clear_errors(generator):
    with pytest.raises(TextgenError, match="temperature"):
        generator.generate("a", 5, temperature=-1.0)
    with pytest.raises(TextgenError, match="num-chars"):
        generator.generate("a", -1)
    with pytest.raises(TextgenError, match="prompt"):
        generator.generate([], 5)


def test_last_and_first_characters_read_whole_characters_from_a_byte_window():
    from lstm_textgen.generate import first_characters, last_characters

    texts = ["Ω€a" * 1000 + "xyΩ€", "ab", ""]
    got = last_characters(tf.constant(texts), 5).to_list()
    assert got == [[ord(c) for c in t[-5:]] for t in texts]
    got = first_characters(tf.constant(texts), 4).to_list()
    assert got == [[ord(c) for c in t[:4]] for t in texts]


def test_rows_take_their_own_settings_and_a_seed_per_row(generator):
    prompts = ["ab", "c", "ab"]
    texts = generator.generate(prompts, num_chars=[5, 9, 0], temperature=[1.0, 0.0, 1.0], seed=3)
    assert [len(t) for t in texts] == [5, 9, 0]
    # One seed gives row r the seed + r: row 0 is the text of that seed alone.
    assert generator.generate(["ab"], 5, 1.0, seed=3) == texts[:1]
    assert generator.generate(["c"], 9, 0.0, seed=99) == texts[1:2]
    with pytest.raises(TextgenError, match="one num_chars per prompt"):
        generator.generate(prompts, num_chars=[1, 2])
