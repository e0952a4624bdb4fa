"""Training runs in-process on a small text: seeding, checkpoint metadata, resume."""

import json

import pytest

from helpers import train_tiny, write_corpus
from lstm_textgen.config import ModelConfig, load_run_config
from lstm_textgen.train import BEST_CHECKPOINT, LAST_CHECKPOINT, read_checkpoint_info


def tiny_train(run, corpus, resume=False, max_steps=None, seed=3):
    model = ModelConfig(units=6, num_layers=1, embedding_dim=4, dropout=0.1)
    return train_tiny(run, corpus, model, resume=resume, max_steps=max_steps, seq_len=12, batch_size=3, seed=seed)


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
    stale = [tmp_path / "split" / "last.tmp-99.keras", tmp_path / "split" / "data" / "train.ids.tmp-99"]
    for path in stale:
        path.write_bytes(b"half")
    resumed = tiny_train(tmp_path / "split", corpus, resume=True, max_steps=6)
    assert not any(path.exists() for path in stale)
    assert [h["step"] for h in resumed.history] == [2, 4, 6]
    for a, b in zip(whole.history, resumed.history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-6)
        assert a["val_loss"] == pytest.approx(b["val_loss"], abs=1e-6)


def test_checkpoints_carry_their_step_and_loss(tmp_path, corpus):
    result = tiny_train(tmp_path / "run", corpus)
    last = read_checkpoint_info(str(tmp_path / "run" / LAST_CHECKPOINT))
    best = read_checkpoint_info(str(tmp_path / "run" / BEST_CHECKPOINT))
    assert last["step"] == 4 and last["val_loss"] == result.history[-1]["val_loss"]
    assert best["val_loss"] == result.best_val_loss == min(h["val_loss"] for h in result.history)


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
    assert read_checkpoint_info(str(run / BEST_CHECKPOINT))["val_loss"] == resumed.best_val_loss


def test_resume_with_fewer_steps_changes_nothing(tmp_path, corpus):
    run = tmp_path / "run"
    tiny_train(run, corpus)
    before = load_run_config(str(run))
    result = tiny_train(run, corpus, resume=True, max_steps=2)
    assert result.step == 4
    assert load_run_config(str(run)) == before


def test_a_diverging_run_stops_and_keeps_the_last_good_checkpoint(tmp_path, corpus, monkeypatch):
    import numpy as np

    from lstm_textgen import train as train_module
    from lstm_textgen.errors import TextgenError

    run = tmp_path / "run"
    tiny_train(run, corpus)
    good = read_checkpoint_info(str(run / LAST_CHECKPOINT))
    load = train_module.load_checkpoint

    def exploding(path, compile=True):
        model = load(path, compile)
        model.optimizer.learning_rate.assign(3e38)  # the next updates overflow float32
        return model

    monkeypatch.setattr(train_module, "load_checkpoint", exploding)
    with pytest.raises(TextgenError, match="NaN or infinite.*last good checkpoint \\(step 4\\)"):
        tiny_train(run, corpus, resume=True, max_steps=8)
    assert read_checkpoint_info(str(run / LAST_CHECKPOINT)) == good
    model = load(str(run / LAST_CHECKPOINT), compile=False)
    assert all(np.isfinite(w).all() for w in model.get_weights())
