"""`GateLSTM`: an LSTM layer whose four gates are written out like the equations."""

from __future__ import annotations

import keras
import tensorflow as tf

from lstm_textgen.config import IMPLEMENTATIONS


def lstm_gates(z, c):
    """One LSTM update from the fused pre-activations of the four gates.

    Args:
        z: `[batch, 4 * units]`, `x_t W + h_{t-1} U + b`, in Keras's gate order i, f, g, o.
        c: `[batch, units]`, the previous cell state.

    Returns:
        `(i, f, g, o, h_t, c_t)`: the input gate, forget gate, candidate, output gate, and
        the new output and cell state.
    """
    z_i, z_f, z_g, z_o = tf.split(z, 4, axis=-1)
    i = tf.sigmoid(z_i)
    f = tf.sigmoid(z_f)
    g = tf.tanh(z_g)
    o = tf.sigmoid(z_o)
    c_t = f * c + i * g
    h_t = o * tf.tanh(c_t)
    return i, f, g, o, h_t, c_t


def lstm_cell(z, c):
    """`(h_t, c_t)` of `lstm_gates`, for callers that do not need the gates."""
    return lstm_gates(z, c)[4:]


def product(a, b, equation=None):
    """`a @ b` (or `einsum(equation, a, b)`) with `b`'s dtype for the operands and `a`'s
    for the result: with a bfloat16 `b` the product runs on bfloat16 operands (the
    kernel accumulates in float32 and rounds its output once) while everything around it
    stays in `a`'s float32. With equal dtypes it is the plain product."""
    operand = tf.cast(a, b.dtype)
    result = tf.matmul(operand, b) if equation is None else tf.einsum(equation, operand, b)
    return tf.cast(result, a.dtype)


def lstm_loop(
    projected, h0, c0, recurrent_kernel, mask=None, recurrent_keep=None, keep_gates=False
):
    """The LSTM recurrence over pre-projected inputs: the one loop every path runs.

    Args:
        projected: `[T, B, 4H]`, `x_t @ kernel + bias` for every step (time-major).
        h0, c0: `[B, H]`, the initial state.
        recurrent_kernel: `[H, 4H]`; in bfloat16, the recurrent products take bfloat16
            operands (see `product`) and the state stays in `projected`'s dtype.
        mask: optional bool `[T, B, 1]`. At a False step the state is carried over and the
            output repeats the previous output (zeros before the first True step, whatever
            `h0` is), as in Keras.
        recurrent_keep: optional `[B, H]` recurrent-dropout mask, applied to `h` before the
            recurrent product.
        keep_gates: also return every step's gates and previous cell, which the
            hand-written gradient and `GateLSTM.trace` read.

    Returns:
        `(outputs [T, B, H], last output [B, H], h_T, c_T, gates, previous_cells)`:
        `gates` is `[T, B, 4H]` (the activations i, f, g, o) and `previous_cells`
        `[T, B, H]` (`c_{t-1}`), both None without `keep_gates`.
    """
    steps = tf.shape(projected)[0]
    static_steps = projected.shape[0]
    dtype = projected.dtype
    # Steps are read through TensorArrays: the gradient of slicing a captured tensor
    # inside the loop would build a full [T, B, 4H] tensor at every step.
    inputs = tf.TensorArray(dtype, size=steps).unstack(projected)
    step_mask = None if mask is None else tf.TensorArray(tf.bool, size=steps).unstack(mask)

    def body(t, h, c, last, outputs, *kept):
        h_in = h if recurrent_keep is None else h * recurrent_keep
        i, f, g, o, h_t, c_t = lstm_gates(inputs.read(t) + product(h_in, recurrent_kernel), c)
        if keep_gates:
            gates, previous_cells = kept
            kept = (gates.write(t, tf.concat([i, f, g, o], axis=-1)), previous_cells.write(t, c))
        if step_mask is not None:
            keep_step = step_mask.read(t)
            last = tf.where(keep_step, h_t, last)
            h_t = tf.where(keep_step, h_t, h)
            c_t = tf.where(keep_step, c_t, c)
        else:
            last = h_t
        return (t + 1, h_t, c_t, last, outputs.write(t, last), *kept)

    arrays = [tf.TensorArray(dtype, size=steps) for _ in range(3 if keep_gates else 1)]
    _, h_last, c_last, last, outputs, *kept = tf.while_loop(
        lambda t, *_: t < steps,
        body,
        (tf.constant(0), h0, c0, tf.zeros_like(h0), *arrays),
        # A fixed trip count lets XLA size the gradient's accumulators.
        maximum_iterations=steps,
    )
    outputs = _stack(outputs, h0, static_steps)
    gates = previous_cells = None
    if keep_gates:
        gates = _stack(kept[0], tf.concat([h0] * 4, axis=-1), static_steps)
        previous_cells = _stack(kept[1], c0, static_steps)
    return outputs, last, h_last, c_last, gates, previous_cells


