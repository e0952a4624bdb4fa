"""`GateLSTM`: the loop over a sequence, `keras.layers.LSTM` argument by argument, around
one `GateLSTMCell` (`lstm_textgen.model.cell`, re-exported here), which owns the weights.
The arithmetic itself is in `lstm_textgen.model.recurrence`."""

from __future__ import annotations

from types import SimpleNamespace

import keras
import tensorflow as tf

from lstm_textgen.model.arguments import CELL_ARGUMENTS, check_loop_arguments, resolve, step_mask
from lstm_textgen.model.cell import GateLSTMCell
from lstm_textgen.model.recurrence import (
    lstm_cell,
    lstm_loop,
    lstm_loop_with_gates,
    lstm_sequence,
    product,
    swap_time_batch,
)

__all__ = ["GateLSTM", "GateLSTMCell", "lstm_cell"]


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
            activity_regularizer=resolve(
                "regularizers", "activity_regularizer", activity_regularizer
            ),
            **kwargs,
        )
        check_loop_arguments(implementation, use_cudnn)
        arguments = locals()  # the cell's arguments, passed on by name (CELL_ARGUMENTS)
        cell_arguments = {name: arguments[name] for name in CELL_ARGUMENTS}
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
        self._untracked = self._untracked_parts(seed)

    def _untracked_parts(self, seed):
        """Keras's LSTM for `implementation="keras"` (None otherwise), and the carried
        state of a stateful layer (None until `build`), kept where Keras's attribute
        tracking does not look: the cell stays the one owner of the weights in `weights`
        and in saved files (Keras's own RNN keeps its state variables out of them too);
        `build` hands the LSTM the cell's variables."""
        untracked = SimpleNamespace(lstm=None, states=None)
        if self.implementation == "keras":
            untracked.lstm = keras.layers.LSTM(
                self.units,
                activation=self.cell.activation,
                recurrent_activation=self.cell.recurrent_activation,
                use_bias=self.cell.use_bias,
                dropout=self.cell.dropout,
                recurrent_dropout=self.cell.recurrent_dropout,
                seed=seed,
                go_backwards=self.go_backwards,
                unroll=self.unroll,
                use_cudnn=self.use_cudnn,
                return_sequences=True,
                return_state=True,
                name="keras_lstm",
            )
        return untracked

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
        mask = None if mask is None else step_mask(self.name, inputs, mask, self.time_major)
        # From here on everything is time-major: [T, B, ...].
        if not self.time_major:
            inputs = swap_time_batch(inputs)
        h, c = self._initial_state(inputs, initial_state)
        sequence, last, h, c = self.inner_loop(inputs, h, c, mask, training)
        if self.stateful:
            for variable, value in zip(self._untracked.states, (h, c)):
                variable.assign(tf.cast(value, variable.dtype))
        sequence.set_shape([inputs.shape[0], inputs.shape[1], self.units])
        sequence = sequence if self.time_major else swap_time_batch(sequence)
        output = sequence if self.return_sequences else last
        return [output, h, c] if self.return_state else output

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
        config.update({name: cell[name] for name in ("units", *CELL_ARGUMENTS)})
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
for _name in CELL_ARGUMENTS:
    setattr(GateLSTM, _name, _cell_property(_name))
del _name
