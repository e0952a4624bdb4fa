"""Training runs in-process on a small text: seeding, checkpoint metadata, resume."""

import copy
import json
import os

import pytest

from lstm_textgen.config import ModelConfig, TrainConfig
from lstm_textgen.store.checkpoints import read_checkpoint_info
from lstm_textgen.store.run_dir import BEST_CHECKPOINT, LAST_CHECKPOINT, load_run_config
from lstm_textgen.training.train import train

from helpers import train_tiny, write_corpus


def tiny_train(run, corpus, resume=False, max_steps=None, seed=3):
    model = ModelConfig(units=6, num_layers=1, embedding_dim=4, dropout=0.1)
    return train_tiny(
        run, corpus, model, resume=resume, max_steps=max_steps, seq_len=12, batch_size=3, seed=seed
    )


@pytest.fixture
def corpus(tmp_path, small_text):
    return write_corpus(tmp_path, small_text)


def test_the_same_seed_gives_the_same_run(tmp_path, corpus):
    a = tiny_train(tmp_path / "a", corpus)
    b = tiny_train(tmp_path / "b", corpus)
    c = tiny_train(tmp_path / "c", corpus, seed=4)
    assert a.history == b.history
    assert a.history != c.history


def test_a_resumed_run_continues_exactly_as_an_uninterrupted_one(tmp_path, corpus):
    # Dropout is on, so this also needs the dropout generators' states restored.
    whole = tiny_train(tmp_path / "whole", corpus, max_steps=6)
    tiny_train(tmp_path / "split", corpus, max_steps=2)
    tiny_train(tmp_path / "split", corpus, resume=True, max_steps=4)
    # What a kill in the middle of writing leaves behind is cleared on the next start.
    stale = [
        tmp_path / "split" / "last.tmp-99.keras",
        tmp_path / "split" / "data" / "train.ids.tmp-99",
    ]
    for path in stale:
        path.write_bytes(b"half")
    resumed = tiny_train(tmp_path / "split", corpus, resume=True, max_steps=6)
    assert not any(path.exists() for path in stale)
    assert [h.step for h in resumed.history] == [2, 4, 6]
    for a, b in zip(whole.history, resumed.history):
        assert a.train_loss == pytest.approx(b.train_loss, abs=1e-6)
        assert a.val_loss == pytest.approx(b.val_loss, abs=1e-6)


def test_carry_state_starts_each_batch_where_the_last_one_ended(corpus, small_text):
    import keras
    import numpy as np
    import tensorflow as tf

    from lstm_textgen.data import id_file
    from lstm_textgen.data import windows as data
    from lstm_textgen.data.vocab import CharVocabulary
    from lstm_textgen.model.language_model import CharLanguageModel
    from lstm_textgen.training.optimizer import compile_model

    vocab = CharVocabulary.from_text(small_text)
    ids = id_file.encode_text(small_text, vocab)
    config = TrainConfig(seq_len=12, batch_size=3)
    model = CharLanguageModel.from_model_config(
        ModelConfig(vocab_size=vocab.size, units=6, num_layers=2, embedding_dim=4)
    )
    # Larger weights than a fresh model's, so that the state a batch starts from matters.
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(scale=0.5, size=w.shape) for w in model.get_weights()])
    compile_model(model, config, jit_compile=False, total_steps=10)
    per_pass = data.stream_batches(len(ids), 12, 3)
    carried = model.carry_state(3, per_pass)
    (x0, y0), (x1, y1) = data.make_stream_dataset(ids, 12, 3).take(2)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    # Batch 0 starts from zeros; the state it ends in is carried, whatever the update.
    logits, expected = model.logits_and_state(x0)
    expected_loss = float(loss_fn(y0, logits))
    assert model.train_on_batch(x0, y0) == pytest.approx(expected_loss, abs=1e-5)
    for got, want in zip(carried.read(1), expected):
        np.testing.assert_allclose(got[0], want[0], atol=1e-6)
        np.testing.assert_allclose(got[1], want[1], atol=1e-6)
    # Batch 1 starts from it (not from zeros); a new pass starts from zeros again.
    logits, expected = model.logits_and_state(x1, carried.read(1))
    zero_state_loss = float(loss_fn(y1, model(x1)))
    carried_loss = float(loss_fn(y1, logits))
    assert abs(carried_loss - zero_state_loss) > 1e-2
    assert model.train_on_batch(x1, y1) == pytest.approx(carried_loss, abs=1e-5)
    assert float(tf.reduce_max(tf.abs(carried.read(per_pass)[0][0]))) == 0.0


def test_a_carry_state_run_resumes_exactly_and_reports_both_validation_losses(tmp_path, corpus):
    model = ModelConfig(units=6, num_layers=1, embedding_dim=4)
    fields = {"seq_len": 12, "batch_size": 3, "seed": 3, "carry_state": True}
    whole = train_tiny(tmp_path / "whole", corpus, model, max_steps=6, **fields)
    train_tiny(tmp_path / "split", corpus, model, max_steps=2, **fields)
    resumed = train_tiny(tmp_path / "split", corpus, model, resume=True, max_steps=6)
    assert [h.step for h in resumed.history] == [2, 4, 6]
    for a, b in zip(whole.history, resumed.history, strict=True):
        for key in ("train_loss", "val_loss", "val_loss_carried"):
            assert getattr(a, key) == pytest.approx(getattr(b, key), abs=1e-6), key
    assert all(h.val_loss_carried != h.val_loss for h in whole.history)


