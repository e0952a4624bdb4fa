"""Generation throughput of an export: in-graph sampling loop against a Python loop.

    lstm-textgen bench generate                       # 2 x 256 units, 1,000 chars
    lstm-textgen bench generate --units 512 --chars 2000

A randomly initialised model (speed does not depend on the weights) is exported with
`export_for_serving`, then, side by side in one process:

  in-graph    the SavedModel's `serving_default`: the whole 1,000-step sampling loop runs
              inside TensorFlow (one call per request).
  py-loop     the approach of the TensorFlow text-generation tutorial: a Python loop that
              calls a one-step `tf.function` (embedding -> LSTM step -> logits -> sample)
              once per character, carrying the state in Python.
  floor       one step's matrix products alone (every layer's x @ W and h @ U, and the
              output layer), run 1,000 times in a graph loop: the per-step latency floor.
  litert      the same model exported with `export --litert`: its `generate` signature
              (the whole loop) run by LiteRT's interpreter, one thread per core.
  litert-i8   the same with int8 weights (`--quantize dynamic`).

The LiteRT rows need ai-edge-litert; without it they are left out, with a note.

Below the table, the ops of the sampling loop's body in the export's graph, per kind of
rows (greedy, sampled, either with top-k/top-p; "uneven" where some row may end before
another): what TensorFlow runs for every character.

Stop strings end a batch early: after the table, --stop-rows rows (32) of up to
--stop-chars characters (2,000) are generated with `--stop` at a newline and without
stop strings, side by side. The loop runs until every row has ended, so with the stop
string the batch costs about what its longest row costs.

Each figure is the median of --repeats calls after one warm-up call, the variants timed
in alternation. Cold start is timed
in a fresh process: interpreter start -> `import tensorflow` -> `tf.saved_model.load` ->
first text returned.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf

from lstm_textgen.bench.options import add_list_argument, add_model_arguments, bench_parser
from lstm_textgen.bench.timing import cpu_description, median_times
from lstm_textgen.config import ModelConfig, TrainConfig
from lstm_textgen.data.vocab import CharVocabulary
from lstm_textgen.errors import TextgenError
from lstm_textgen.export.litert import export_litert
from lstm_textgen.export.saved_model import export_for_serving
from lstm_textgen.export.warmup import generate_arrays
from lstm_textgen.generation.samplers import sample_next
from lstm_textgen.generation.settings import SamplingSettings, numbers
from lstm_textgen.model import stepping
from lstm_textgen.model.language_model import CharLanguageModel
from lstm_textgen.store.run_dir import RunDir, save_run_config

CHARACTERS = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # 65
EMBEDDING_DIM = 64


def print_header(args, workload: str) -> None:
    """The CPU and the exported model, above a serving benchmark's table."""
    print(f"CPU: {cpu_description()}")
    print(
        f"model: embedding {EMBEDDING_DIM}, {args.layers} x {args.units} units, vocabulary "
        f"{len(CHARACTERS) + 1}; {workload}"
    )
    print()


def make_export(workdir, units, layers):
    """A randomly initialised model (speed does not depend on the weights), exported."""
    vocab = CharVocabulary(CHARACTERS)
    config = ModelConfig(
        vocab_size=vocab.size, embedding_dim=EMBEDDING_DIM, units=units, num_layers=layers
    )
    model = CharLanguageModel.from_model_config(config)
    run = os.path.join(workdir, "run")
    os.makedirs(run)
    vocab.save(run)
    save_run_config(run, config, TrainConfig())
    model.save(RunDir(run).checkpoint("best"))
    return model, export_for_serving(run, os.path.join(workdir, "export"), warmup=False)


def python_loop(model, batch, chars):
    """The tutorial's loop: one tf.function call per generated character."""

    @tf.function
    def one_step(ids, state, seed):
        logits, state = stepping.step(model, ids, state)
        uniform = tf.random.stateless_uniform([batch], seed=seed)
        return sample_next(logits, uniform, temperature=1.0), state

    def run():
        ids = tf.ones([batch], tf.int32)
        state = model.initial_state(batch)
        for t in range(chars):
            ids, state = one_step(ids, state, tf.constant([1, t], tf.int64))
        return ids.numpy()

    return run


def floor_loop(model, batch, chars):
    """Only the matrix products of one step, repeated `chars` times in one graph."""

    @tf.function
    def run():
        # The weights are read once, outside the loop, as the export's generate does.
        weights = stepping.step_weights(model)
        kernels = [(w, u) for w, u, _ in weights.layers]
        head = weights.head[0]
        x0 = tf.ones([batch, model.embedding_dim])
        h0 = tf.ones([batch, model.units])

        def body(t, acc):
            x = x0
            for w, u in kernels:
                x = tf.matmul(x, w)[:, : model.units] + tf.matmul(h0, u)[:, : model.units]
            return t + 1, acc + tf.reduce_sum(tf.matmul(x, head))

        return tf.while_loop(lambda t, _: t < chars, body, (0, 0.0))[1]

    return lambda: run().numpy()


