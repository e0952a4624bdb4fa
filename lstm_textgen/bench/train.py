"""Training throughput of the char LM: GateLSTM against keras.layers.LSTM, side by side.

    lstm-textgen bench train                 # H = 256, 512, 1024
    lstm-textgen bench train --units 512 --steps 7

Model: Embedding(V, 64) -> 2 x LSTM(H) -> Dense(V), sequences of 100, batches of 64, Adam,
V = 66 (tiny Shakespeare's 65 characters + the unknown id), random ids.

Variants, timed step by step in alternation so that machine noise hits all of them alike:
  gates+xla   our GateLSTM, train step compiled with XLA (the default `train` path)
  gates       our GateLSTM, no XLA
  keras       keras.layers.LSTM, Keras defaults (no XLA on CPU)
  keras+xla   keras.layers.LSTM with jit_compile=True
  floor       only the step's matrix products, at their shapes and chained as the step
              chains them, in graph mode (see `bench profile`)
  floor+xla   the same under XLA: the faster of the two is the step's floor
  torch       torch.nn.LSTM on CPU, when torch is installed (--torch), in a worker
              process of its own (see `bench.torch_worker`: triton, which PyTorch's
              wheels bring, crashes a process that has loaded TensorFlow); its OpenMP
              threads sleep between steps (OMP_WAIT_POLICY=PASSIVE) so that they do
              not spin into the next variant's time
With --bf16, two more (on a CPU without bfloat16 instructions they are emulated, slowly):
  gates-bf16  our GateLSTM with its products on bfloat16 operands (what `train
              --mixed-precision` runs on a CPU with AVX512_BF16 or AMX), no XLA
  torch-bf16  torch.nn.LSTM under torch.autocast("cpu", torch.bfloat16) (with --torch)

Each time is the median of --steps timed steps after --warmup untimed ones. "vs keras" is
the median over rounds of keras's time divided by the variant's in the same round, which
cancels the slow drifts of a shared machine better than a ratio of medians; "vs torch"
likewise (with --torch), and "x floor" is the variant's time over the faster floor's.
FLOPs per training step are counted as 3 x the forward matmuls (backward ~ 2 x forward):
  forward = B * T * (sum over layers of 2 * 4H * (D_in + H)  +  2 * H * V)
with D_in = 64 for the first layer and H after. The ceiling is the best fp32 matrix
product speed measured on the machine: 2048 x 2048 x 2048 products, 10 in a row, by
TensorFlow (in a graph, with and without XLA) and by NumPy's BLAS, whichever is fastest.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics

import numpy as np
import tensorflow as tf

from lstm_textgen.bench.models import EMBED, LAYERS, VOCAB, gate_model, keras_model
from lstm_textgen.bench.options import add_step_arguments, bench_parser
from lstm_textgen.bench.profile import floor_step
from lstm_textgen.bench.timing import cpu_description, time_alternately
from lstm_textgen.bench.torch_worker import TorchStep, TorchStepError
from lstm_textgen.training.distribute import configure_threads


def matmul_gflops(n=2048, chain=10, repeats=5):
    """GFLOP/s of fp32 n^3 matrix products by each engine: {name: median GFLOP/s}."""
    a = tf.random.normal([n, n])
    b = tf.random.normal([n, n]) / n

    def products(a, b):
        # A chain of dependent products: one call, no per-op dispatch in the timing.
        for _ in range(chain):
            a = tf.matmul(a, b)
        return a

    a_np, b_np = a.numpy(), b.numpy()

    def numpy_products():
        x = a_np
        for _ in range(chain):
            x = x @ b_np
        return x

    engines = {
        "tf.matmul": lambda f=tf.function(products): f(a, b).numpy(),
        "tf.matmul+xla": lambda f=tf.function(products, jit_compile=True): f(a, b).numpy(),
        "numpy": numpy_products,
    }
    times = time_alternately(engines, repeats)
    return {name: chain * 2 * n**3 / statistics.median(t) / 1e9 for name, t in times.items()}


def step_flops(units, batch, seq_len):
    per_char = 0
    d_in = EMBED
    for _ in range(LAYERS):
        per_char += 2 * 4 * units * (d_in + units)
        d_in = units
    per_char += 2 * units * VOCAB
    return 3 * per_char * batch * seq_len


def bench(units, batch, seq_len, steps, warmup, with_torch, with_bf16=False):
    x = np.random.default_rng(0).integers(1, VOCAB, size=(batch, seq_len)).astype("int32")
    y = np.random.default_rng(1).integers(1, VOCAB, size=(batch, seq_len)).astype("int32")
    variants = {
        "gates+xla": gate_model(units, True),
        "gates": gate_model(units, False),
        "keras": keras_model(units, False),
        "keras+xla": keras_model(units, True),
    }
    if with_bf16:
        variants["gates-bf16"] = gate_model(units, False, "bfloat16")
    steps_fn = {name: (lambda m=m: m.train_on_batch(x, y)) for name, m in variants.items()}
    steps_fn["floor"] = floor_step(units, batch, seq_len, jit=False)
    steps_fn["floor+xla"] = floor_step(units, batch, seq_len, jit=True)
    with contextlib.ExitStack() as workers:
        if with_torch:
            for name, bfloat16 in (("torch", False), ("torch-bf16", True))[: 1 + with_bf16]:
                step = _torch_step(units, batch, seq_len, bfloat16)
                if step is None:
                    break  # without float32 torch there is no torch-bf16 either
                workers.callback(step.close)
                steps_fn[name] = step
        times = time_alternately(steps_fn, steps, warmup)
    medians = {name: statistics.median(t) for name, t in times.items()}
    floor = [min(a, b) for a, b in zip(times["floor"], times["floor+xla"])]

    def ratio(reference, t):
        return statistics.median(r / v for r, v in zip(reference, t))

    ratios = {
        name: {
            "vs keras": ratio(times["keras"], t),
            "vs torch": ratio(times["torch"], t) if "torch" in times else None,
            "x floor": ratio(t, floor),
        }
        for name, t in times.items()
    }
    return medians, ratios


def _torch_step(units, batch, seq_len, bfloat16):
    """A `TorchStep` at the benchmark's shapes and threads, or None (and why, printed)."""
    threads = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
    try:
        return TorchStep(
            units,
            batch,
            seq_len,
            vocab=VOCAB,
            embed=EMBED,
            layers=LAYERS,
            threads=threads,
            bfloat16=bfloat16,
        )
    except TorchStepError as e:
        print(f"{'torch-bf16' if bfloat16 else 'torch'} left out: {e}")
        return None