@tf.custom_gradient
def lstm_sequence(projected, h0, c0, recurrent_kernel):
    """`lstm_loop` without mask or recurrent dropout, with a hand-written backward pass.

    Returns `(outputs [T, B, H], h_T, c_T)`.

    Backpropagation through time keeps one `[B, 4H] x [4H, H]` product per step; the
    gradient of `recurrent_kernel` is one `[H, T*B] x [T*B, 4H]` product after the loop,
    instead of one small product per step as automatic differentiation would do. The
    forward pass keeps the gates and the previous cell of every step; the backward pass
    recomputes `c_t = f * c_{t-1} + i * g` from them rather than storing a third array.
    """
    steps = tf.shape(projected)[0]
    static_steps = projected.shape[0]
    dtype = projected.dtype
    outputs, _, h_last, c_last, gate_values, previous_cells = lstm_loop(
        projected, h0, c0, recurrent_kernel, keep_gates=True
    )

    def grad(d_outputs, d_h_last, d_c_last):
        d_outputs = tf.zeros_like(outputs) if d_outputs is None else d_outputs
        d_h = tf.zeros_like(h0) if d_h_last is None else d_h_last
        d_c = tf.zeros_like(c0) if d_c_last is None else d_c_last
        d_out_steps = tf.TensorArray(dtype, size=steps).unstack(d_outputs)
        gate_steps = tf.TensorArray(dtype, size=steps).unstack(gate_values)
        previous_steps = tf.TensorArray(dtype, size=steps).unstack(previous_cells)
        transposed_kernel = tf.transpose(recurrent_kernel)

        def backward(k, d_h, d_c, d_z_steps):
            t = steps - 1 - k
            i, f, g, o = tf.split(gate_steps.read(t), 4, axis=-1)
            c_previous = previous_steps.read(t)
            tanh_c = tf.tanh(f * c_previous + i * g)
            d_h = d_h + d_out_steps.read(t)
            d_c = d_c + d_h * o * (1.0 - tanh_c * tanh_c)
            d_z = tf.concat(
                [
                    d_c * g * i * (1.0 - i),
                    d_c * c_previous * f * (1.0 - f),
                    d_c * i * (1.0 - g * g),
                    d_h * tanh_c * o * (1.0 - o),
                ],
                axis=-1,
            )
            return k + 1, product(d_z, transposed_kernel), d_c * f, d_z_steps.write(t, d_z)

        _, d_h0, d_c0, d_z_steps = tf.while_loop(
            lambda k, *_: k < steps,
            backward,
            (tf.constant(0), d_h, d_c, tf.TensorArray(dtype, size=steps)),
            maximum_iterations=steps,
        )
        d_projected = _stack(d_z_steps, tf.concat([h0] * 4, axis=-1), static_steps)
        # [h_0 .. h_{T-1}]; slicing after the concat keeps T = 0 empty.
        previous_outputs = tf.concat([h0[None], outputs], axis=0)[:steps]
        # In the kernel's dtype: with a bfloat16 kernel, bfloat16 operands as forward.
        kernel_dtype = recurrent_kernel.dtype
        d_kernel = tf.einsum(
            "tbh,tbk->hk",
            tf.cast(previous_outputs, kernel_dtype),
            tf.cast(d_projected, kernel_dtype),
        )
        return d_projected, d_h0, d_c0, d_kernel

    return (outputs, h_last, c_last), grad


def _swap_time_batch(sequence):
    """`[B, T, F]` <-> `[T, B, F]`."""
    return tf.transpose(sequence, [1, 0, 2])


