"""Fine-tuning (`train --init-from`): the source's weights and ids carry over, new
characters get rows of their own, and bad sources or sizes are one-line errors."""

import json
from pathlib import Path

import numpy as np
import pytest

from lstm_textgen.cli import main as cli_main
from lstm_textgen.config import ModelConfig, TrainConfig
from lstm_textgen.data.vocab import END_OF_ITEM
from lstm_textgen.errors import TextgenError
from lstm_textgen.generation.backends.keras import TextGenerator
from lstm_textgen.model.language_model import CharLanguageModel
from lstm_textgen.store.loading import load_trained_model
from lstm_textgen.store.run_dir import load_run_config
from lstm_textgen.store.sources import load_source
from lstm_textgen.training.finetune import copy_weights
from lstm_textgen.training.train import train

from helpers import write_corpus

# A learning rate whose Adam updates (about the rate itself) lie far below float32's
# resolution at the weights' scale: the fine-tuned weights stay the copied ones, bit for
# bit, while training runs its whole path.
FROZEN_RATE = 1e-30
NEW_TEXT = "ñandú ñu, ñame!\n" * 60  # ñ, ú and the comma are not in the source's text


def fine_tune(run, corpus, source, **fields):
    settings = {"seq_len": 16, "batch_size": 4, "max_steps": 2, "checkpoint_every": 2, **fields}
    return train(
        str(run),
        None,
        TrainConfig(text_files=[str(corpus)], init_from=str(source), **settings),
        verbose=0,
        log=lambda _: None,
    )


def assert_old_rows_equal(source, tuned):
    """Every weight of `source` equals `tuned`'s for every id `source` knows, exactly."""
    size = source.vocab_size
    pairs = zip(source.trainable_variables, tuned.trainable_variables, strict=True)
    for old, new in pairs:
        old, new = old.numpy(), new.numpy()
        index = tuple(slice(0, n) for n in old.shape)
        np.testing.assert_array_equal(new[index], old, err_msg=str(old.shape))
    assert tuned.vocab_size >= size


def test_copy_weights_keeps_old_rows_and_leaves_new_rows_as_initialised():
    def model(vocab_size, units=4):
        config = ModelConfig(vocab_size=vocab_size, units=units, embedding_dim=3)
        return CharLanguageModel.from_model_config(config)

    source, tuned = model(6), model(9)
    fresh = [v.numpy() for v in tuned.trainable_variables]
    copy_weights(source, tuned)
    assert_old_rows_equal(source, tuned)
    np.testing.assert_array_equal(tuned.embedding.embeddings.numpy()[6:], fresh[0][6:])
    np.testing.assert_array_equal(tuned.head.kernel.numpy()[:, 6:], fresh[-2][:, 6:])
    with pytest.raises(TextgenError, match="architectures differ"):
        copy_weights(source, model(9, units=5))


def test_a_fine_tune_starts_from_its_source_run_and_records_it(tmp_path, trained_text_run):
    source_run, _ = trained_text_run
    corpus = write_corpus(tmp_path, NEW_TEXT)
    fine_tune(tmp_path / "tuned", corpus, source_run, learning_rate=FROZEN_RATE)
    source, source_vocab = load_trained_model(str(source_run))
    tuned, vocab = load_trained_model(str(tmp_path / "tuned"), "last")
    assert_old_rows_equal(source, tuned)
    assert vocab.characters[: len(source_vocab.characters)] == source_vocab.characters
    assert sorted(vocab.characters[len(source_vocab.characters) :]) == [",", "ñ", "ú"]
    model_config, train_config = load_run_config(str(tmp_path / "tuned"))
    assert train_config.init_from == str(source_run)
    assert (model_config.units, model_config.num_layers) == (8, 1)


def test_a_fine_tune_starts_from_an_export(tmp_path, served):
    corpus = write_corpus(tmp_path, NEW_TEXT)
    fine_tune(tmp_path / "tuned", corpus, served["base"], learning_rate=FROZEN_RATE)
    tuned, _ = load_trained_model(str(tmp_path / "tuned"), "last")
    assert_old_rows_equal(served["model"], tuned)
    # The export read back as a Keras model is the run's model, weight for weight.
    exported = load_source(str(served["version_dir"])).model
    for a, b in zip(exported.trainable_variables, served["model"].trainable_variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_a_new_character_is_learned_and_generated(tmp_path, trained_text_run):
    source_run, _ = trained_text_run
    corpus = write_corpus(tmp_path, "ñañeñiñoñu\n" * 80)
    fine_tune(
        tmp_path / "tuned",
        corpus,
        source_run,
        max_steps=60,
        checkpoint_every=30,
        learning_rate=0.05,
    )
    generator = TextGenerator(*load_trained_model(str(tmp_path / "tuned")))
    text = generator.generate(["ña"], num_chars=40, temperature=0.0)[0]
    assert text.count("ñ") >= 5, text


def test_an_items_fine_tune_of_a_plain_text_model_adds_the_end_marker(tmp_path, trained_text_run):
    source_run, _ = trained_text_run
    corpus = write_corpus(tmp_path, "ñu\nandu\nmu ñu\n" * 40)
    fine_tune(tmp_path / "tuned", corpus, source_run, items="lines")
    _, vocab = load_trained_model(str(tmp_path / "tuned"), "last")
    assert vocab.end_of_item == END_OF_ITEM
    assert vocab.end_id == vocab.size - 1  # after every id of the source


def test_a_carried_state_fine_tune_trains(tmp_path, trained_text_run):
    source_run, _ = trained_text_run
    corpus = write_corpus(tmp_path, NEW_TEXT)
    result = fine_tune(tmp_path / "tuned", corpus, source_run, carry_state=True)
    assert result.step == 2


@pytest.mark.parametrize(
    "extra, match",
    [
        (("--units", "9"), "--units 9 contradicts --init-from"),
        (("--layers", "3"), "--layers 3 contradicts --init-from"),
        (("--embedding-dim", "5"), "--embedding-dim 5 contradicts --init-from"),
    ],
)
def test_size_flags_that_contradict_the_source_are_one_line_errors(
    tmp_path, capsys, trained_text_run, extra, match
):
    source_run, corpus = trained_text_run
    argv = ["train", "--run", str(tmp_path / "r"), "--init-from", str(source_run)]
    assert cli_main([*argv, "--text-file", str(corpus), *extra]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and match in lines[0], lines
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    "make_source, match",
    [
        (lambda d: d / "missing", "does not exist"),
        (lambda d: d, "not a training run directory"),
    ],
)
def test_a_missing_or_foreign_source_is_a_one_line_error(tmp_path, capsys, make_source, match):
    corpus = write_corpus(tmp_path, NEW_TEXT)
    source = make_source(tmp_path)
    argv = ["train", "--run", str(tmp_path / "r"), "--init-from", str(source)]
    assert cli_main([*argv, "--text-file", str(corpus)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and match in lines[0], lines


def test_the_shipped_model_is_a_source_by_name():
    from lstm_textgen.store.sources import describe_source, source_configs

    source = describe_source("shakespeare")
    assert source.kind == "export" and "shipped" in source.label
    model_config, train_config, vocab = source_configs(source)
    card = json.loads((Path(source.path).parent / "card.json").read_text(encoding="utf-8"))
    assert model_config.units == card["model"]["units"]
    assert vocab.characters == card["vocabulary"]
    assert train_config.tfds_name == "tiny_shakespeare"
