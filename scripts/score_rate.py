#!/usr/bin/env python3
"""How fast `lstm-textgen score` reads a text on each backend, against the floor of the
recurrence it runs one character at a time: the matrix-vector products of every layer
(`[1, H] x [H, 4H]` for the state, and for each layer above the first its input), timed
alone in NumPy on the same model's weights.

    python3 scripts/score_rate.py --text-file ../shared/data/tinyshakespeare/input.txt
    python3 scripts/score_rate.py --chars 20000 --backends litert keras

Backends: `litert` (the shipped LiteRT file, by its `step` signature), `saved-model` (the
shipped SavedModel's `step` signature, as a TF Serving client would), `keras` (the shipped
model rebuilt in Keras, a piece of 1,024 characters per call). Each rate is characters
per second over --chars characters, after a warm-up of 1,280 (the floor: the best of three
runs of 2,000 steps); "of floor" is the backend's
rate as a share of the floor's. Prints the CPU it ran on.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

BACKENDS = ("litert", "saved-model", "keras")


def scorer_of(name: str):
    from lstm_textgen.generation.open_model import open_scorer
    from lstm_textgen.store.shipped import shipped_model

    shipped = shipped_model()
    if name == "litert":
        return open_scorer(litert=shipped.litert)
    if name == "saved-model":
        return open_scorer(saved_model=shipped.saved_model)
    return open_scorer()


def rate(scorer, vocab, text: str) -> float:
    from lstm_textgen.generation.scoring import PIECE_CHARS, score_text

    for _ in score_text(scorer, vocab, text[: PIECE_CHARS + 256]):  # compiles what it uses
        pass
    started = time.perf_counter()
    for _ in score_text(scorer, vocab, text):
        pass
    return len(text) / (time.perf_counter() - started)


def floor_rate(chars: int) -> float:
    """Characters per second of the shipped model's matrix-vector products alone."""
    from lstm_textgen.generation.backends.litert import read_metadata
    from lstm_textgen.store.shipped import shipped_model

    config = read_metadata(shipped_model().litert)["model"]
    units, layers = config["units"], config["num_layers"]
    rng = np.random.default_rng(0)

    def weights(count):
        scale = units**-0.5
        return [
            (scale * rng.standard_normal((units, 4 * units))).astype(np.float32)
            for _ in range(count)
        ]

    recurrent, inputs = weights(layers), weights(layers - 1)
    h = [np.zeros((1, units), np.float32) for _ in range(layers)]
    steps, best = min(chars, 2000), 0.0
    for _ in range(3):  # the best of three: the floor is what the machine can do
        started = time.perf_counter()
        for _ in range(steps):
            for k in range(layers):
                z = h[k] @ recurrent[k]
                if k:
                    z = z + h[k - 1] @ inputs[k - 1]
                h[k] = np.tanh(z[:, :units])  # keeps the state bounded, as the gates do
        best = max(best, steps / (time.perf_counter() - started))
    return best


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--text-file", help="the text to score (default: generated letters)")
    parser.add_argument("--chars", type=int, default=20_000, help="characters to score")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    args = parser.parse_args()
    if args.text_file:
        with open(args.text_file, encoding="utf-8") as f:
            text = f.read(args.chars)
    else:
        words = ["the ", "king ", "and ", "queen ", "of ", "all ", "ROMEO:\n"]
        text = "".join(np.random.default_rng(0).choice(words, size=args.chars))[: args.chars]
    floor = floor_rate(len(text))
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; {len(text):,} characters")
    print(f"{'backend':<12} {'chars/s':>10} {'of floor':>9}")
    print(f"{'floor':<12} {floor:>10,.0f} {100:>8.0f}%")
    for name in args.backends:
        scorer, vocab = scorer_of(name)
        speed = rate(scorer, vocab, text)
        print(f"{name:<12} {speed:>10,.0f} {100 * speed / floor:>8.0f}%", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
