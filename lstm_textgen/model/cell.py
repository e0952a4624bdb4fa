"""`GateLSTMCell`: one LSTM step, `keras.layers.LSTMCell` argument by argument, with the
four gates written out like the equations; the owner of the weights that `GateLSTM`
(`lstm_textgen.model.layers`) loops over. Its arguments are checked in
`lstm_textgen.model.arguments`, its arithmetic is in `lstm_textgen.model.recurrence`."""

from __future__ import annotations

import keras
import tensorflow as tf

from lstm_textgen.model.arguments import check_rate, positive_units, resolve
from lstm_textgen.model.recurrence import GateFunctions, gate_scale, gate_step, lstm_update

__all__ = ["GateLSTMCell"]


def _is_default(activation, recurrent_activation):
    """Whether the activations are Keras's defaults, which the fast paths assume."""
    return (
        activation is keras.activations.tanh and recurrent_activation is keras.activations.sigmoid
    )


@keras.saving.register_keras_serializable(package="lstm_textgen")
class GateLSTMCell(keras.layers.LSTMCell):
    """One LSTM step with the four gates spelled out; the owner of the weights.

    A `keras.layers.LSTMCell` with its arithmetic written out: the same arguments,
    defaults, weights (built by Keras: names, shapes, gate order i, f, g, o, and the
    forget bias `unit_forget_bias` starts), config and dropout masks (one per sequence
    in `keras.layers.RNN`, drawn by Keras), and its `call` is `gate_step`:
    `lstm_update` of `z = x_t @ kernel + h @ recurrent_kernel + bias`, returning
    `(h_t, [h_t, c_t])`. So `keras.layers.RNN(GateLSTMCell(H))` runs it step by step as
    it runs `keras.layers.LSTMCell(H)`. `GateLSTM` runs it over a sequence much faster,
    projecting every step's input in one product first, and `step` runs it for
    generation on weights read once.

    Args:
        units: size of the hidden and cell state, H.
        activation: the candidate's and the output's squashing function (default tanh).
        recurrent_activation: the input, forget and output gates' function (default
            sigmoid).
        use_bias: whether the gates have a bias (`bias [4H]`).
        kernel_initializer, recurrent_initializer, bias_initializer: initializers of
            `kernel [D, 4H]`, `recurrent_kernel [H, 4H]` and `bias`.
        unit_forget_bias: start the forget gate's quarter of the bias at 1 (the other
            quarters from `bias_initializer`), so a fresh cell remembers by default.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: regularizers of the
            weights; their terms are in `layer.losses`.
        kernel_constraint, recurrent_constraint, bias_constraint: constraints the
            optimizer applies to the weights after each step.
        dropout: fraction of the input units dropped in training, in [0, 1).
        recurrent_dropout: fraction of `h`'s units dropped before the recurrent product in
            training, in [0, 1).
        seed: seed of the dropout masks.

    Example:

    >>> cell = GateLSTMCell(4)
    >>> h, (h, c) = cell(tf.zeros([2, 5]), [tf.zeros([2, 4]), tf.zeros([2, 4])])
    >>> h.shape
    TensorShape([2, 4])
    """

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        **kwargs,
    ):
        # Checked here, so that a bad value is one line naming its argument; Keras then
        # stores them as it does for its own cell.
        super().__init__(
            positive_units(units),
            activation=resolve("activations", "activation", activation),
            recurrent_activation=resolve(
                "activations", "recurrent_activation", recurrent_activation
            ),
            kernel_initializer=resolve("initializers", "kernel_initializer", kernel_initializer),
            recurrent_initializer=resolve(
                "initializers", "recurrent_initializer", recurrent_initializer
            ),
            bias_initializer=resolve("initializers", "bias_initializer", bias_initializer),
            kernel_regularizer=resolve("regularizers", "kernel_regularizer", kernel_regularizer),
            recurrent_regularizer=resolve(
                "regularizers", "recurrent_regularizer", recurrent_regularizer
            ),
            bias_regularizer=resolve("regularizers", "bias_regularizer", bias_regularizer),
            kernel_constraint=resolve("constraints", "kernel_constraint", kernel_constraint),
            recurrent_constraint=resolve(
                "constraints", "recurrent_constraint", recurrent_constraint
            ),
            bias_constraint=resolve("constraints", "bias_constraint", bias_constraint),
            dropout=check_rate("dropout", dropout),
            recurrent_dropout=check_rate("recurrent_dropout", recurrent_dropout),
            **kwargs,
        )
        # None: sigmoid and tanh, which the one-sigmoid gates and the hand-written
        # gradient assume; other functions take the same equations as they are.
        self.functions = (
            None
            if _is_default(self.activation, self.recurrent_activation)
            else GateFunctions(self.activation, self.recurrent_activation)
        )

    def call(self, inputs, states, training=False):
        h, c = states
        input_mask = self.get_dropout_mask(inputs) if training and self.dropout else None
        state_mask = (
            self.get_recurrent_dropout_mask(h) if training and self.recurrent_dropout else None
        )
        z = _masked_product(inputs, input_mask, self.kernel) + _masked_product(
            h, state_mask, self.recurrent_kernel
        )
        if self.bias is not None:
            z = z + tf.convert_to_tensor(self.bias)
        _, h_t, c_t = lstm_update(z, c, functions=self.functions)
        return h_t, [h_t, c_t]

    def step_weights(self):
        """`(kernel, recurrent_kernel, bias)` as tensors for `step(..., weights=)` (a zero
        bias without `use_bias`). With the default activations each has its candidate
        columns doubled (`gate_scale`): a step then takes its four activations in one
        sigmoid without scaling `z` first (`gate_activations`)."""
        bias = self.bias if self.bias is not None else tf.zeros([4 * self.units], self.kernel.dtype)
        weights = tuple(tf.convert_to_tensor(w) for w in (self.kernel, self.recurrent_kernel, bias))
        if self.functions is not None:
            return weights
        scale = gate_scale(self.units, self.kernel.dtype)
        return tuple(w * scale for w in weights)

    def step(self, x_t, states, weights=None, projected=None):
        """One step for generation: `x_t [B, D]`, `states = (h, c)` -> `(h_t, (h_t, c_t))`.

        `weights`, from `step_weights()`, saves reading the variables again at every step
        of a graph loop. `projected`, if given, is `x_t @ kernel + bias` already computed
        from those weights (a model's first layer looks it up by character id), and `x_t`
        is not read.
        """
        h, c = states
        kernel, recurrent_kernel, bias = self.step_weights() if weights is None else weights
        if projected is None:
            projected = tf.matmul(x_t, kernel) + bias
        prescaled = self.functions is None
        h_t, c_t = gate_step(projected, h, c, recurrent_kernel, prescaled, self.functions)[1:]
        return h_t, (h_t, c_t)


def _masked_product(x, mask, kernel):
    """`(x * mask) @ kernel` (`x @ kernel` without a mask). Keras hands a cell with
    recurrent dropout four masks, one per gate (its LSTMCell then makes each gate's
    product apart): each quarter of the kernel's columns then takes its own."""
    kernel = tf.convert_to_tensor(kernel)
    if mask is None:
        return tf.matmul(x, kernel)
    if not isinstance(mask, (list, tuple)):
        return tf.matmul(x * mask, kernel)
    quarters = tf.split(kernel, 4, axis=1)
    return tf.concat([tf.matmul(x * m, k) for m, k in zip(mask, quarters)], axis=-1)
