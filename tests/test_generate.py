"""TextGenerator on a tiny random model: reproducible, batched prompts primed correctly."""

import importlib.util

import pytest
import tensorflow as tf

from lstm_textgen.config import ModelConfig
from lstm_textgen.data.vocab import CharVocabulary
from lstm_textgen.errors import TextgenError
from lstm_textgen.generation.backends.keras import TextGenerator
from lstm_textgen.model.language_model import CharLanguageModel


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
    assert generator.generate(["aXbY"], num_chars=15, temperature=0.0) == generator.generate(
        ["ab"], num_chars=15, temperature=0.0
    )


def test_bad_requests_are_clear_errors(generator):
    with pytest.raises(TextgenError, match="temperature"):
        generator.generate("a", num_chars=5, temperature=-1.0)
    with pytest.raises(TextgenError, match="num_chars"):
        generator.generate("a", num_chars=-1)
    with pytest.raises(TextgenError, match="prompt"):
        generator.generate([], num_chars=5)


def test_last_and_first_characters_read_whole_characters_from_a_byte_window():
    from lstm_textgen.generation.graph import first_characters, last_characters

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
    assert generator.generate(["ab"], num_chars=5, temperature=1.0, seed=3) == texts[:1]
    assert generator.generate(["c"], num_chars=9, temperature=0.0, seed=99) == texts[1:2]
    with pytest.raises(TextgenError, match="one num_chars per prompt"):
        generator.generate(prompts, num_chars=[1, 2])


# --- items: a model trained with --items ends rows by itself ------------------------------


def made_up_names(count=300, seed=0):
    """A list of names built from syllables at run time (no downloaded data)."""
    import random

    rng = random.Random(seed)
    syllables = ["ka", "ro", "mi", "ne", "lu", "ta", "so", "vi"]
    return sorted(
        {
            "".join(rng.choice(syllables) for _ in range(rng.randint(2, 3))).capitalize()
            for _ in range(count)
        }
    )


@pytest.fixture(scope="module")
def items_run(tmp_path_factory):
    from helpers import train_tiny, write_corpus

    root = tmp_path_factory.mktemp("items")
    corpus = write_corpus(root, "\n".join(made_up_names()) + "\n", "names.txt")
    run = root / "run"
    train_tiny(
        run,
        corpus,
        ModelConfig(units=32, num_layers=1, embedding_dim=8),
        max_steps=150,
        checkpoint_every=150,
        seq_len=16,
        batch_size=32,
        learning_rate=0.01,
        items="lines",
    )
    return run


@pytest.mark.slow
def test_an_items_model_ends_items_in_every_backend_and_the_cli_prints_them(items_run, tmp_path):
    from lstm_textgen.export.litert import export_litert
    from lstm_textgen.export.saved_model import export_for_serving
    from lstm_textgen.generation.open_model import open_generator
    from lstm_textgen.generation.request import GenerationRequest

    from helpers import cli_in_process, error_lines

    request = GenerationRequest(
        ["", "", "Ka", "Ro", "", "Mi"], num_chars=40, temperature=0.8, seed=3
    )
    from_run = open_generator(run=str(items_run)).complete(request)
    assert [c.finish_reason for c in from_run].count("end") >= 5
    assert all("\n" not in c.text and "\x03" not in c.text for c in from_run)
    exports = {"saved_model": export_for_serving(str(items_run), str(tmp_path / "sm"))}
    if importlib.util.find_spec("ai_edge_litert"):
        exports["litert"] = export_litert(str(items_run), str(tmp_path / "items.tflite"))
    for name, path in exports.items():
        assert open_generator(**{name: path}).complete(request) == from_run, name

    result = cli_in_process("generate", "--run", items_run, "--num-items", "7", "--num-chars", "40",
                     "--seed", "2", "--temperature", "0.8", "--show-finish-reason")  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 7 and sum(line.endswith("\t[end]") for line in lines) >= 6
    names = made_up_names()
    names = set(names[: int(len(names) * 0.95)])  # the training items: validation is the last 5%
    copies = sum(line.split("\t")[0] in names for line in lines)
    assert error_lines(result) == [f"{copies} of 7 items appear verbatim among the training items"]


def test_num_items_needs_an_items_model_and_stop_strings_are_checked(trained_text_run):
    from helpers import cli_in_process, error_lines

    run, _ = trained_text_run
    for args, message in [
        (("--num-items", "3"), "--num-items needs a model trained on items"),
        (("--stop", ""), "stop string is empty"),
        (("--stop", "x" * 17), "at most 16"),
        (("--stop", "a", "--stop", "b", "--stop", "c", "--stop", "d", "--stop", "e"), "at most 4"),
    ]:
        result = cli_in_process("generate", "--run", run, *args)
        assert result.returncode == 2, (args, result.stderr)
        lines = error_lines(result)
        assert len(lines) == 1 and message in lines[0], (args, lines)
