"""The checks of `GateLSTMCell`'s and `GateLSTM`'s arguments and inputs, shared by
`lstm_textgen.model.cell` and `lstm_textgen.model.layers`: each bad value fails with one
line that names its argument. Also the names of the cell's arguments, which `GateLSTM`
passes on and reads back."""

from __future__ import annotations

import numbers

import keras
import tensorflow as tf

from lstm_textgen.config import IMPLEMENTATIONS
from lstm_textgen.errors import first_line

__all__ = [
    "CELL_ARGUMENTS",
    "USE_CUDNN",
    "check_loop_arguments",
    "check_rate",
    "positive_units",
    "resolve",
    "step_mask",
]

USE_CUDNN = ("auto", True, False)

EXAMPLES = {
    "activations": "'tanh'",
    "initializers": "'glorot_uniform'",
    "regularizers": "'l2'",
    "constraints": "'non_neg'",
}


def resolve(kind, argument, value):
    """`keras.<kind>.get(value)` (kind: "activations", "initializers", ...), or a one-line
    error that names the argument."""
    try:
        return getattr(keras, kind).get(value)
    except (ValueError, TypeError) as e:
        raise ValueError(
            f"{argument}={value!r} is not a Keras {kind[:-1]} ({first_line(e)}); give a name "
            f"Keras knows, such as {EXAMPLES[kind]}, a keras.{kind} object, or None"
        ) from None


def positive_units(units):
    """`units` as an int, if it is a whole number of at least 1."""
    whole = isinstance(units, numbers.Real) and not isinstance(units, bool)
    if not whole or units < 1 or not float(units).is_integer():
        raise ValueError(f"units must be a positive integer, got {units!r}")
    return int(units)


def check_rate(argument, rate):
    """A dropout `rate` as a float, if it is in [0, 1)."""
    if not 0.0 <= float(rate) < 1.0:
        raise ValueError(f"{argument} must be in [0, 1), got {rate}")
    return float(rate)


def check_loop_arguments(implementation, use_cudnn):
    """`GateLSTM`'s `implementation` and `use_cudnn`, checked together."""
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}")
    if use_cudnn not in USE_CUDNN:
        raise ValueError(f"use_cudnn must be one of {USE_CUDNN}, got {use_cudnn!r}")
    if use_cudnn is True and implementation != "keras":
        raise ValueError(
            "use_cudnn=True needs implementation='keras' (the gate loop uses no cuDNN); "
            "pass implementation='keras', or use_cudnn='auto'"
        )


# The cell's arguments, which GateLSTM passes on and reads back (as keras.layers.LSTM does).
CELL_ARGUMENTS = (
    "activation",
    "recurrent_activation",
    "use_bias",
    "kernel_initializer",
    "recurrent_initializer",
    "bias_initializer",
    "unit_forget_bias",
    "kernel_regularizer",
    "recurrent_regularizer",
    "bias_regularizer",
    "kernel_constraint",
    "recurrent_constraint",
    "bias_constraint",
    "dropout",
    "recurrent_dropout",
)


def step_mask(name, inputs, mask, time_major):
    """Bool `[T, B, 1]` from a `[batch, time]` mask, checked against the inputs (`name`:
    the layer's, for the error)."""
    if isinstance(mask, (list, tuple)):  # as Bidirectional and return_state pass it
        mask = mask[0]
    mask = tf.convert_to_tensor(mask)
    if mask.shape.rank == 3 and mask.shape[-1] == 1:
        mask = mask[:, :, 0]
    batch, steps = (inputs.shape[1], inputs.shape[0]) if time_major else inputs.shape[:2]
    known = (batch, steps)
    if mask.shape.rank != 2 or any(
        a is not None and b is not None and a != b for a, b in zip(mask.shape, known)
    ):
        shown = "x".join("?" if n is None else str(n) for n in known)
        raise ValueError(
            f"{name}: the mask must be boolean [batch, time] = [{shown}] for these "
            f"inputs, got shape {tuple(mask.shape)}"
        )
    return tf.transpose(tf.cast(mask, tf.bool))[:, :, None]
