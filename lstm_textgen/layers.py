"""`GateLSTMCell` (one step) and `GateLSTM` (the loop): an LSTM whose four gates are
written out like the equations."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import NamedTuple

import keras
import tensorflow as tf

from lstm_textgen.config import IMPLEMENTATIONS


def gate_activations(z, prescaled=False):
    """The four gates' activations from their fused pre-activations, in one sigmoid.

    Args:
        z: `[batch, 4 * units]`, `x_t W + h_{t-1} U + b`, in Keras's gate order i, f, g, o.
        prescaled: `z`'s candidate quarter is already doubled, as it is when the weights
            come from `GateLSTMCell.step_weights`.

    Returns:
        `[batch, 4 * units]`: `sigmoid(z)` with the candidate's quarter taken at twice its
        value, `[sigmoid(z_i), sigmoid(z_f), sigmoid(2 z_g), sigmoid(z_o)]`.
        `split_gates` turns the third quarter into `g = tanh(z_g)`, since
        `tanh(x) = 2 sigmoid(2x) - 1`.

    One activation over the whole contiguous `[batch, 4 * units]` block, instead of three
    sigmoids and a tanh over its quarters, lets XLA compute it in one vectorised pass
    (docs/performance.md), and saves a graph loop three ops a step.
    """
    if prescaled:
        return tf.sigmoid(z)
    return tf.sigmoid(z * gate_scale(z.shape[-1] // 4, z.dtype))


def gate_scale(units, dtype=tf.float32):
    """`[4 * units]`: 1 for the input, forget and output gates, 2 for the candidate.
    Doubling a float is exact, so weights scaled by it give `z * gate_scale` bit for bit."""
    return tf.constant([1.0] * (2 * units) + [2.0] * units + [1.0] * units, dtype)


def split_gates(activations):
    """`(i, f, g, o)`, each `[batch, units]`, from `gate_activations`' output."""
    i, f, doubled_g, o = tf.split(activations, 4, axis=-1)
    return i, f, 2.0 * doubled_g - 1.0, o


def lstm_update(z, c, prescaled=False):
    """One LSTM update from the fused pre-activations of the four gates:

        i = sigmoid(z_i), f = sigmoid(z_f), g = tanh(z_g), o = sigmoid(z_o)
        c_t = f * c + i * g
        h_t = o * tanh(c_t)

    with the four activations from one call (`gate_activations`).

    Args:
        z: `[batch, 4 * units]`, `x_t W + h_{t-1} U + b`, in Keras's gate order i, f, g, o.
        c: `[batch, units]`, the previous cell state.
        prescaled: see `gate_activations`.

    Returns:
        `(activations, h_t, c_t)`: `gate_activations(z)` (`split_gates` reads the input
        gate, forget gate, candidate and output gate from it), and the new output and
        cell state.
    """
    activations = gate_activations(z, prescaled)
    i, f, g, o = split_gates(activations)
    c_t = f * c + i * g
    h_t = o * tf.tanh(c_t)
    return activations, h_t, c_t


def lstm_cell(z, c):
    """`(h_t, c_t)` of `lstm_update`, for callers that do not need the gates."""
    return lstm_update(z, c)[1:]


def product(a, b):
    """`a @ b` with `b`'s dtype for the operands and `a`'s for the result: with a bfloat16
    `b` the product runs on bfloat16 operands (the kernel accumulates in float32 and
    rounds its output once) while everything around it stays in `a`'s float32. With
    equal dtypes it is the plain product."""
    return tf.cast(tf.matmul(tf.cast(a, b.dtype), b), a.dtype)


def gate_step(projected_t, h, c, recurrent_kernel, prescaled=False):
    """One step of the recurrence, the one every path runs (the sequence loop forward, the
    cell's `step` for generation, LiteRT's prompt loop): `lstm_update` of
    `projected_t + h @ recurrent_kernel` (`product`) and the previous cell `c`.

    Args:
        projected_t: `[B, 4H]`, `x_t @ kernel + bias`.
        h, c: `[B, H]`, the previous state.
        recurrent_kernel: `[H, 4H]`.
        prescaled: the weights behind `projected_t` and `recurrent_kernel` come from
            `GateLSTMCell.step_weights` (see `gate_activations`).

    Returns:
        `lstm_update`'s `(activations, h_t, c_t)`.
    """
    return lstm_update(projected_t + product(h, recurrent_kernel), c, prescaled)


