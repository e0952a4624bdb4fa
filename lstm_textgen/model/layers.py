"""`GateLSTMCell` (one step) and `GateLSTM` (the loop): `keras.layers.LSTMCell` and
`keras.layers.LSTM`, argument by argument, with the four gates written out like the
equations. The arithmetic itself is in `lstm_textgen.model.recurrence`."""

from __future__ import annotations

import numbers
from types import SimpleNamespace

import keras
import tensorflow as tf

from lstm_textgen.config import IMPLEMENTATIONS
from lstm_textgen.errors import first_line
from lstm_textgen.model.recurrence import (
    GateFunctions,
    gate_scale,
    gate_step,
    lstm_cell,
    lstm_loop,
    lstm_loop_with_gates,
    lstm_sequence,
    lstm_update,
    product,
    swap_time_batch,
)

__all__ = ["GateLSTM", "GateLSTMCell", "lstm_cell"]

USE_CUDNN = ("auto", True, False)

_EXAMPLES = {
    "activations": "'tanh'",
    "initializers": "'glorot_uniform'",
    "regularizers": "'l2'",
    "constraints": "'non_neg'",
}


def _resolve(kind, argument, value):
    """`keras.<kind>.get(value)` (kind: "activations", "initializers", ...), or a one-line
    error that names the argument."""
    try:
        return getattr(keras, kind).get(value)
    except (ValueError, TypeError) as e:
        raise ValueError(
            f"{argument}={value!r} is not a Keras {kind[:-1]} ({first_line(e)}); give a name "
            f"Keras knows, such as {_EXAMPLES[kind]}, a keras.{kind} object, or None"
        ) from None


def _positive_units(units):
    whole = isinstance(units, numbers.Real) and not isinstance(units, bool)
    if not whole or units < 1 or not float(units).is_integer():
        raise ValueError(f"units must be a positive integer, got {units!r}")
    return int(units)


def _rate(argument, rate):
    if not 0.0 <= float(rate) < 1.0:
        raise ValueError(f"{argument} must be in [0, 1), got {rate}")
    return float(rate)


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
            _positive_units(units),
            activation=_resolve("activations", "activation", activation),
            recurrent_activation=_resolve(
                "activations", "recurrent_activation", recurrent_activation
            ),
            kernel_initializer=_resolve("initializers", "kernel_initializer", kernel_initializer),
            recurrent_initializer=_resolve(
                "initializers", "recurrent_initializer", recurrent_initializer
            ),
            bias_initializer=_resolve("initializers", "bias_initializer", bias_initializer),
            kernel_regularizer=_resolve("regularizers", "kernel_regularizer", kernel_regularizer),
            recurrent_regularizer=_resolve(
                "regularizers", "recurrent_regularizer", recurrent_regularizer
            ),
            bias_regularizer=_resolve("regularizers", "bias_regularizer", bias_regularizer),
            kernel_constraint=_resolve("constraints", "kernel_constraint", kernel_constraint),
            recurrent_constraint=_resolve(
                "constraints", "recurrent_constraint", recurrent_constraint
            ),
            bias_constraint=_resolve("constraints", "bias_constraint", bias_constraint),
            dropout=_rate("dropout", dropout),
            recurrent_dropout=_rate("recurrent_dropout", recurrent_dropout),
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