def litert_variants(workdir) -> dict:
    """{name: LiteRTModel} of the LiteRT exports of the benchmark's run, if LiteRT runs."""
    from lstm_textgen.generation.backends.litert import LiteRTModel

    run = os.path.join(workdir, "run")
    variants = {}
    for name, quantize in (("litert", None), ("litert-i8", "dynamic")):
        path = export_litert(run, os.path.join(workdir, f"{name}.tflite"), quantize=quantize)
        try:
            variants[name] = LiteRTModel(path)
        except TextgenError as e:
            print(f"note: no LiteRT rows: {e}")
            return {}
    return variants


def litert_generate(model, batch, chars):
    prompt = np.tile(model.vocab.encode("ROMEO:"), (batch, 1))
    inputs = serving_request(batch, chars)
    settings = {spec.name: inputs[spec.name] for spec in numbers()}
    stop_ids, stop_lengths = model.encode_stops([[]] * batch)
    return lambda: model.generate_ids(prompt, settings, stop_ids, stop_lengths)


def serving_request(batch, chars, stop=""):
    """`serving_default` inputs: `batch` rows of `chars` characters at the table's default
    settings (temperature 1, no filter), seeds 1 to `batch`, one stop string or none."""
    rows = [
        SamplingSettings(num_chars=chars, seed=r + 1, stop=[stop] if stop else [])
        for r in range(batch)
    ]
    return generate_arrays(["ROMEO:"] * batch, rows)


def stop_early(serve, rows, chars, repeats):
    """Seconds of `rows` rows of up to `chars` characters with a newline stop and without,
    and the lengths of the texts with it."""
    requests = {
        "no stop": serving_request(rows, chars),
        "stop \\n": serving_request(rows, chars, "\n"),
    }
    timings = median_times(
        {name: lambda r=r: serve(**r)["text"].numpy() for name, r in requests.items()}, repeats
    )
    lengths = [len(t) for t in serve(**requests["stop \\n"])["text"].numpy()]
    return timings, lengths


def cold_start(export_dir, chars):
    inputs = {
        name: (array.tolist(), str(array.dtype) if array.dtype != object else "string")
        for name, array in serving_request(1, chars).items()
    }
    code = (
        "import time, os; t0 = time.perf_counter()\n"
        "import tensorflow as tf; t1 = time.perf_counter()\n"
        f"m = tf.saved_model.load({export_dir!r}); t2 = time.perf_counter()\n"
        f"inputs = {{k: tf.constant(v, d) for k, (v, d) in {inputs!r}.items()}}\n"
        "out = m.signatures['serving_default'](**inputs)['text'].numpy()\n"
        "t3 = time.perf_counter(); print(t1 - t0, t2 - t1, t3 - t2)\n"
    )
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        check=True,
    )
    total = time.perf_counter() - start
    return total, [float(v) for v in result.stdout.split()]


def cold_start_litert(path, chars):
    """Seconds from a fresh interpreter to the first text of a LiteRT model (no TF)."""
    code = (
        "from lstm_textgen.generation.backends.litert import LiteRTModel\n"
        f"LiteRTModel({path!r}).generate(['ROMEO:'], num_chars={chars}, seed=1)\n"
    )
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
    return time.perf_counter() - start


def build_parser() -> argparse.ArgumentParser:
    """This benchmark's options, which `main` parses and docs/commands.md shows."""
    parser = bench_parser("generate", __doc__)
    add_model_arguments(parser)
    parser.add_argument(
        "--chars",
        type=int,
        default=1000,
        help="characters generated per row (default: %(default)s)",
    )
    add_list_argument(parser, "--batches", int, [1, 32], "batch sizes to time")
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed calls per row, median taken (default: %(default)s)",
    )
    parser.add_argument(
        "--stop-rows",
        type=int,
        default=32,
        help="rows of the stop-string comparison; 0 leaves it out (default: %(default)s)",
    )
    parser.add_argument(
        "--stop-chars",
        type=int,
        default=2000,
        help="longest row of the stop-string comparison (default: %(default)s)",
    )
    return parser


