"""What both exports share: the state layout of a signature and the model they convert."""

import numpy as np
import tensorflow as tf

from lstm_textgen.config import ModelConfig
from lstm_textgen.export.model import serving_model
from lstm_textgen.generation.signature_state import (
    row_spec,
    stacked_state,
    state_spec,
    unstacked_state,
)
from lstm_textgen.model.language_model import CharLanguageModel

from helpers import assert_close
from saved_model import LAYERS, UNITS


def test_a_state_stacks_to_signature_tensors_and_back():
    rng = np.random.default_rng(0)
    state = tuple(
        (tf.constant(rng.normal(size=(2, 3))), tf.constant(rng.normal(size=(2, 3))))
        for _ in range(4)
    )
    stacked = stacked_state(state)
    assert stacked["h"].shape == stacked["c"].shape == (2, 4, 3)
    assert_close(stacked["c"][:, 2], state[2][1])
    for (h, c), (h2, c2) in zip(unstacked_state(stacked["h"], stacked["c"], 4), state, strict=True):
        assert_close(h, h2)
        assert_close(c, c2)
    spec = state_spec(ModelConfig(units=3, num_layers=4), "h")
    assert spec.shape.as_list() == [None, 4, 3] and spec.name == "h"
    assert row_spec(tf.int32, "seed").shape.as_list() == [None]


def test_keras_implementation_exports_the_gate_loop(served):

    config = ModelConfig(
        vocab_size=served["vocab"].size,
        embedding_dim=3,
        units=UNITS,
        num_layers=LAYERS,
        implementation="keras",
    )
    keras_model = CharLanguageModel.from_model_config(config)
    keras_model.set_weights(served["model"].get_weights())
    exported = serving_model(keras_model, config)
    assert all(layer.implementation == "gates" for layer in exported.lstm_layers)
    ids = tf.constant([[1, 2, 3]])
    assert_close(exported(ids), keras_model(ids))
