"""Where a training step's time goes: its matrix products against everything else.

    lstm-textgen bench profile                  # H = 512, both modes
    lstm-textgen bench profile --units 256 --steps 5

The model is `bench train`'s (Embedding(66, 64) -> 2 x GateLSTM(H) -> Dense(66), batches
of 64 sequences of 100). The step is cut into parts, each timed on its own in a
`tf.function`, in graph mode and under XLA:

  layer k fwd    GateLSTM k forward (the input projection, then the recurrence)
  layer k bwd    its backward pass (the hand-written gradient): fwd+bwd minus fwd
  head fwd/bwd   the output layer and the loss, forward and backward
  optimizer      Adam's update of every weight: the whole step minus forward and backward
  step           the whole training step (`train_on_batch`)

Beside each part, "products" times only the matrix products of that part at their shapes,
chained as the step chains them (each recurrent product waits for the one before):
  layer fwd: [T*B, D] x [D, 4H], then T x [B, H] x [H, 4H]
  layer bwd: T x [B, 4H] x [4H, H], [D, T*B] x [T*B, 4H], [H, T*B] x [T*B, 4H],
             [T*B, 4H] x [4H, D]
  head fwd:  [T*B, H] x [H, V];   head bwd: [T*B, V] x [V, H], [H, T*B] x [T*B, V]
Their sum over the parts is the step's floor: the time of the step if everything that is
not a matrix product took none. The chain's slices and tiles are the only other work in it.
"other" is the part's time minus its products: the time a faster step could win back.
"""

from __future__ import annotations

import argparse
import os
import statistics

import keras
import numpy as np
import tensorflow as tf

from lstm_textgen.bench.models import EMBED, LAYERS, VOCAB, gate_model
from lstm_textgen.bench.options import add_step_arguments, bench_parser
from lstm_textgen.bench.timing import cpu_description, time_alternately
from lstm_textgen.training.distribute import configure_threads


def product_parts(units, batch, seq_len, layers=LAYERS):
    """{part: function of no arguments} running only that part's matrix products at the
    step's shapes (see the module docstring), on fixed random operands."""
    rng = np.random.default_rng(0)

    def operand(*shape):
        return tf.constant(rng.normal(scale=0.05, size=shape), tf.float32)

    steps, b, h = seq_len, batch, units
    rows = steps * b
    widths = [EMBED] + [h] * (layers - 1)
    kernels = [operand(d, 4 * h) for d in widths]
    recurrent = [operand(h, 4 * h) for _ in widths]
    # The backward pass multiplies by the transposed kernel, transposed once per step
    # (as `layers.lstm_sequence` does), not by a transposed-operand product per step.
    recurrent_t = [tf.transpose(u) for u in recurrent]
    inputs = [operand(rows, d) for d in widths]
    # Each layer's own outputs and gate gradients, as in the step: with shared operands,
    # XLA would compute the layers' equal products once.
    outputs = [operand(rows, h) for _ in widths]
    d_z = [operand(rows, 4 * h) for _ in widths]
    state, d_state = operand(b, h), operand(b, 4 * h)
    head, d_logits = operand(h, VOCAB), operand(rows, VOCAB)

    def layer_forward(k):
        projected = tf.matmul(inputs[k], kernels[k])
        hidden = state
        for _ in range(steps):
            hidden = tf.matmul(hidden, recurrent[k])[:, :h]
        return projected[0, 0] + hidden[0, 0]

    def layer_backward(k):
        d_gates = d_state
        for _ in range(steps):
            d_gates = tf.tile(tf.matmul(d_gates, recurrent_t[k]), [1, 4])
        d_kernel = tf.matmul(inputs[k], d_z[k], transpose_a=True)
        d_recurrent = tf.matmul(outputs[k], d_z[k], transpose_a=True)
        d_inputs = tf.matmul(d_z[k], kernels[k], transpose_b=True)
        return d_gates[0, 0] + d_kernel[0, 0] + d_recurrent[0, 0] + d_inputs[0, 0]

    parts = {}
    for k in range(layers):
        parts[f"layer {k + 1} fwd"] = lambda k=k: layer_forward(k)
        parts[f"layer {k + 1} bwd"] = lambda k=k: layer_backward(k)
    parts["head fwd"] = lambda: tf.matmul(outputs[-1], head)[0, 0]
    parts["head bwd"] = lambda: (
        tf.matmul(d_logits, head, transpose_b=True)[0, 0]
        + tf.matmul(outputs[-1], d_logits, transpose_a=True)[0, 0]
    )
    return parts


def floor_step(units, batch, seq_len, jit, layers=LAYERS):
    """One function running every matrix product of a training step, in the step's order:
    the step's floor, compiled with XLA if `jit`."""
    parts = list(product_parts(units, batch, seq_len, layers).items())
    forward = [fn for name, fn in parts if name.endswith("fwd")]
    backward = [fn for name, fn in reversed(parts) if name.endswith("bwd")]

    @tf.function(jit_compile=jit)
    def step():
        total = tf.constant(0.0)
        for fn in forward + backward:
            with tf.control_dependencies([total]):  # one part after the other, as in the step
                total = total + fn()
        return total

    return lambda: step().numpy()