def lstm_loop(projected, h0, c0, recurrent_kernel, mask=None, recurrent_keep=None):
    """The LSTM recurrence over pre-projected inputs, as TensorFlow differentiates it.

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

    Returns:
        `(outputs [T, B, H], last output [B, H], h_T, c_T)`.
    """
    outputs, last, h, c, _ = _recurrence(projected, h0, c0, recurrent_kernel, mask, recurrent_keep)
    return outputs, last, h, c


def lstm_loop_with_gates(projected, h0, c0, recurrent_kernel):
    """`lstm_loop` without mask or dropout that also keeps every step's gates and cells.

    `GateLSTM.trace` reads them.

    Returns:
        `(outputs [T, B, H], h_T, c_T, steps)`, where `steps` maps `"i"`, `"f"`, `"g"`,
        `"o"` (the gate activations), `"previous_cell"` (`c_{t-1}`) and `"cell"` (`c_t`)
        to `[T, B, H]` tensors.
    """
    outputs, _, h, c, kept = _recurrence(projected, h0, c0, recurrent_kernel, keep=_GATES)
    static_steps = projected.shape[0]
    activations = _stack(kept["activations"], tf.concat([h0] * 4, axis=-1), static_steps)
    cells = _stack(kept["cell"], c0, static_steps)
    i, f, g, o = split_gates(activations)
    previous_cells = _previous_steps(c0, cells)
    gates = {"i": i, "f": f, "g": g, "o": o}
    return outputs, h, c, {**gates, "previous_cell": previous_cells, "cell": cells}


class _Kept(NamedTuple):
    """What `_recurrence` keeps of every step: `values(activations, c, c_t)` gives one
    tensor per name, from the step's `gate_activations` and its cell before and after."""

    names: tuple[str, ...]
    values: Callable


def _gradient_factors(activations, c, c_t):
    """The factors of a step's backward pass that do not depend on the gradients flowing
    in, computed by the forward step while its values are at hand:

    - `dz`: `[dc_t/dz_i, dc_t/dz_f, dc_t/dz_g, dh_t/dz_o]`, `[B, 4H]`;
    - `dh_dc`: `dh_t/dc_t = o (1 - tanh(c_t)^2)`;
    - `forget`: `f = dc_t/dc_{t-1}`.

    Each quarter of `activations` is a sigmoid s of its pre-activation, whose derivative
    is s (1 - s); the candidate's is of 2 z_g, and g = 2 s - 1, so dg/dz_g = 4 s (1 - s).
    """
    i, f, g, o = split_gates(activations)
    tanh_c = tf.tanh(c_t)
    # A concatenation along the last axis, which XLA copies on its own: stacked along a
    # middle axis XLA fuses it, and the step ran slower (docs/performance.md).
    dz = tf.concat([g, c, 4.0 * i, tanh_c], axis=-1) * activations * (1.0 - activations)
    return dz, o * (1.0 - tanh_c * tanh_c), f


_GATES = _Kept(("activations", "cell"), lambda activations, c, c_t: (activations, c_t))
_GRADIENT_FACTORS = _Kept(("dz", "dh_dc", "forget"), _gradient_factors)


