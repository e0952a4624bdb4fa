"""Serving under load: K clients against one export, as separate calls and as TF Serving's
batcher would merge them.

    lstm-textgen bench serve                          # 2 x 256 units, K = 1, 8, 32, 64
    lstm-textgen bench serve --clients 32 --chars 200 --rounds 5
    lstm-textgen bench serve --baseline saved_models/old/1   # batch-1 latency side by side

A randomly initialised model (speed does not depend on the weights) is exported with
`export_for_serving` and loaded back with `tf.saved_model.load`, so no project code runs
in the timed path. Each of the K clients sends one `serving_default` request of one row
(its own prompt, `--chars` characters, and its own temperature, top-k, top-p and seed).
For every K, in alternation:

  separate   K threads, each calling the signature with its own request at once, as K
             clients would without batching.
  merged     what TF Serving's batcher does with `--enable_batching`: the K requests are
             concatenated along dimension 0, run as one call, and the rows split back.
  halves     the K requests merged into two batches of K/2, run at once from two threads:
             what `num_batch_threads: 2` does when two batches are queued.

chars/s is the K requests' characters over the round's wall time. Latency is from the
round's start to a client's reply: p50 and p99 over every client of every round.
`--baseline DIR` also times another export's `serving_default` at batch 1 against this
one's, in alternation: the per-character latency of the two, side by side (an export
whose settings are scalars is called with scalars).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time

import numpy as np
import tensorflow as tf

from lstm_textgen.bench.generate import make_export, print_header
from lstm_textgen.bench.options import add_list_argument, add_model_arguments, bench_parser
from lstm_textgen.bench.timing import time_alternately
from lstm_textgen.export.warmup import generate_arrays
from lstm_textgen.generation.settings import SamplingSettings

PROMPTS = ("ROMEO:", "JULIET:\nO", "First Citizen:\nBefore we proceed", "", "KING RICHARD III:")


def client_request(k: int, chars: int) -> dict[str, np.ndarray]:
    """Client k's one-row request: mixed prompts and sampling settings, and no stop
    strings, so every row runs its full length and throughput compares alike."""
    settings = SamplingSettings(
        num_chars=chars,
        temperature=(0.0, 0.7, 1.0, 1.3)[k % 4],
        top_k=(0, 5, 20)[k % 3],
        top_p=(1.0, 0.9)[k % 2],
        seed=1000 + k,
    )
    return generate_arrays([PROMPTS[k % len(PROMPTS)]], [settings])


def merge(requests):
    return {name: np.concatenate([r[name] for r in requests]) for name in requests[0]}


class Round:
    """One round of K clients in one mode; `latencies` holds each client's seconds."""

    def __init__(self, signature, requests, batches: int):
        self.signature = signature
        self.requests = requests
        self.batches = batches  # 0: one call per request
        self.latencies = []  # per round, one list of every client's seconds
        self.walls = []

    def __call__(self):
        start = time.perf_counter()
        lock = threading.Lock()
        latencies = []

        def call(requests):
            texts = self.signature(**merge(requests))["text"].numpy()
            assert len(texts) == len(requests)
            done = time.perf_counter() - start
            with lock:
                latencies.extend([done] * len(requests))

        if self.batches:
            size = -(-len(self.requests) // self.batches)
            groups = [self.requests[k : k + size] for k in range(0, len(self.requests), size)]
        else:
            groups = [[request] for request in self.requests]
        if len(groups) == 1:
            call(groups[0])
        else:
            threads = [threading.Thread(target=call, args=(g,)) for g in groups]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        self.walls.append(time.perf_counter() - start)
        self.latencies.append(latencies)


def percentile(values, q):
    return float(np.percentile(np.asarray(values), q))


def scalar_request(signature, request):
    """`request` shaped for `signature`: settings as scalars where it takes scalars."""
    shaped = {}
    for name, spec in signature.structured_input_signature[1].items():
        value = request[name]
        shaped[name] = tf.constant(value[0] if spec.shape.rank == 0 else value, spec.dtype)
    return shaped


def rows_equal_check(export_dir, signature, clients: int, chars: int) -> None:
    """Print how many of `clients` rows give the same text alone and merged, and how far
    the `step` logits of rows alone are from the same rows in one batch."""
    requests = [client_request(k, chars) for k in range(clients)]
    merged = signature(**merge(requests))["text"].numpy()
    alone = [signature(**r)["text"].numpy()[0] for r in requests]
    same = sum(a == m for a, m in zip(alone, merged))
    step = tf.saved_model.load(export_dir).signatures["step"]
    rng = np.random.default_rng(0)
    h, c = (
        rng.normal(size=[clients, *step.structured_input_signature[1]["h"].shape[1:]]) for _ in "hc"
    )
    inputs = dict(
        ids=rng.integers(1, 66, clients).astype(np.int32),
        h=h.astype(np.float32),
        c=c.astype(np.float32),
    )
    batch = step(**inputs)["logits"].numpy()
    rows = [
        step(**{k: v[r : r + 1] for k, v in inputs.items()})["logits"].numpy()
        for r in range(clients)
    ]
    difference = np.abs(batch - np.concatenate(rows)).max()
    print()
    print(
        f"rows alone and merged: {same} of {clients} texts equal ({chars} characters each); "
        f"step logits of {clients} rows alone and in one batch differ by up to {difference:.1e}"
    )


def build_parser() -> argparse.ArgumentParser:
    """This benchmark's options, which `main` parses and docs/commands.md shows."""
    parser = bench_parser("serve", __doc__)
    add_model_arguments(parser)
    parser.add_argument(
        "--chars", type=int, default=200, help="characters per request (default: %(default)s)"
    )
    add_list_argument(parser, "--clients", int, [1, 8, 32, 64], "numbers of clients K")
    parser.add_argument(
        "--rounds", type=int, default=3, help="timed rounds per K and mode (default: %(default)s)"
    )
    parser.add_argument("--baseline", metavar="DIR", help="an export version folder to compare")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)

    with tempfile.TemporaryDirectory() as workdir:
        _, export_dir = make_export(workdir, args.units, args.layers)
        signature = tf.saved_model.load(export_dir).signatures["serving_default"]
        print_header(
            args,
            f"one row of {args.chars} characters per client; {args.rounds} rounds per K and mode",
        )
        print_load_table(signature, args.clients, args.chars, args.rounds)
        rows_equal_check(export_dir, signature, max(args.clients), args.chars)
        print_long_prompt(signature, args.chars)
        if args.baseline:
            print_baseline(signature, args.baseline)