# The cell's arguments, which GateLSTM passes on and reads back (as keras.layers.LSTM does).
_CELL_ARGUMENTS = (
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


def _cell_property(name):
    return property(lambda self: getattr(self.cell, name), doc=f"The cell's `{name}`.")


@keras.saving.register_keras_serializable(package="lstm_textgen")
class GateLSTM(keras.layers.Layer):
    """Long short-term memory layer with the gate arithmetic spelled out: a stand-in for
    `keras.layers.LSTM`, with its arguments, defaults, weights and numbers.

    At each time step t, with input `x_t`, previous output `h` and previous cell `c`,
    the layer computes four gates from one fused product
    `z = x_t @ kernel + h @ recurrent_kernel + bias`, split in Keras's order:

    - input gate `i = sigmoid(z_i)`: how much of the candidate is written to the cell;
    - forget gate `f = sigmoid(z_f)`: how much of the old cell survives (its bias starts
      at 1, so a fresh layer remembers by default);
    - candidate `g = tanh(z_g)`, also called the input modulation: what could be written;
    - output gate `o = sigmoid(z_o)`: how much of the squashed cell becomes the output;

    then `c_t = f * c + i * g` and `h_t = o * tanh(c_t)` (`activation` takes tanh's place
    and `recurrent_activation` sigmoid's where they are given).

    The input projection `x_t @ kernel + bias` is computed for every time step in one
    matrix product before the recurrence, so each step costs one `[batch, units] x
    [units, 4 * units]` product plus elementwise work. With the default activations and
    no mask, recurrent dropout or `unroll`, the recurrence runs in `lstm_sequence`, whose
    backward pass is written by hand; otherwise in a loop of the same gate equations that
    TensorFlow differentiates (`lstm_loop`). docs/layer.md has the table of which
    argument runs where.

    The layer is a loop around one `GateLSTMCell`, which owns the weights in
    `keras.layers.LSTM`'s layout, names and gate order (`cell.kernel [D, 4H]`,
    `cell.recurrent_kernel [H, 4H]`, `cell.bias [4H]`), so
    `keras.layers.LSTM(H).set_weights(gate_lstm.get_weights())` and the reverse need no
    conversion, and a `keras.layers.LSTM` config builds the same layer
    (`GateLSTM.from_config`). `inner_loop` picks the loop: with `implementation="keras"`
    it hands the sequence and every argument to `keras.layers.LSTM` (cuDNN on a GPU,
    under Keras's conditions) over the cell's weights, except with a mask, which takes
    the gate loop (cuDNN takes only right-padded masks, and a model's masks have holes
    where a prompt has unknown characters).

    Args:
        units: size of the hidden and cell state, H.
        activation, recurrent_activation, use_bias, kernel_initializer,
            recurrent_initializer, bias_initializer, unit_forget_bias, kernel_regularizer,
            recurrent_regularizer, bias_regularizer, kernel_constraint,
            recurrent_constraint, bias_constraint, dropout, recurrent_dropout, seed: the
            cell's, see `GateLSTMCell`.
        activity_regularizer: regularizer of the layer's outputs.
        return_sequences: return the outputs of all steps `[B, T, H]` instead of the last
            one `[B, H]`.
        return_state: also return the final `h` and `c`, as `[output, h, c]`.
        go_backwards: read the sequence from its last step to its first, and return the
            outputs in that order.
        stateful: each call starts from the state the previous call ended in, row by row
            (`reset_state()` sets it to zeros); the batch size must be fixed.
        unroll: a Python loop over the steps instead of a graph loop (the same numbers;
            the number of steps must be fixed).
        use_cudnn: `"auto"`, True or False, for `implementation="keras"`: whether
            Keras's LSTM may (must) use cuDNN. The gate loop uses no cuDNN, so True there
            is an error.
        zero_output_for_mask: a masked step outputs zeros instead of the previous output
            (`keras.layers.Bidirectional` sets it for sequences, as for Keras's LSTM).
        time_major: inputs and output sequences are `[time, batch, features]` instead
            of `[batch, time, features]`. The recurrence runs time-major either way; a
            stack of layers that passes time-major sequences saves a transpose of every
            layer's input and output (and of their gradients).
        implementation: `"gates"` (the explicit loop in this class) or `"keras"`
            (`keras.layers.LSTM` over the same weights).
        matmul_dtype: dtype of the operands of the gate loop's matrix products (the input
            projection, the recurrent product and their gradients), e.g. `"bfloat16"`
            on a CPU with bfloat16 instructions; the state, the gates' elementwise math
            and the weights stay in the compute dtype. Off the hand-written path (a mask,
            recurrent dropout, other activations, `unroll`) the recurrent product keeps
            the compute dtype. None: the compute dtype.

    Call arguments:
        inputs: `[batch, time, features]` (`[time, batch, features]` if `time_major`).
        initial_state: optional `[h0, c0]`, each `[batch, units]`; zeros otherwise (the
            carried state if `stateful`).
        mask: optional boolean `[batch, time]`, in either layout; False steps are skipped.
        training: whether dropout is active.

    Example:

    >>> layer = GateLSTM(4, return_sequences=True)
    >>> layer(tf.zeros([2, 3, 5])).shape
    TensorShape([2, 3, 4])
    >>> keras.layers.Bidirectional(GateLSTM(4))(tf.zeros([2, 3, 5])).shape
    TensorShape([2, 8])
    """

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias=True,
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        use_cudnn="auto",
        zero_output_for_mask=False,
        time_major=False,
        implementation="gates",
        matmul_dtype=None,
        **kwargs,
    ):
        super().__init__(
            activity_regularizer=_resolve(
                "regularizers", "activity_regularizer", activity_regularizer
            ),
            **kwargs,
        )
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(
                f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}"
            )
        if use_cudnn not in USE_CUDNN:
            raise ValueError(f"use_cudnn must be one of {USE_CUDNN}, got {use_cudnn!r}")
        if use_cudnn is True and implementation != "keras":
            raise ValueError(
                "use_cudnn=True needs implementation='keras' (the gate loop uses no cuDNN); "
                "pass implementation='keras', or use_cudnn='auto'"
            )
        cell_arguments = {
            "activation": activation,
            "recurrent_activation": recurrent_activation,
            "use_bias": use_bias,
            "kernel_initializer": kernel_initializer,
            "recurrent_initializer": recurrent_initializer,
            "bias_initializer": bias_initializer,
            "unit_forget_bias": unit_forget_bias,
            "kernel_regularizer": kernel_regularizer,
            "recurrent_regularizer": recurrent_regularizer,
            "bias_regularizer": bias_regularizer,
            "kernel_constraint": kernel_constraint,
            "recurrent_constraint": recurrent_constraint,
            "bias_constraint": bias_constraint,
            "dropout": dropout,
            "recurrent_dropout": recurrent_dropout,
        }
        self.cell = GateLSTMCell(units, seed=seed, name="cell", **cell_arguments)
        self.units = self.cell.units
        self.seed = seed
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.unroll = bool(unroll)
        self.use_cudnn = use_cudnn
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.time_major = bool(time_major)
        self.implementation = implementation
        self.matmul_dtype = keras.backend.standardize_dtype(matmul_dtype) if matmul_dtype else None
        self.supports_masking = True
        self.input_spec = keras.layers.InputSpec(ndim=3)
        # Keras's LSTM for `implementation="keras"`, and the carried state of a stateful
        # layer, kept where Keras's attribute tracking does not look: the cell stays the
        # one owner of the weights in `weights` and in saved files (Keras's own RNN keeps
        # its state variables out of them too); `build` hands the LSTM the cell's
        # variables.
        self._untracked = SimpleNamespace(lstm=None, states=None)
        if implementation == "keras":
            self._untracked.lstm = keras.layers.LSTM(
                self.units,
                activation=self.cell.activation,
                recurrent_activation=self.cell.recurrent_activation,
                use_bias=self.cell.use_bias,
                dropout=self.cell.dropout,
                recurrent_dropout=self.cell.recurrent_dropout,
                seed=seed,
                go_backwards=self.go_backwards,
                unroll=self.unroll,
                use_cudnn=use_cudnn,
                return_sequences=True,
                return_state=True,
                name="keras_lstm",
            )

    @property
    def states(self):
        """A stateful layer's carried `[h, c]` variables (None before `build`, and for a
        layer that is not stateful)."""
        return self._untracked.states

    def build(self, input_shape):
        self.cell.build((input_shape[-1],))
        if self.stateful:
            self._build_states(input_shape[1] if self.time_major else input_shape[0])
        lstm = self._untracked.lstm
        if lstm is not None:
            lstm.cell.kernel = self.cell.kernel
            lstm.cell.recurrent_kernel = self.cell.recurrent_kernel
            lstm.cell.bias = self.cell.bias
            lstm.cell.built = True
            lstm.build((None, None, input_shape[-1]))

    def _build_states(self, batch_size):
        if self._untracked.states is not None:
            self.reset_state()
            return
        if batch_size is None:
            raise ValueError(
                f"{self.name}: stateful=True needs a fixed batch size, and the input's is "
                "not known; give it one, e.g. keras.Input(batch_shape=(32, None, features))"
            )
        self._untracked.states = [
            keras.Variable(
                tf.zeros([batch_size, self.units]),
                trainable=False,
                dtype=self.variable_dtype,
                name="rnn_state",
            )
            for _ in range(2)
        ]

    def reset_state(self):
        """Set a stateful layer's carried state to zeros (nothing for any other layer)."""
        for state in self._untracked.states or ():
            state.assign(tf.zeros_like(state))

    def reset_states(self):
        """`reset_state()`, under Keras's older name."""
        self.reset_state()

    def step_weights(self):
        """The cell's `step_weights()`."""
        return self.cell.step_weights()

    def step(self, x_t, states, weights=None, projected=None):
        """One step for generation: the cell's `step`, see there."""
        return self.cell.step(x_t, states, weights, projected)

    def trace(self, inputs, initial_state=None):
        """Every step's gate activations, for inspection (not training).

        Runs the gate loop of `call` (`lstm_loop_with_gates`) over the steps in their
        order, keeping the gates.

        Args:
            inputs: `[B, T, D]`, batch-major whatever `time_major` says.
            initial_state: optional `[h0, c0]`; zeros otherwise.

        Returns:
            a dict of `[B, T, H]` tensors: `input_gate` (i), `forget_gate` (f),
            `candidate` (g), `output_gate` (o), `cell` (c_t) and `hidden` (h_t).
        """
        batch = tf.shape(inputs)[0]
        zeros = tf.zeros([batch, self.units], self.compute_dtype)
        h, c = (zeros, zeros) if initial_state is None else initial_state
        kernel, recurrent_kernel = (
            tf.convert_to_tensor(w) for w in (self.cell.kernel, self.cell.recurrent_kernel)
        )
        projected = tf.einsum("btd,dk->tbk", inputs, kernel)
        if self.cell.bias is not None:
            projected = projected + tf.convert_to_tensor(self.cell.bias)
        hidden, _, _, steps = lstm_loop_with_gates(
            projected, h, c, recurrent_kernel, self.cell.functions
        )
        names = {
            "input_gate": "i",
            "forget_gate": "f",
            "candidate": "g",
            "output_gate": "o",
            "cell": "cell",
        }
        traced = {name: swap_time_batch(steps[kept]) for name, kept in names.items()}
        return {**traced, "hidden": swap_time_batch(hidden)}

    def call(self, inputs, initial_state=None, mask=None, training=False):
        if self.unroll and inputs.shape[0 if self.time_major else 1] is None:
            raise ValueError(
                f"{self.name}: unroll=True needs a fixed number of time steps, and the "
                "input's is not known; give it one, e.g. keras.Input((steps, features)), "
                "or leave unroll off"
            )
        step_mask = None if mask is None else self._step_mask(inputs, mask)
        # From here on everything is time-major: [T, B, ...].
        if not self.time_major:
            inputs = swap_time_batch(inputs)
        h, c = self._initial_state(inputs, initial_state)
        sequence, last, h, c = self.inner_loop(inputs, h, c, step_mask, training)
        if self.stateful:
            for variable, value in zip(self._untracked.states, (h, c)):
                variable.assign(tf.cast(value, variable.dtype))
        sequence.set_shape([inputs.shape[0], inputs.shape[1], self.units])
        sequence = sequence if self.time_major else swap_time_batch(sequence)
        output = sequence if self.return_sequences else last
        return [output, h, c] if self.return_state else output

    def _step_mask(self, inputs, mask):
        """Bool `[T, B, 1]` from a `[batch, time]` mask, checked against the inputs."""
        if isinstance(mask, (list, tuple)):  # as Bidirectional and return_state pass it
            mask = mask[0]
        mask = tf.convert_to_tensor(mask)
        if mask.shape.rank == 3 and mask.shape[-1] == 1:
            mask = mask[:, :, 0]
        batch, steps = (inputs.shape[1], inputs.shape[0]) if self.time_major else inputs.shape[:2]
        known = (batch, steps)
        if mask.shape.rank != 2 or any(
            a is not None and b is not None and a != b for a, b in zip(mask.shape, known)
        ):
            shown = "x".join("?" if n is None else str(n) for n in known)
            raise ValueError(
                f"{self.name}: the mask must be boolean [batch, time] = [{shown}] for these "
                f"inputs, got shape {tuple(mask.shape)}"
            )
        return tf.transpose(tf.cast(mask, tf.bool))[:, :, None]

    def _initial_state(self, inputs, initial_state):
        """`(h0, c0)` in the compute dtype: given, carried (stateful) or zeros."""
        if initial_state is None and self.stateful:
            initial_state = self._untracked.states
            batch = inputs.shape[1]
            expected = initial_state[0].shape[0]
            if batch is not None and batch != expected:
                raise ValueError(
                    f"{self.name}: a stateful layer built for batches of {expected} got a "
                    f"batch of {batch}; feed batches of {expected}, or build a new layer"
                )
        if initial_state is None:
            zeros = tf.zeros([tf.shape(inputs)[1], self.units], dtype=self.compute_dtype)
            return zeros, zeros
        if len(initial_state) != 2:
            raise ValueError(
                f"{self.name}: initial_state must be [h0, c0], two [batch, {self.units}] "
                f"tensors, got {len(initial_state)}"
            )
        return tuple(tf.cast(tf.convert_to_tensor(s), self.compute_dtype) for s in initial_state)

    def inner_loop(self, inputs, h, c, mask=None, training=False):
        """The recurrence over time-major `inputs [T, B, D]` from the state `(h, c)`.

        With `implementation="keras"` and no mask, Keras's LSTM runs it (cuDNN on a GPU
        where Keras's conditions allow), dropout included; otherwise the gate loop does:
        `lstm_sequence` for the default activations without mask, recurrent dropout or
        unroll, `lstm_loop` for the rest. `mask` is bool `[T, B, 1]`.

        Returns `(sequence [T, B, H], last output [B, H], h_T, c_T)`, the sequence in the
        order it was read (backwards with `go_backwards`).
        """
        lstm = self._untracked.lstm
        if lstm is not None and mask is None:
            sequence, h, c = lstm(swap_time_batch(inputs), initial_state=[h, c], training=training)
            return swap_time_batch(sequence), h, h, c

        if training and self.cell.dropout > 0.0:
            keep = keras.random.dropout(
                tf.ones_like(inputs[0]), self.cell.dropout, seed=self.cell.seed_generator
            )
            inputs = inputs * keep[None]
        recurrent_keep = None
        if training and self.cell.recurrent_dropout > 0.0:
            recurrent_keep = keras.random.dropout(
                tf.ones_like(h), self.cell.recurrent_dropout, seed=self.cell.seed_generator
            )
        if self.go_backwards:
            inputs = tf.reverse(inputs, [0])
            mask = None if mask is None else tf.reverse(mask, [0])
        projected = self._project(inputs)
        functions = self.cell.functions
        if mask is None and recurrent_keep is None and functions is None and not self.unroll:
            recurrent_kernel = tf.cast(
                self.cell.recurrent_kernel, self.matmul_dtype or self.compute_dtype
            )
            sequence, h, c = lstm_sequence(projected, h, c, recurrent_kernel)
            return sequence, h, h, c
        # The float32 kernel here: TensorFlow's own gradient of this loop would sum the
        # kernel's gradient over the steps in the products' dtype.
        return lstm_loop(
            projected,
            h,
            c,
            tf.convert_to_tensor(self.cell.recurrent_kernel),
            mask=mask,
            recurrent_keep=recurrent_keep,
            functions=functions,
            zero_output_for_mask=self.zero_output_for_mask,
            unroll=self.unroll,
        )

    def _project(self, inputs):
        """`inputs @ kernel + bias`, `[T, B, 4H]`, for every step at once."""
        # One [T*B, D] x [D, 4H] product for all steps, in the loop's time-major order so
        # that neither the [T, B, 4H] result nor its gradient needs a transpose. A
        # `bias_add` right after a float32 `matmul` is fused into it by TensorFlow's
        # graph optimizer, which saves a pass over the [T, B, 4H] result.
        kernel = tf.cast(self.cell.kernel, self.matmul_dtype or self.compute_dtype)
        flat = product(tf.reshape(inputs, [-1, tf.shape(inputs)[-1]]), kernel)
        if self.cell.bias is not None:
            flat = tf.nn.bias_add(flat, self.cell.bias)
        projected = tf.reshape(flat, tf.concat([tf.shape(inputs)[:2], [4 * self.units]], 0))
        projected.set_shape([inputs.shape[0], inputs.shape[1], 4 * self.units])
        return projected

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        if self.return_sequences and mask is not None:
            return [mask, None, None] if self.return_state else mask
        return [None, None, None] if self.return_state else None

    def compute_output_shape(self, input_shape):
        batch, time = input_shape[0], input_shape[1]
        if self.time_major:
            batch, time = time, batch
        state = (batch, self.units)
        output = (input_shape[0], input_shape[1], self.units) if self.return_sequences else state
        return [output, state, state] if self.return_state else output

    def get_config(self):
        config = super().get_config()
        cell = self.cell.get_config()
        config.update({name: cell[name] for name in ("units", *_CELL_ARGUMENTS)})
        config.update(
            {
                "activity_regularizer": keras.regularizers.serialize(self.activity_regularizer),
                "seed": self.seed,
                "return_sequences": self.return_sequences,
                "return_state": self.return_state,
                "go_backwards": self.go_backwards,
                "stateful": self.stateful,
                "unroll": self.unroll,
                "use_cudnn": self.use_cudnn,
                "zero_output_for_mask": self.zero_output_for_mask,
                "time_major": self.time_major,
                "implementation": self.implementation,
                "matmul_dtype": self.matmul_dtype,
            }
        )
        return config


# keras.layers.LSTM reads these from its cell; so does GateLSTM.
for _name in _CELL_ARGUMENTS:
    setattr(GateLSTM, _name, _cell_property(_name))
del _name