def test_checkpoints_carry_their_step_and_loss(tmp_path, corpus):
    result = tiny_train(tmp_path / "run", corpus)
    last = read_checkpoint_info(str(tmp_path / "run" / LAST_CHECKPOINT))
    best = read_checkpoint_info(str(tmp_path / "run" / BEST_CHECKPOINT))
    assert last.step == 4 and last.val_loss == result.history[-1].val_loss
    assert best.val_loss == result.best_val_loss == min(h.val_loss for h in result.history)


def test_resume_trusts_the_best_checkpoint_over_a_stale_state_file(tmp_path, corpus):
    run = tmp_path / "run"
    first = tiny_train(run, corpus)
    # A kill between copying best.keras and writing state.json leaves state.json stale.
    state = json.loads((run / "state.json").read_text())
    state["best_val_loss"] = 99.0
    (run / "state.json").write_text(json.dumps(state))
    resumed = tiny_train(run, corpus, resume=True, max_steps=6)
    assert resumed.step == 6
    assert resumed.best_val_loss <= first.best_val_loss
    assert read_checkpoint_info(str(run / BEST_CHECKPOINT)).val_loss == resumed.best_val_loss


def test_resume_with_fewer_steps_changes_nothing(tmp_path, corpus):
    run = tmp_path / "run"
    tiny_train(run, corpus)
    before = load_run_config(str(run))
    result = tiny_train(run, corpus, resume=True, max_steps=2)
    assert result.step == 4
    assert load_run_config(str(run)) == before


def test_a_diverging_run_stops_and_keeps_the_last_good_checkpoint(tmp_path, corpus, monkeypatch):
    import numpy as np

    from lstm_textgen.errors import TextgenError
    from lstm_textgen.store import checkpoints

    run = tmp_path / "run"
    tiny_train(run, corpus)
    good = read_checkpoint_info(str(run / LAST_CHECKPOINT))
    load = checkpoints.load_checkpoint

    def exploding(path, compile=True):
        model = load(path, compile)
        model.optimizer.learning_rate.assign(3e38)  # the next updates overflow float32
        return model

    monkeypatch.setattr(checkpoints, "load_checkpoint", exploding)
    with pytest.raises(TextgenError, match="NaN or infinite.*last good checkpoint \\(step 4\\)"):
        tiny_train(run, corpus, resume=True, max_steps=8)
    assert read_checkpoint_info(str(run / LAST_CHECKPOINT)) == good
    model = load(str(run / LAST_CHECKPOINT), compile=False)
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_text_file_ids_are_written_to_the_run_data_folder(tmp_path, corpus):
    # Bug: they went to RUN/data/data/, where no restart cleared half-written ones.
    tiny_train(tmp_path / "run", corpus)
    assert sorted(os.listdir(tmp_path / "run" / "data")) == ["train.ids", "validation.ids"]


def test_train_leaves_the_callers_configs_alone(tmp_path, corpus):
    model_config = ModelConfig(units=6, num_layers=1, embedding_dim=4)
    train_config = TrainConfig(text_files=["corpus.txt"], seq_len=12, batch_size=3, max_steps=2)
    before = (copy.deepcopy(model_config), copy.deepcopy(train_config))
    os.chdir(corpus.parent)
    train(str(tmp_path / "run"), model_config, train_config, verbose=False, log=lambda _: None)
    assert (model_config, train_config) == before


def test_progress_is_counted_in_steps_not_epochs(tmp_path, corpus, capsys):
    # Bug: Keras's progress bar printed "Epoch 1/2" for checkpoint intervals.
    model_config = ModelConfig(units=6, num_layers=1, embedding_dim=4)
    train_config = TrainConfig(
        text_files=[str(corpus)], seq_len=12, batch_size=3, max_steps=4, checkpoint_every=2
    )
    train(str(tmp_path / "run"), model_config, train_config, verbose=True, log=print)
    out = capsys.readouterr()
    assert "Epoch" not in out.out + out.err
    assert "step 3/4, loss" in out.err and "step 4/4, loss" in out.err


def test_an_epoch_based_cosine_schedule_decays_over_the_whole_run():
    # Bug: compile_model defaulted total_steps to max_steps or 1, so a schedule given in
    # epochs reached its floor after one step. The run's length is now required.
    from lstm_textgen.model.language_model import CharLanguageModel
    from lstm_textgen.training.optimizer import compile_model, learning_rate

    model = CharLanguageModel(vocab_size=5, embedding_dim=2, units=3, num_layers=1)
    config = TrainConfig(lr_schedule="cosine", epochs=2, learning_rate=0.01)
    with pytest.raises(TypeError):
        compile_model(model, config, jit_compile=False)
    schedule = learning_rate(config, total_steps=100)
    assert float(schedule(1)) == pytest.approx(0.01, rel=1e-3)
    assert float(schedule(50)) == pytest.approx(0.0055, rel=1e-3)
    assert float(schedule(100)) == pytest.approx(0.001, rel=1e-3)


def test_a_damaged_last_checkpoint_on_resume_names_the_intact_best_one(tmp_path, trained_text_run):
    import shutil

    from lstm_textgen.errors import TextgenError

    run = tmp_path / "run"
    shutil.copytree(trained_text_run[0], run)
    last = run / "last.keras"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])  # a truncated copy
    step = json.loads((run / "state.json").read_text())["best_step"]
    with pytest.raises(TextgenError) as error:
        train(str(run), resume=True, max_steps=9, verbose=0, log=lambda _: None)
    message = str(error.value)
    assert "not a complete .keras file" in message and "File not found" not in message
    assert f"best.keras (step {step}) is intact: copy it over last.keras" in message
