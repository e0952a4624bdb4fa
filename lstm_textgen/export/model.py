"""What the SavedModel export and the LiteRT export share: the model they convert, the
layout of its state in a signature, and the specs of per-row and state inputs."""

from __future__ import annotations

import tensorflow as tf

from lstm_textgen.config import ModelConfig
from lstm_textgen.model.language_model import CharLanguageModel


def stacked_state(state):
    """A model's state tuple as the `h` and `c` tensors `[B, layers, units]` of a signature."""
    return {
        "h": tf.stack([s[0] for s in state], axis=1),
        "c": tf.stack([s[1] for s in state], axis=1),
    }


def unstacked_state(h, c, num_layers: int):
    """The `h` and `c` inputs `[B, layers, units]` of a signature as a model's state tuple."""
    return tuple((h[:, k], c[:, k]) for k in range(num_layers))


def row_spec(dtype, name):
    """A `[B]` signature input."""
    return tf.TensorSpec([None], dtype, name=name)


def state_spec(config: ModelConfig, name: str):
    """The `h` or `c` input of a `step` signature: `[B, layers, units]`."""
    return tf.TensorSpec([None, config.num_layers, config.units], tf.float32, name=name)


def export_model(source: str | None, checkpoint: str):
    """The `TrainedModel` of a run, an export or a shipped model (`sources.load_source`;
    None: the shipped model), to export: its model on the gates implementation."""
    from lstm_textgen.store.shipped import DEFAULT_MODEL
    from lstm_textgen.store.sources import load_source

    trained = load_source(source or DEFAULT_MODEL, checkpoint)
    trained.model = serving_model(trained.model, trained.model_config)
    return trained


def serving_model(model: CharLanguageModel, config: ModelConfig) -> CharLanguageModel:
    """A copy of `model` on the "gates" implementation, so no cuDNN op is exported."""
    if model.implementation == "gates":
        return model
    copy = CharLanguageModel.from_model_config(
        ModelConfig(**{**config.__dict__, "implementation": "gates"})
    )
    copy.set_weights(model.get_weights())
    return copy
