"""How a model's state travels through a signature: the `h` and `c` tensors
`[B, layers, units]`, and the specs of per-row and state inputs. The generation graph,
the SavedModel export and the LiteRT export share them."""

from __future__ import annotations

import tensorflow as tf

from lstm_textgen.config import ModelConfig


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