def _recurrence(projected, h0, c0, recurrent_kernel, mask=None, recurrent_keep=None, keep=None):
    """The one loop behind `lstm_loop`, `lstm_loop_with_gates` and `lstm_sequence`.

    With `keep` (a `_Kept`), the last item is `{name: TensorArray}` of what it keeps,
    one entry per step; otherwise None.
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
        activations, h_t, c_t = gate_step(inputs.read(t), h_in, c, recurrent_kernel)
        if keep is not None:
            values = keep.values(activations, c, c_t)
            kept = tuple(array.write(t, value) for array, value in zip(kept, values))
        if step_mask is not None:
            keep_step = step_mask.read(t)
            last = tf.where(keep_step, h_t, last)
            h_t = tf.where(keep_step, h_t, h)
            c_t = tf.where(keep_step, c_t, c)
        else:
            last = h_t
        return (t + 1, h_t, c_t, last, outputs.write(t, last), *kept)

    kept_names = () if keep is None else keep.names
    arrays = [tf.TensorArray(dtype, size=steps) for _ in range(1 + len(kept_names))]
    _, h_last, c_last, last, outputs, *kept = tf.while_loop(
        lambda t, *_: t < steps,
        body,
        (tf.constant(0), h0, c0, tf.zeros_like(h0), *arrays),
        # A fixed trip count lets XLA size the gradient's accumulators.
        maximum_iterations=steps,
    )
    outputs = _stack(outputs, h0, static_steps)
    return outputs, last, h_last, c_last, dict(zip(kept_names, kept)) if keep else None


@tf.custom_gradient
def lstm_sequence(projected, h0, c0, recurrent_kernel):
    """`lstm_loop` without mask or recurrent dropout, with a hand-written backward pass.

    Returns `(outputs [T, B, H], h_T, c_T)`.

    Backpropagation through time keeps one `[B, 4H] x [4H, H]` product per step; the
    gradient of `recurrent_kernel` is one `[H, T*B] x [T*B, 4H]` product after the loop,
    instead of one small product per step as automatic differentiation would do. The
    forward pass keeps, step by step, the factors of the backward step that do not
    depend on the incoming gradients (`_gradient_factors`), so that each backward step
    is left with four elementwise products and two sums besides its matrix product.
    """
    steps = tf.shape(projected)[0]
    static_steps = projected.shape[0]
    dtype = projected.dtype
    outputs, _, h_last, c_last, factors = _recurrence(
        projected, h0, c0, recurrent_kernel, keep=_GRADIENT_FACTORS
    )

    def grad(d_outputs, d_h_last, d_c_last):
        d_outputs = tf.zeros_like(outputs) if d_outputs is None else d_outputs
        d_h = tf.zeros_like(h0) if d_h_last is None else d_h_last
        d_c = tf.zeros_like(c0) if d_c_last is None else d_c_last
        d_out_steps = tf.TensorArray(dtype, size=steps).unstack(d_outputs)
        transposed_kernel = tf.transpose(recurrent_kernel)

        def backward(k, d_h, d_c, d_z_steps):
            t = steps - 1 - k
            d_h = d_h + d_out_steps.read(t)
            d_c = d_c + d_h * factors["dh_dc"].read(t)
            d_z = tf.concat([d_c, d_c, d_c, d_h], axis=-1) * factors["dz"].read(t)
            return (
                k + 1,
                product(d_z, transposed_kernel),
                d_c * factors["forget"].read(t),
                d_z_steps.write(t, d_z),
            )

        _, d_h0, d_c0, d_z_steps = tf.while_loop(
            lambda k, *_: k < steps,
            backward,
            (tf.constant(0), d_h, d_c, tf.TensorArray(dtype, size=steps)),
            maximum_iterations=steps,
        )
        d_projected = _stack(d_z_steps, tf.concat([h0] * 4, axis=-1), static_steps)
        previous_outputs = _previous_steps(h0, outputs)  # [h_0 .. h_{T-1}]
        units = h0.shape[-1]
        # One [H, T*B] x [T*B, 4H] product, in the kernel's dtype (with a bfloat16 kernel,
        # bfloat16 operands as forward). A plain product of the flattened steps: as an
        # einsum over [T, B, H], XLA first copies the shifted outputs into a transpose.
        kernel_dtype = recurrent_kernel.dtype
        d_kernel = tf.matmul(
            tf.cast(tf.reshape(previous_outputs, [-1, units]), kernel_dtype),
            tf.cast(tf.reshape(d_projected, [-1, 4 * units]), kernel_dtype),
            transpose_a=True,
        )
        return d_projected, d_h0, d_c0, d_kernel

    return (outputs, h_last, c_last), grad


def _previous_steps(initial, sequence):
    """`[initial, sequence_0 .. sequence_{T-2}]`, what each step of `sequence [T, ...]` started
    from. Slicing after the concat keeps T = 0 empty."""
    return tf.concat([initial[None], sequence], axis=0)[: tf.shape(sequence)[0]]


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
class GateLSTMCell(keras.layers.Layer):
    """One LSTM step with the four gates spelled out; the owner of the weights.

    `call(x_t, (h, c))` computes `gate_step(x_t @ kernel + bias, h, c, recurrent_kernel)`
    (`lstm_update` of `z = x_t @ kernel + h @ recurrent_kernel + bias`) and returns
    `(h_t, [h_t, c_t])`: the contract of a Keras RNN cell, so
    `keras.layers.RNN(GateLSTMCell(H))` runs it step by step. `GateLSTM` runs it over a
    sequence much faster, projecting every step's input in one product first.

    The weights have `keras.layers.LSTMCell`'s names, shapes and gate order (i, f, g, o):
    `kernel [D, 4H]`, `recurrent_kernel [H, 4H]`, `bias [4H]`.

    Args:
        units: size of the hidden and cell state, H.
        kernel_initializer, recurrent_initializer, bias_initializer: initializers of the
            three weights.
        unit_forget_bias: add 1 to the forget-gate bias at initialisation, so a fresh
            cell remembers by default.

    Example:

    >>> cell = GateLSTMCell(4)
    >>> h, (h, c) = cell(tf.zeros([2, 5]), [tf.zeros([2, 4]), tf.zeros([2, 4])])
    >>> h.shape
    TensorShape([2, 4])
    """

    def __init__(
        self,
        units,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        unit_forget_bias=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(units) < 1:
            raise ValueError(f"units must be a positive integer, got {units}")
        self.units = int(units)
        self.state_size = [self.units, self.units]
        self.output_size = self.units
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.unit_forget_bias = unit_forget_bias

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel",
            shape=(input_shape[-1], 4 * self.units),
            initializer=self.kernel_initializer,
        )
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel",
            shape=(self.units, 4 * self.units),
            initializer=self.recurrent_initializer,
        )
        self.bias = self.add_weight(
            name="bias", shape=(4 * self.units,), initializer=self._bias_init
        )

    def _bias_init(self, shape, dtype=None):
        bias = self.bias_initializer(shape, dtype=dtype)
        if not self.unit_forget_bias:
            return bias
        # Gate order i, f, g, o: the second quarter is the forget gate.
        h = self.units
        ones = tf.ones([h], dtype=bias.dtype)
        return tf.concat([bias[:h], bias[h : 2 * h] + ones, bias[2 * h :]], axis=0)

    def call(self, inputs, states, training=False):
        h_t, (_, c_t) = self.step(inputs, states)
        return h_t, [h_t, c_t]

    def step_weights(self):
        """`(kernel, recurrent_kernel, bias)` as tensors for `step(..., weights=)`, each
        with its candidate columns doubled (`gate_scale`): a step then takes its four
        activations in one sigmoid without scaling `z` first (`gate_activations`)."""
        scale = gate_scale(self.units, self.kernel.dtype)
        return tuple(
            tf.convert_to_tensor(w) * scale for w in (self.kernel, self.recurrent_kernel, self.bias)
        )

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
        h_t, c_t = gate_step(projected, h, c, recurrent_kernel, prescaled=True)[1:]
        return h_t, (h_t, c_t)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "unit_forget_bias": self.unit_forget_bias,
            }
        )
        return config


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

    The layer is a loop around one `GateLSTMCell`, which owns the weights in
    `keras.layers.LSTM`'s layout, names and gate order (`cell.kernel [D, 4H]`,
    `cell.recurrent_kernel [H, 4H]`, `cell.bias [4H]`), so
    `keras.layers.LSTM(H).set_weights(gate_lstm.get_weights())` and the reverse need no
    conversion. `inner_loop` picks the loop: with `implementation="keras"` it hands the
    sequence to `keras.layers.LSTM` (the cuDNN kernel on a GPU) over the cell's weights,
    except with a mask (cuDNN only handles right-padded masks) or recurrent dropout
    (which cuDNN lacks), which take the gate loop.

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
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(
                f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}"
            )
        for name, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {rate}")
        self.cell = GateLSTMCell(
            units,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            unit_forget_bias=unit_forget_bias,
            name="cell",
        )
        self.units = self.cell.units
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.time_major = bool(time_major)
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        self.implementation = implementation
        self.seed = seed
        self.matmul_dtype = keras.backend.standardize_dtype(matmul_dtype) if matmul_dtype else None
        self.supports_masking = True
        self.seed_generator = keras.random.SeedGenerator(seed)
        # Keras's LSTM for `implementation="keras"`. It is kept where Keras's attribute
        # tracking does not look, so that the cell stays the one owner of the weights in
        # `weights` and in saved files; `build` hands it the cell's variables.
        self._keras = SimpleNamespace(lstm=None)
        if implementation == "keras":
            self._keras.lstm = keras.layers.LSTM(
                self.units, return_sequences=True, return_state=True, name="keras_lstm"
            )

    def build(self, input_shape):
        self.cell.build((input_shape[-1],))
        lstm = self._keras.lstm
        if lstm is not None:
            lstm.cell.kernel = self.cell.kernel
            lstm.cell.recurrent_kernel = self.cell.recurrent_kernel
            lstm.cell.bias = self.cell.bias
            lstm.cell.built = True
            lstm.build((None, None, input_shape[-1]))

    def step_weights(self):
        """The cell's `step_weights()`."""
        return self.cell.step_weights()

    def step(self, x_t, states, weights=None, projected=None):
        """One step for generation: the cell's `step`, see there."""
        return self.cell.step(x_t, states, weights, projected)

    def trace(self, inputs, initial_state=None):
        """Every step's gate activations, for inspection (not training).

        Runs the gate loop of `call` (`lstm_loop_with_gates`), keeping the gates.

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
        kernel, recurrent_kernel, bias = (
            tf.convert_to_tensor(w)
            for w in (self.cell.kernel, self.cell.recurrent_kernel, self.cell.bias)
        )
        projected = tf.einsum("btd,dk->tbk", inputs, kernel) + bias
        hidden, _, _, steps = lstm_loop_with_gates(projected, h, c, recurrent_kernel)
        names = {
            "input_gate": "i",
            "forget_gate": "f",
            "candidate": "g",
            "output_gate": "o",
            "cell": "cell",
        }
        traced = {name: _swap_time_batch(steps[kept]) for name, kept in names.items()}
        return {**traced, "hidden": _swap_time_batch(hidden)}

    def call(self, inputs, initial_state=None, mask=None, training=False):
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
        step_mask = None
        if mask is not None:
            step_mask = tf.transpose(tf.cast(mask, tf.bool))[:, :, None]

        sequence, last, h, c = self.inner_loop(inputs, h, c, step_mask, recurrent_keep)
        sequence.set_shape([inputs.shape[0], inputs.shape[1], self.units])
        sequence = sequence if self.time_major else _swap_time_batch(sequence)
        output = sequence if self.return_sequences else last
        return [output, h, c] if self.return_state else output

    def inner_loop(self, inputs, h, c, mask=None, recurrent_keep=None):
        """The recurrence over time-major `inputs [T, B, D]` from the state `(h, c)`.

        With `implementation="keras"`, and neither a mask nor recurrent dropout, Keras's
        LSTM runs it (cuDNN on a GPU); otherwise the gate loop does. `mask` is bool
        `[T, B, 1]`, `recurrent_keep` a `[B, H]` dropout mask.

        Returns `(sequence [T, B, H], last output [B, H], h_T, c_T)`.
        """
        if self._keras.lstm is not None and mask is None and recurrent_keep is None:
            sequence, h, c = self._keras.lstm(_swap_time_batch(inputs), initial_state=[h, c])
            return _swap_time_batch(sequence), h, h, c

        # One [T*B, D] x [D, 4H] product for all steps, in the loop's time-major order so
        # that neither the [T, B, 4H] result nor its gradient needs a transpose. A
        # `bias_add` right after a float32 `matmul` is fused into it by TensorFlow's
        # graph optimizer, which saves a pass over the [T, B, 4H] result.
        matmul_dtype = self.matmul_dtype or self.compute_dtype
        kernel = tf.cast(self.cell.kernel, matmul_dtype)
        flat_inputs = tf.reshape(inputs, [-1, tf.shape(inputs)[-1]])
        projected = tf.reshape(
            tf.nn.bias_add(product(flat_inputs, kernel), self.cell.bias),
            tf.concat([tf.shape(inputs)[:2], [4 * self.units]], axis=0),
        )
        projected.set_shape([inputs.shape[0], inputs.shape[1], 4 * self.units])
        if mask is None and recurrent_keep is None:
            recurrent_kernel = tf.cast(self.cell.recurrent_kernel, matmul_dtype)
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
        )

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
        cell = self.cell.get_config()
        config.update(
            {
                "units": self.units,
                "return_sequences": self.return_sequences,
                "return_state": self.return_state,
                "time_major": self.time_major,
                "dropout": self.dropout,
                "recurrent_dropout": self.recurrent_dropout,
                "implementation": self.implementation,
                "kernel_initializer": cell["kernel_initializer"],
                "recurrent_initializer": cell["recurrent_initializer"],
                "bias_initializer": cell["bias_initializer"],
                "unit_forget_bias": self.cell.unit_forget_bias,
                "seed": self.seed,
                "matmul_dtype": self.matmul_dtype,
            }
        )
        return config
