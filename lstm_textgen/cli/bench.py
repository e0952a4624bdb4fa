"""`lstm-textgen bench`."""

from __future__ import annotations

import argparse

from lstm_textgen.bench import BENCHMARKS

NAME = "bench"
HELP = "measure training or generation speed (benchmarks)"
DESCRIPTION = (
    "Benchmarks: `bench train` times GateLSTM against keras.layers.LSTM, torch.nn.LSTM "
    "and the step's matrix-product floor; `bench profile` shows where a step's time goes; "
    "`bench generate` times an export's in-graph generation against a Python loop; "
    "`bench serve` times K clients' requests to an export, separate and merged; "
    "`bench memory` reports peak memory of training on large text files. "
    "Pass --help after the name for their options."
)


def tensorflow_start(args) -> str:
    return "import"  # the benchmarks set thread pools before TensorFlow starts its devices


def add_cli_args(parser) -> None:
    parser.add_argument("which", choices=BENCHMARKS, help="which benchmark")
    parser.add_argument("options", nargs=argparse.REMAINDER, help="options of that benchmark")


def main(args) -> int:
    import importlib

    importlib.import_module(f"lstm_textgen.bench.{args.which}").main(args.options)
    return 0
