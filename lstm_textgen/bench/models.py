"""The model every training benchmark times: Embedding(66, 64) -> 2 x LSTM(H) -> Dense(66),
with Adam, as GateLSTM (`gate_model`) and as keras.layers.LSTM (`keras_model`)."""

from __future__ import annotations

import keras

from lstm_textgen.config import ModelConfig
from lstm_textgen.model.language_model import CharLanguageModel

VOCAB, EMBED, LAYERS = 66, 64, 2


def loss_fn():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def gate_model(units, jit, matmul_dtype=None):
    model = CharLanguageModel.from_model_config(
        ModelConfig(vocab_size=VOCAB, embedding_dim=EMBED, units=units, num_layers=LAYERS)
    )
    model.set_matmul_dtype(matmul_dtype)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss_fn(), jit_compile=jit)
    return model


def keras_model(units, jit):
    model = keras.Sequential(
        [keras.Input((None,), dtype="int32"), keras.layers.Embedding(VOCAB, EMBED)]
        + [keras.layers.LSTM(units, return_sequences=True) for _ in range(LAYERS)]
        + [keras.layers.Dense(VOCAB)]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss_fn(), jit_compile=jit)
    return model
