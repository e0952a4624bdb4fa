"""The LSTM's arithmetic as TensorFlow functions, apart from the Keras layers that own the
weights (`model.cell`, `model.layers`): one step (`lstm_update`, `gate_step`) and the loops
over a sequence (`lstm_loop`, `lstm_loop_with_gates`, and `lstm_sequence` with its
hand-written backward pass).

Every function takes the gates' pre-activations in Keras's order i, f, g, o. With the
activations left at Keras's defaults (`functions=None`: sigmoid for the gates, tanh for
the candidate and the cell's output) the four gates come from one sigmoid
(`gate_activations`); other activations (`GateFunctions`) take the same equations with
the functions given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import tensorflow as tf


class GateFunctions(NamedTuple):
    """An LSTM's two activation functions, where they are not Keras's defaults.

    `recurrent_activation` makes the input, forget and output gates, `activation` the
    candidate and the squashed cell of the output: `i = recurrent_activation(z_i)`,
    `g = activation(z_g)`, `h_t = o * activation(c_t)`. None in place of a `GateFunctions`
    means sigmoid and tanh, which every fast path assumes.
    """

    activation: Callable
    recurrent_activation: Callable

    def gates(self, z):
        """`[i, f, g, o]`, `[B, 4H]`, from the pre-activations `z [B, 4H]`."""
        z_i, z_f, z_g, z_o = tf.split(z, 4, axis=-1)
        gate = self.recurrent_activation
        return tf.concat([gate(z_i), gate(z_f), self.activation(z_g), gate(z_o)], axis=-1)


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


def split_gates(activations, functions=None):
    """`(i, f, g, o)`, each `[batch, units]`, from `lstm_update`'s activations:
    `gate_activations`' output (the candidate's quarter as `sigmoid(2 z_g)`), or with
    `functions`, `GateFunctions.gates`' (the candidate itself)."""
    i, f, g, o = tf.split(activations, 4, axis=-1)
    return (i, f, g, o) if functions is not None else (i, f, 2.0 * g - 1.0, o)


def lstm_update(z, c, prescaled=False, functions=None):
    """One LSTM update from the fused pre-activations of the four gates:

        i = sigmoid(z_i), f = sigmoid(z_f), g = tanh(z_g), o = sigmoid(z_o)
        c_t = f * c + i * g
        h_t = o * tanh(c_t)

    with the four activations from one call (`gate_activations`); with `functions`, the
    same equations with its activations in place of sigmoid and tanh.

    Args:
        z: `[batch, 4 * units]`, `x_t W + h_{t-1} U + b`, in Keras's gate order i, f, g, o.
        c: `[batch, units]`, the previous cell state.
        prescaled: see `gate_activations` (sigmoid and tanh only).
        functions: optional `GateFunctions`; None: sigmoid and tanh.

    Returns:
        `(activations, h_t, c_t)`: the gates' activations (`split_gates(activations,
        functions)` reads the input gate, forget gate, candidate and output gate from
        them), and the new output and cell state.
    """
    if functions is None:
        activations, squash = gate_activations(z, prescaled), tf.tanh
    else:
        activations, squash = functions.gates(z), functions.activation
    i, f, g, o = split_gates(activations, functions)
    c_t = f * c + i * g
    h_t = o * squash(c_t)
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


def gate_step(projected_t, h, c, recurrent_kernel, prescaled=False, functions=None):
    """One step of the recurrence, the one every path runs (the sequence loop forward, the
    cell's `step` for generation, LiteRT's prompt loop): `lstm_update` of
    `projected_t + h @ recurrent_kernel` (`product`) and the previous cell `c`.

    Args:
        projected_t: `[B, 4H]`, `x_t @ kernel + bias`.
        h, c: `[B, H]`, the previous state.
        recurrent_kernel: `[H, 4H]`.
        prescaled: the weights behind `projected_t` and `recurrent_kernel` come from
            `GateLSTMCell.step_weights` (see `gate_activations`).
        functions: optional `GateFunctions` (see `lstm_update`).

    Returns:
        `lstm_update`'s `(activations, h_t, c_t)`.
    """
    return lstm_update(projected_t + product(h, recurrent_kernel), c, prescaled, functions)