def step_parts(units, batch, seq_len, jit):
    """{part: function} timing each part of the real training step (see the docstring):
    forward alone, and forward with backward, per layer and for the head and loss."""
    model = gate_model(units, jit)
    rng = np.random.default_rng(0)
    ids = rng.integers(1, VOCAB, size=(batch, seq_len)).astype("int32")
    labels = tf.constant(rng.integers(1, VOCAB, size=(batch, seq_len)).astype("int32"))
    model.train_on_batch(ids, labels)  # builds the optimizer's slots
    sequence = model.embedding(tf.transpose(ids))
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def timed(fn):
        compiled = tf.function(fn, jit_compile=jit)
        # The embedding's gradient is an IndexedSlices: fetch its values.
        fetch = lambda t: (t.values if isinstance(t, tf.IndexedSlices) else t).numpy()  # noqa: E731
        return lambda: tf.nest.map_structure(fetch, compiled(), expand_composites=False)

    parts = {}
    for k, layer in enumerate(model.lstm_layers):
        x = sequence

        def forward(layer=layer, x=x):
            return layer(x, training=True)[0]

        def forward_backward(layer=layer, x=x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x, training=True)[0]
            return tape.gradient(y, [x] + layer.trainable_variables, output_gradients=y)

        parts[f"layer {k + 1} fwd"] = timed(forward)
        parts[f"layer {k + 1} fwd+bwd"] = timed(forward_backward)
        sequence = layer(sequence, training=True)[0]

    def head_loss():
        return loss_fn(tf.transpose(labels), model.head(sequence))

    def head_loss_grad():
        with tf.GradientTape() as tape:
            tape.watch(sequence)
            loss = head_loss()
        return tape.gradient(loss, [sequence] + model.head.trainable_variables)

    def forward_backward_all():
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(ids, training=True))
        return tape.gradient(loss, model.trainable_variables)

    parts["head fwd"] = timed(head_loss)
    parts["head fwd+bwd"] = timed(head_loss_grad)
    parts["fwd+bwd"] = timed(forward_backward_all)
    parts["step"] = lambda: model.train_on_batch(ids, labels)
    return parts


def profile(units, batch, seq_len, steps, warmup):
    """{mode: {name: median seconds}} of every part of the step and of its products."""
    results = {}
    for mode, jit in (("graph", False), ("xla", True)):
        fns = {f"step {name}": fn for name, fn in step_parts(units, batch, seq_len, jit).items()}
        for name, fn in product_parts(units, batch, seq_len).items():
            compiled = tf.function(fn, jit_compile=jit)
            fns[f"products {name}"] = lambda c=compiled: c().numpy()
        fns["products floor"] = floor_step(units, batch, seq_len, jit)
        times = time_alternately(fns, steps, warmup)
        results[mode] = {name: statistics.median(t) for name, t in times.items()}
    return results


def table(measured, layers=LAYERS):
    """Rows `(part, total ms, products ms)` of one mode, from `profile`'s medians."""

    def ms(name):
        return measured[name] * 1e3

    rows = []
    for k in range(1, layers + 1):
        fwd = ms(f"step layer {k} fwd")
        rows.append((f"layer {k} fwd", fwd, ms(f"products layer {k} fwd")))
        rows.append(
            (f"layer {k} bwd", ms(f"step layer {k} fwd+bwd") - fwd, ms(f"products layer {k} bwd"))
        )
    head = ms("step head fwd")
    rows.append(("head+loss fwd", head, ms("products head fwd")))
    rows.append(("head+loss bwd", ms("step head fwd+bwd") - head, ms("products head bwd")))
    parts_sum = sum(total for _, total, _ in rows)
    rows.append(("optimizer+rest", ms("step step") - parts_sum, 0.0))
    rows.append(("step", ms("step step"), ms("products floor")))
    return rows


def build_parser() -> argparse.ArgumentParser:
    """This benchmark's options, which `main` parses and docs/commands.md shows."""
    parser = bench_parser("profile", __doc__)
    add_step_arguments(parser, [512], "runs per part")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)

    threads = configure_threads(args.inter_op, args.intra_op)
    print(f"CPU: {cpu_description()}")
    print(f"CPU cores: {os.cpu_count()}; TF threads inter/intra: {threads[0]}/{threads[1]}")
    print(
        f"batch {args.batch}, seq {args.seq_len}, {LAYERS} layers, embedding {EMBED}, "
        f"vocab {VOCAB}; median of {args.steps} runs of each part after {args.warmup} warm-up"
    )
    for units in args.units:
        results = profile(units, args.batch, args.seq_len, args.steps, args.warmup)
        for mode, measured in results.items():
            print()
            print(f"H = {units}, {mode}")
            print(f"{'part':<15} {'ms':>9} {'products':>9} {'other':>9} {'other %':>8}")
            for part, total, products in table(measured):
                other = total - products
                share = 100 * other / total if total > 0 else 0.0
                print(f"{part:<15} {total:>9.1f} {products:>9.1f} {other:>9.1f} {share:>7.0f}%")


if __name__ == "__main__":
    main()