def build_parser() -> argparse.ArgumentParser:
    """This benchmark's options, which `main` parses and docs/commands.md shows."""
    parser = bench_parser("train", __doc__)
    add_step_arguments(parser, [256, 512, 1024], "steps per variant")
    parser.add_argument("--torch", action="store_true", help="also time torch.nn.LSTM")
    parser.add_argument(
        "--bf16", action="store_true", help="also time the bfloat16 variants (see above)"
    )
    parser.add_argument(
        "--ceiling-size",
        type=int,
        default=2048,
        help="N of the N^3 products that measure the ceiling",
    )
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)

    threads = configure_threads(args.inter_op, args.intra_op)
    engines = matmul_gflops(args.ceiling_size)
    ceiling = max(engines.values())
    print(f"CPU: {cpu_description()}")
    print(f"CPU cores: {os.cpu_count()}; TF threads inter/intra: {threads[0]}/{threads[1]}")
    print(
        f"fp32 {args.ceiling_size}^3 matmul GFLOP/s: "
        + ", ".join(f"{k} {v:.1f}" for k, v in engines.items())
    )
    print(f"ceiling (the fastest): {ceiling:.1f} GFLOP/s")
    print(
        f"batch {args.batch}, seq {args.seq_len}, {LAYERS} layers, embedding {EMBED}, "
        f"vocab {VOCAB}; median of {args.steps} steps after {args.warmup} warm-up"
    )
    print()
    columns = ["vs keras"] + (["vs torch"] if args.torch else []) + ["x floor"]
    print(
        f"{'H':>5} {'variant':<10} {'ms/step':>9} {'chars/s':>9} {'GFLOP/s':>8} "
        f"{'% ceiling':>9} " + " ".join(f"{c:>8}" for c in columns)
    )
    for units in args.units:
        medians, ratios = bench(
            units, args.batch, args.seq_len, args.steps, args.warmup, args.torch, args.bf16
        )
        flops = step_flops(units, args.batch, args.seq_len)
        for name, seconds in medians.items():
            gflops = flops / seconds / 1e9
            print(
                f"{units:>5} {name:<10} {seconds * 1e3:>9.1f} "
                f"{args.batch * args.seq_len / seconds:>9.0f} {gflops:>8.1f} "
                f"{100 * gflops / ceiling:>8.1f}% "
                + " ".join(_ratio_cell(ratios[name][c]) for c in columns)
            )


def _ratio_cell(value):
    return f"{'-':>8}" if value is None else f"{value:>7.2f}x"


if __name__ == "__main__":
    main()