def _stack(array, like, static_steps):
    """Stack a TensorArray of `like`-shaped steps; zero steps give `[0, *like.shape]`.

    An empty TensorArray of unknown batch size cannot be stacked, hence the branch; it
    is left out when the number of steps is known, because XLA turns it into a select
    that copies the whole stacked tensor.
    """
    if static_steps:
        return array.stack()
    return tf.cond(
        array.size() > 0,
        array.stack,
        lambda: tf.zeros(tf.concat([[0], tf.shape(like)], axis=0), like.dtype),
    )


@keras.saving.register_keras_serializable(package="lstm_textgen")
class GateLSTM(keras.layers.Layer):
    """Long short-term memory layer with the gate arithmetic spelled out.

    At each time step t, with input `x_t`, previous output `h` and previous cell `c`,
    the layer computes four gates from one fused product
    `z = x_t @ kernel + h @ recurrent_kernel + bias`, split in Keras's order:

    - input gate `i = sigmoid(z_i)`: how much of the candidate is written to the cell;
    - forget gate `f = sigmoid(z_f)`: how much of the old cell survives (its bias starts
      at 1, so a fresh layer remembers by default);
    - candidate `g = tanh(z_g)`, also called the input modulation: what could be written;
    - output gate `o = sigmoid(z_o)`: how much of the squashed cell becomes the output;

    then `c_t = f * c + i * g` and `h_t = o * tanh(c_t)`.

    The input projection `x_t @ kernel + bias` is computed for every time step in one
    matrix product before the recurrence, so each step costs one `[batch, units] x
    [units, 4 * units]` product plus elementwise work. Without a mask or recurrent dropout
    the recurrence runs in `lstm_sequence`, whose backward pass is written by hand (see
    there); with them, in a loop that TensorFlow differentiates.

    Weights use `keras.layers.LSTM`'s layout, names and gate order (`kernel [D, 4H]`,
    `recurrent_kernel [H, 4H]`, `bias [4H]`), so
    `keras.layers.LSTM(H).set_weights(gate_lstm.get_weights())` and the reverse need no
    conversion. With `implementation="keras"` the layer delegates the sequence loop to
    `keras.layers.LSTM` (the cuDNN kernel on a GPU) over the same three weights; calls with
    a mask still take the gate loop, since cuDNN only handles right-padded masks.

    Masking is supported as Keras does it: at a masked step the state is carried over
    unchanged and the output repeats the previous one. There is no `stateful` mode: pass
    `initial_state` and use `return_state=True` to carry state across calls.

    Args:
        units: size of the hidden and cell state, H.
        return_sequences: return the outputs of all steps `[B, T, H]` instead of the last
            one `[B, H]`.
        return_state: also return the final `h` and `c`, as `[output, h, c]`.
        time_major: inputs and output sequences are `[time, batch, features]` instead
            of `[batch, time, features]`. The recurrence runs time-major either way; a
            stack of layers that passes time-major sequences saves a transpose of every
            layer's input and output (and of their gradients).
        dropout: fraction of input units dropped during training (one mask per sequence).
        recurrent_dropout: fraction of `h` units dropped before the recurrent product
            during training (one mask per sequence).
        implementation: `"gates"` (the explicit loop in this class) or `"keras"`
            (`keras.layers.LSTM` over the same weights).
        kernel_initializer, recurrent_initializer, bias_initializer: initializers of the
            three weights.
        unit_forget_bias: add 1 to the forget-gate bias at initialisation.
        seed: seed for the dropout masks.
        matmul_dtype: dtype of the operands of the gate loop's matrix products (the input
            projection, the recurrent product and their gradients), e.g. `"bfloat16"`
            on a CPU with bfloat16 instructions; the state, the gates' elementwise math
            and the weights stay in the compute dtype. With a mask or recurrent dropout
            the recurrent product keeps the compute dtype. None: the compute dtype.

    Call arguments:
        inputs: `[batch, time, features]` (`[time, batch, features]` if `time_major`).
        initial_state: optional `[h0, c0]`, each `[batch, units]`; zeros otherwise.
        mask: optional boolean `[batch, time]`, in either layout; False steps are skipped.
        training: whether dropout is active.

    Example:

    >>> layer = GateLSTM(4, return_sequences=True)
    >>> layer(tf.zeros([2, 3, 5])).shape
    TensorShape([2, 3, 4])
    """

    def __init__(
        self,
        units,
        return_sequences=False,
        return_state=False,
        time_major=False,
        dropout=0.0,
        recurrent_dropout=0.0,
        implementation="gates",
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias=True,
        seed=None,
        matmul_dtype=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(units) < 1:
            raise ValueError(f"units must be a positive integer, got {units}")
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(
                f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}"
            )
        for name, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {rate}")
        self.units = int(units)
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.time_major = bool(time_major)
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        self.implementation = implementation
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.unit_forget_bias = unit_forget_bias
        self.seed = seed
        self.matmul_dtype = keras.backend.standardize_dtype(matmul_dtype) if matmul_dtype else None
        self.supports_masking = True
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._keras_lstm = None
        if implementation == "keras":
            self._keras_lstm = keras.layers.LSTM(
                self.units,
                return_sequences=True,
                return_state=True,
                dropout=self.dropout,
                recurrent_dropout=self.recurrent_dropout,
                kernel_initializer=self.kernel_initializer,
                recurrent_initializer=self.recurrent_initializer,
                bias_initializer=self.bias_initializer,
                unit_forget_bias=unit_forget_bias,
                seed=seed,
                name="keras_lstm",
            )

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if self._keras_lstm is not None:
            self._keras_lstm.build(tuple(input_shape))
            return
        self._kernel = self.add_weight(
            name="kernel",
            shape=(input_dim, 4 * self.units),
            initializer=self.kernel_initializer,
        )
        self._recurrent_kernel = self.add_weight(
            name="recurrent_kernel",
            shape=(self.units, 4 * self.units),
            initializer=self.recurrent_initializer,
        )
        self._bias = self.add_weight(
            name="bias",
            shape=(4 * self.units,),
            initializer=self._bias_init,
        )

    def _bias_init(self, shape, dtype=None):
        bias = self.bias_initializer(shape, dtype=dtype)
        if not self.unit_forget_bias:
            return bias
        # Gate order i, f, g, o: the second quarter is the forget gate.
        h = self.units
        ones = tf.ones([h], dtype=bias.dtype)
        return tf.concat([bias[:h], bias[h : 2 * h] + ones, bias[2 * h :]], axis=0)

    # The weights live in this layer ("gates") or in the delegate LSTM's cell ("keras");
    # these properties give one name to both so the math below never branches.
    @property
    def kernel(self):
        return self._keras_lstm.cell.kernel if self._keras_lstm else self._kernel

    @property
    def recurrent_kernel(self):
        if self._keras_lstm:
            return self._keras_lstm.cell.recurrent_kernel
        return self._recurrent_kernel

    @property
    def bias(self):
        return self._keras_lstm.cell.bias if self._keras_lstm else self._bias

    def step_weights(self):
        """`(kernel, recurrent_kernel, bias)` as tensors, for `step(..., weights=)`."""
        return tuple(
            tf.convert_to_tensor(w) for w in (self.kernel, self.recurrent_kernel, self.bias)
        )

    def step(self, x_t, states, weights=None, projected=None):
        """Advance one time step, for generation: `x_t [B, D]`, `states = (h, c)`.

        Returns `(h_t, (h_t, c_t))`. Uses the same weights in either implementation.
        `weights`, from `step_weights()`, saves reading the variables again at every step
        of a graph loop. `projected`, if given, is `x_t @ kernel + bias` already computed
        (a model's first layer looks it up by character id), and `x_t` is not read.
        """
        h, c = states
        kernel, recurrent_kernel, bias = self.step_weights() if weights is None else weights
        if projected is None:
            projected = tf.matmul(x_t, kernel) + bias
        h_t, c_t = lstm_cell(projected + tf.matmul(h, recurrent_kernel), c)
        return h_t, (h_t, c_t)

    def trace(self, inputs, initial_state=None):
        """Every step's gate activations, for inspection (not training).

        Runs the same loop as `call` (`lstm_loop`), keeping the gates.

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
        projected = tf.einsum("btd,dk->tbk", inputs, self.kernel) + self.bias
        hidden, _, _, c_last, gates, previous_cells = lstm_loop(
            projected, h, c, tf.convert_to_tensor(self.recurrent_kernel), keep_gates=True
        )
        i, f, g, o = tf.split(gates, 4, axis=-1)
        cell = tf.concat([previous_cells[1:], c_last[None]], axis=0)
        names = ("input_gate", "forget_gate", "candidate", "output_gate", "cell", "hidden")
        return {name: _swap_time_batch(v) for name, v in zip(names, (i, f, g, o, cell, hidden))}

    def call(self, inputs, initial_state=None, mask=None, training=False):
        # Keras's cuDNN path accepts only right-padded masks (and fails at run time on a
        # GPU otherwise), so masked calls always take the gate loop over the same weights.
        if self._keras_lstm is not None and mask is None:
            if self.time_major:
                inputs = _swap_time_batch(inputs)
            sequence, h, c = self._keras_lstm(
                inputs, initial_state=initial_state, mask=mask, training=training
            )
            last = sequence[:, -1]
            if self.time_major:
                sequence = _swap_time_batch(sequence)
            return self._format(sequence, last, h, c)

        # From here on everything is time-major: [T, B, ...].
        if not self.time_major:
            inputs = _swap_time_batch(inputs)
        batch = tf.shape(inputs)[1]
        if initial_state is None:
            h = tf.zeros([batch, self.units], dtype=self.compute_dtype)
            c = tf.zeros([batch, self.units], dtype=self.compute_dtype)
        else:
            h, c = initial_state

        if training and self.dropout > 0.0:
            keep = keras.random.dropout(
                tf.ones_like(inputs[0]), self.dropout, seed=self.seed_generator
            )
            inputs = inputs * keep[None]
        recurrent_keep = None
        if training and self.recurrent_dropout > 0.0:
            recurrent_keep = keras.random.dropout(
                tf.ones_like(h), self.recurrent_dropout, seed=self.seed_generator
            )

        # One [T*B, D] x [D, 4H] product for all steps, in the loop's time-major order so
        # that neither the [T, B, 4H] result nor its gradient needs a transpose.
        matmul_dtype = self.matmul_dtype or self.compute_dtype
        kernel = tf.cast(self.kernel, matmul_dtype)
        recurrent_kernel = tf.cast(self.recurrent_kernel, matmul_dtype)
        projected = product(inputs, kernel, "tbd,dk->tbk") + self.bias
        sequence_shape = [inputs.shape[0], inputs.shape[1], self.units]
        if mask is None and recurrent_keep is None:
            sequence, h, c = lstm_sequence(projected, h, c, recurrent_kernel)
            sequence.set_shape(sequence_shape)
            return self._format(self._batch_layout(sequence), h, h, c)

        step_mask = None
        if mask is not None:
            step_mask = tf.transpose(tf.cast(mask, tf.bool))[:, :, None]
        # The float32 kernel here: TensorFlow's own gradient of this loop would sum the
        # kernel's gradient over the steps in the products' dtype.
        sequence, last, h, c, _, _ = lstm_loop(
            projected,
            h,
            c,
            tf.convert_to_tensor(self.recurrent_kernel),
            mask=step_mask,
            recurrent_keep=recurrent_keep,
        )
        sequence.set_shape(sequence_shape)
        return self._format(self._batch_layout(sequence), last, h, c)

    def _batch_layout(self, sequence):
        """A time-major sequence in this layer's output layout."""
        return sequence if self.time_major else _swap_time_batch(sequence)

    def _format(self, sequence, last, h, c):
        output = sequence if self.return_sequences else last
        if self.return_state:
            return [output, h, c]
        return output

    def compute_mask(self, inputs, mask=None):
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
        config.update(
            {
                "units": self.units,
                "return_sequences": self.return_sequences,
                "return_state": self.return_state,
                "time_major": self.time_major,
                "dropout": self.dropout,
                "recurrent_dropout": self.recurrent_dropout,
                "implementation": self.implementation,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "unit_forget_bias": self.unit_forget_bias,
                "seed": self.seed,
                "matmul_dtype": self.matmul_dtype,
            }
        )
        return config