# The rows `samplers.switch_branches` tells apart in the sampling loop, in its branch order: each
# kind of rows where some row may end before another ("uneven": a stop string, the end
# marker or a different num_chars), then each where all end together.
_KINDS = (
    "greedy",
    "sampled",
    "greedy+sampled",
    "sampled, top-k/p",
    "greedy+sampled, top-k/p",
)
BRANCH_NAMES = tuple(f"{kind}, uneven" for kind in _KINDS) + _KINDS


def loop_body_ops(export_dir) -> list[tuple[str, int, collections.Counter]]:
    """`(branch, nodes, nodes by op)` of the sampling loop's body in each branch of the
    export's `serving_default`: the ops TensorFlow runs per generated character."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
        saved.ParseFromString(f.read())
    library = {f.signature.name: f for f in saved.meta_graphs[0].graph_def.library.function}
    for function in library.values():
        for node in function.node_def:
            branches = node.attr["branches"].list.func
            if node.op not in ("Case", "StatelessCase") or len(branches) != len(BRANCH_NAMES):
                continue
            rows = []
            for name, branch in zip(BRANCH_NAMES, branches):
                (body,) = [
                    library[n.attr["body"].func.name]
                    for n in library[branch.name].node_def
                    if n.op in ("While", "StatelessWhile")
                ]
                ops = collections.Counter(n.op for n in body.node_def)
                rows.append((name, len(body.node_def), ops))
            return rows  # the generate and continue functions share one loop
    raise ValueError(f"{export_dir} has no sampling loop")


def print_loop_ops(export_dir) -> None:
    print()
    print("ops in the loop body, run once per character (serving_default), by kind of rows:")
    for name, nodes, ops in loop_body_ops(export_dir):
        common = ", ".join(f"{op} {n}" for op, n in ops.most_common(4))
        print(f"  {name:<31} {nodes:>4}   most: {common}")


def print_stop_comparison(serve, args) -> None:
    """The stop-string comparison: the same rows with a newline stop and without."""
    timings, lengths = stop_early(serve, args.stop_rows, args.stop_chars, args.repeats)
    print()
    print(
        f"stop strings, {args.stop_rows} rows of up to {args.stop_chars:,} characters (in-graph):"
    )
    for name, seconds in timings.items():
        print(f"  {name:<8} {seconds:>8.3f} s  {timings['no stop'] / seconds:>6.1f}x")
    print(
        f"  with the newline stop the rows ended after {min(lengths)} to {max(lengths)} "
        f"characters (mean {sum(lengths) / len(lengths):.0f}): the batch ran "
        f"{max(lengths) + 1} steps, not {args.stop_chars:,}"
    )


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.stop_rows < 0:
        raise TextgenError(f"--stop-rows must be >= 0, got {args.stop_rows}")

    with tempfile.TemporaryDirectory() as workdir:
        model, export_dir = make_export(workdir, args.units, args.layers)
        serve = tf.saved_model.load(export_dir).signatures["serving_default"]
        litert = litert_variants(workdir)
        print_header(
            args,
            f"{args.chars} characters per request; median of {args.repeats} after a warm-up",
        )
        columns = ("seconds", "chars/s", "ms/step", "vs loop", "vs graph", "vs floor")
        print(f"{'batch':>5} {'variant':<9} " + " ".join(f"{c:>8}" for c in columns))
        for batch in args.batches:
            request = serving_request(batch, args.chars)
            timings = median_times(
                {
                    "in-graph": lambda request=request: serve(**request)["text"].numpy(),
                    "py-loop": python_loop(model, batch, args.chars),
                    "floor": floor_loop(model, batch, args.chars),
                    **{
                        name: litert_generate(variant, batch, args.chars)
                        for name, variant in litert.items()
                    },
                },
                args.repeats,
            )
            for name, seconds in timings.items():
                print(
                    f"{batch:>5} {name:<9} {seconds:>8.3f} {batch * args.chars / seconds:>9.0f} "
                    f"{1e3 * seconds / args.chars:>8.3f} {timings['py-loop'] / seconds:>7.1f}x "
                    f"{timings['in-graph'] / seconds:>7.1f}x {seconds / timings['floor']:>7.1f}x"
                )
        print_loop_ops(export_dir)
        if args.stop_rows > 0:
            print_stop_comparison(serve, args)
        total, (import_s, load_s, first_s) = cold_start(export_dir, 100)
        print()
        print(
            f"cold start (fresh process, 100 characters): {total:.2f} s in all = "
            f"import tensorflow {import_s:.2f} s + load SavedModel {load_s:.2f} s + "
            f"first request {first_s:.2f} s (+ interpreter start)"
        )
        if litert:
            seconds = cold_start_litert(litert["litert"].path, 100)
            print(f"cold start of the LiteRT model, the same way (no TensorFlow): {seconds:.2f} s")


if __name__ == "__main__":
    main()