def print_load_table(signature, client_counts, chars: int, rounds: int) -> None:
    """The table: for each number of clients K, throughput and latency of each mode."""
    print(
        f"{'K':>3} {'mode':<9} {'chars/s':>9} {'p50 ms':>9} {'p99 ms':>9} {'merged/separate':>16}"
    )
    for clients in client_counts:
        requests = [client_request(k, chars) for k in range(clients)]
        modes = {
            "separate": Round(signature, requests, batches=0),
            "merged": Round(signature, requests, batches=1),
        }
        if clients > 1:
            modes["halves"] = Round(signature, requests, batches=2)
        time_alternately(modes, rounds)
        throughput = {}
        for name, timed in modes.items():
            # The first call of each is time_alternately's untimed warm-up.
            walls, kept = timed.walls[1:], [t for r in timed.latencies[1:] for t in r]
            throughput[name] = clients * chars * len(walls) / sum(walls)
            ratio = throughput[name] / throughput["separate"]
            print(
                f"{clients:>3} {name:<9} {throughput[name]:>9.0f} "
                f"{1e3 * percentile(kept, 50):>9.1f} {1e3 * percentile(kept, 99):>9.1f} "
                f"{ratio:>15.2f}x"
            )


def print_long_prompt(signature, chars: int) -> None:
    """A 300,006-character prompt's request time against a 6-character prompt's."""
    short = client_request(0, chars)
    long = {**short, "prompt": np.array(["ROMEO: " * 42_858], object)}  # 300,006
    times = time_alternately(
        {"short": lambda: signature(**short), "long": lambda: signature(**long)}, 3
    )
    print()
    print(
        f"a 300,006-character prompt: {statistics.median(times['long']):.3f} s per request, "
        f"against {statistics.median(times['short']):.3f} s with a 6-character prompt "
        f"({chars} characters generated, median of 3)"
    )


def print_baseline(signature, baseline_dir: str) -> None:
    """Batch-1 latency per character of this export and of the one in `baseline_dir`."""
    baseline = tf.saved_model.load(baseline_dir).signatures["serving_default"]
    # `bench generate`'s batch-1 request: 1,000 characters, temperature 1, no filter.
    chars, rounds = 1000, 9
    request = {**client_request(0, chars), "temperature": np.ones([1], np.float32)}
    calls = {
        "this export": lambda: signature(**scalar_request(signature, request)),
        "baseline": lambda: baseline(**scalar_request(baseline, request)),
    }
    times = time_alternately(calls, rounds)
    print()
    print(f"batch 1, {chars} characters, temperature 1, median of {rounds}:")
    ours = statistics.median(times["this export"]) / chars
    theirs = statistics.median(times["baseline"]) / chars
    print(f"  this export {1e3 * ours:.3f} ms/char, baseline {1e3 * theirs:.3f} ms/char")
    print(f"  ratio (baseline / this): {theirs / ours:.2f}x")


if __name__ == "__main__":
    main()
