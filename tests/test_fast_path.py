"""Speed must never change results: the default training path (GateLSTM's gate loop with
its hand-written gradient, train step compiled with XLA) and the reference path
(keras.layers.LSTM over the same weights, no XLA) give the same losses."""

import keras
import numpy as np

from lstm_textgen.config import ModelConfig, TrainConfig
from lstm_textgen.model.language_model import CharLanguageModel
from lstm_textgen.training.optimizer import compile_model

from helpers import assert_close

V, B, T = 9, 3, 6


def test_fast_and_reference_paths_give_the_same_losses():
    config = dict(vocab_size=V, embedding_dim=4, units=3, num_layers=2)
    fast = CharLanguageModel.from_model_config(ModelConfig(**config, implementation="gates"))
    reference = CharLanguageModel.from_model_config(ModelConfig(**config, implementation="keras"))
    reference.set_weights(fast.get_weights())
    train_config = TrainConfig(learning_rate=0.05)
    compile_model(fast, train_config, jit_compile=True, total_steps=3)
    compile_model(reference, train_config, jit_compile=False, total_steps=3)

    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.integers(1, V, size=(B, T)).astype("int32")
        y = rng.integers(1, V, size=(B, T)).astype("int32")
        # Each step's loss depends on all earlier steps' gradients and updates.
        assert_close(
            fast.train_on_batch(x, y), reference.train_on_batch(x, y), atol=1e-4, rtol=1e-4
        )
    for a, b in zip(fast.get_weights(), reference.get_weights()):
        assert_close(a, b, atol=1e-4, rtol=1e-4)
    assert keras.config.backend() == "tensorflow"
