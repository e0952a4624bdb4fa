"""Command-line options the benchmarks share (argparse only: `bench memory` imports this
without TensorFlow)."""

from __future__ import annotations

import argparse


def bench_parser(name: str, doc: str) -> argparse.ArgumentParser:
    """The parser of `lstm-textgen bench NAME`, with the module's docstring `doc` as its
    description, laid out as written."""
    return argparse.ArgumentParser(
        prog=f"lstm-textgen bench {name}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_list_argument(parser, flag: str, kind, default: list, what: str) -> None:
    """An option taking one or more values of type `kind`; its help is `what` and the
    default, written out."""
    parser.add_argument(
        flag,
        type=kind,
        nargs="+",
        default=default,
        help=f"{what} (default: {' '.join(map(str, default))})",
    )


def add_model_arguments(parser) -> None:
    """The size of the random model a serving benchmark exports."""
    parser.add_argument(
        "--units",
        type=int,
        default=256,
        help="units per layer of the exported model (default: %(default)s)",
    )
    parser.add_argument(
        "--layers", type=int, default=2, help="layers of the exported model (default: %(default)s)"
    )


def add_step_arguments(parser, units: list[int], what: str) -> None:
    """The options `bench train` and `bench profile` share: the step's shape, how many
    timed and untimed runs (`what`: "steps per variant", "runs per part"), and threads."""
    add_list_argument(parser, "--units", int, units, "hidden sizes")
    parser.add_argument("--batch", type=int, default=64, help="batch size (default: %(default)s)")
    parser.add_argument(
        "--seq-len", type=int, default=100, help="time steps per window (default: %(default)s)"
    )
    parser.add_argument(
        "--steps", type=int, default=5, help=f"timed {what}, median taken (default: %(default)s)"
    )
    parser.add_argument(
        "--warmup", type=int, default=2, help="untimed runs first (default: %(default)s)"
    )
    parser.add_argument("--inter-op", type=int, help="TF inter-op threads (default: TensorFlow's)")
    parser.add_argument("--intra-op", type=int, help="TF intra-op threads (default: TensorFlow's)")