def lstm_loop(
    projected,
    h0,
    c0,
    recurrent_kernel,
    mask=None,
    recurrent_keep=None,
    functions=None,
    zero_output_for_mask=False,
    unroll=False,
):
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
        functions: optional `GateFunctions` (see `lstm_update`).
        zero_output_for_mask: the output of a False step is zeros instead (Keras's
            `keras.layers.RNN(zero_output_for_mask=True)`).
        unroll: a Python loop over the (static) steps instead of a graph loop.

    Returns:
        `(outputs [T, B, H], last output [B, H], h_T, c_T)`.
    """
    outputs, last, h, c, _ = _recurrence(
        projected,
        h0,
        c0,
        recurrent_kernel,
        _Options(mask, recurrent_keep, functions, zero_output_for_mask, unroll),
    )
    return outputs, last, h, c


def lstm_loop_with_gates(projected, h0, c0, recurrent_kernel, functions=None):
    """`lstm_loop` without mask or dropout that also keeps every step's gates and cells.

    `GateLSTM.trace` reads them.

    Returns:
        `(outputs [T, B, H], h_T, c_T, steps)`, where `steps` maps `"i"`, `"f"`, `"g"`,
        `"o"` (the gate activations), `"previous_cell"` (`c_{t-1}`) and `"cell"` (`c_t`)
        to `[T, B, H]` tensors.
    """
    outputs, _, h, c, kept = _recurrence(
        projected, h0, c0, recurrent_kernel, _Options(functions=functions), keep=_GATES
    )
    static_steps = projected.shape[0]
    activations = _stack(kept["activations"], tf.concat([h0] * 4, axis=-1), static_steps)
    cells = _stack(kept["cell"], c0, static_steps)
    i, f, g, o = split_gates(activations, functions)
    previous_cells = _previous_steps(c0, cells)
    gates = {"i": i, "f": f, "g": g, "o": o}
    return outputs, h, c, {**gates, "previous_cell": previous_cells, "cell": cells}


class _Options(NamedTuple):
    """How `_recurrence` runs, beyond its tensors: see `lstm_loop`'s arguments."""

    mask: tf.Tensor | None = None
    recurrent_keep: tf.Tensor | None = None
    functions: GateFunctions | None = None
    zero_output_for_mask: bool = False
    unroll: bool = False


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


def _recurrence(projected, h0, c0, recurrent_kernel, options=_Options(), keep=None):
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
    mask, recurrent_keep = options.mask, options.recurrent_keep
    step_mask = None if mask is None else tf.TensorArray(tf.bool, size=steps).unstack(mask)

    def body(t, h, c, last, outputs, *kept):
        h_in = h if recurrent_keep is None else h * recurrent_keep
        activations, h_t, c_t = gate_step(
            inputs.read(t), h_in, c, recurrent_kernel, functions=options.functions
        )
        if keep is not None:
            values = keep.values(activations, c, c_t)
            kept = tuple(array.write(t, value) for array, value in zip(kept, values))
        if step_mask is not None:
            keep_step = step_mask.read(t)
            # Keras's `last_output` is the last step's output, masked as every output is.
            last = tf.where(
                keep_step, h_t, tf.zeros_like(h_t) if options.zero_output_for_mask else last
            )
            h_t = tf.where(keep_step, h_t, h)
            c_t = tf.where(keep_step, c_t, c)
        else:
            last = h_t
        return (t + 1, h_t, c_t, last, outputs.write(t, last), *kept)

    kept_names = () if keep is None else keep.names
    arrays = [tf.TensorArray(dtype, size=steps) for _ in range(1 + len(kept_names))]
    loop_vars = (tf.constant(0), h0, c0, tf.zeros_like(h0), *arrays)
    if options.unroll:
        for _ in range(static_steps):
            loop_vars = body(*loop_vars)
    else:
        loop_vars = tf.while_loop(
            lambda t, *_: t < steps,
            body,
            loop_vars,
            # A fixed trip count lets XLA size the gradient's accumulators.
            maximum_iterations=steps,
        )
    _, h_last, c_last, last, outputs, *kept = loop_vars
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


def swap_time_batch(sequence):
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
