"""Run configs round-trip through JSON and reject nonsense."""

import json

import pytest

from lstm_textgen.config import ModelConfig, TrainConfig
from lstm_textgen.errors import TextgenError
from lstm_textgen.store.run_dir import load_run_config, save_run_config


def test_round_trip(tmp_path):
    model = ModelConfig(vocab_size=66, units=32, num_layers=3, dropout=0.1, implementation="keras")
    train = TrainConfig(text_files=["a.txt", "b/*.txt"], seq_len=50, max_steps=10)
    save_run_config(str(tmp_path), model, train)
    assert load_run_config(str(tmp_path)) == (model, train)
    assert json.loads((tmp_path / "config.json").read_text())["model"]["units"] == 32


def test_missing_and_foreign_configs(tmp_path):
    with pytest.raises(TextgenError, match="not a training run"):
        load_run_config(str(tmp_path))
    save_run_config(str(tmp_path), ModelConfig(), TrainConfig())
    payload = json.loads((tmp_path / "config.json").read_text())
    payload["model"]["attention_heads"] = 8
    (tmp_path / "config.json").write_text(json.dumps(payload))
    with pytest.raises(TextgenError, match="attention_heads"):
        load_run_config(str(tmp_path))


@pytest.mark.parametrize(
    "config",
    [
        ModelConfig(units=0),
        ModelConfig(dropout=1.0),
        ModelConfig(implementation="cudnn"),
        TrainConfig(seq_len=0),
        TrainConfig(learning_rate=0),
        TrainConfig(epochs=1, max_steps=5),
        TrainConfig(checkpoint_every=0),
    ],
)
def test_validation(config):
    with pytest.raises(TextgenError):
        config.validate()
