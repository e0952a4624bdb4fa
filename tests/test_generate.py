"""TextGenerator on a tiny random model: reproducible, batched prompts primed correctly."""

import pytest

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
