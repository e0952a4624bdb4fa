"""Peak memory of training on a large text file: the corpus streams from disk.

    lstm-textgen bench memory                     # 10 MB and 200 MB corpora
    lstm-textgen bench memory --sizes-mb 10 200 --steps 20

For each size, the benchmark writes a UTF-8 corpus of that many megabytes (the given
--source text repeated; by default tiny Shakespeare's input.txt from
$LSTM_TEXTGEN_TFDS_MANUAL_DIR) into a temporary folder, then
trains a small model on it (`lstm-textgen train --text-file ... --max-steps N`) in a
fresh process, and reports that process's peak resident memory (ru_maxrss) and its wall
time. If memory is bounded, the peak stays flat as the corpus grows; a trainer that read
the text into a Python string would need at least 4 bytes per character for the ids on
top of the string itself.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

from lstm_textgen.bench.options import add_list_argument, bench_parser
from lstm_textgen.errors import TextgenError

MANUAL_DIR_ENV = "LSTM_TEXTGEN_TFDS_MANUAL_DIR"


def write_corpus(path: str, source_text: str, megabytes: float) -> int:
    """Write `source_text` repeated to `path` until it holds `megabytes` MB; returns bytes."""
    target = int(megabytes * 1_000_000)
    block = source_text.encode("utf-8")
    written = 0
    with open(path, "wb") as f:
        while written < target:
            piece = block[: target - written]
            # Never cut a multi-byte character in half.
            piece = piece.decode("utf-8", errors="ignore").encode("utf-8")
            f.write(piece)
            written += len(piece)
            if not piece:
                break
    return written


def measure(corpus: str, run_dir: str, steps: int) -> tuple[float, float]:
    """(peak RSS in MB, seconds) of one `lstm-textgen train` process on `corpus`."""
    command = [
        sys.executable, "-m", "lstm_textgen", "train", "--run", run_dir,
        "--text-file", corpus, "--units", "128", "--layers", "2",
        "--max-steps", str(steps), "--checkpoint-every", str(steps), "--eval-batches", "5",
    ]  # fmt: skip
    # ru_maxrss of RUSAGE_CHILDREN is the largest child so far, so each training process
    # gets a wrapper process of its own that reports its child's peak alone.
    wrapper = (
        "import resource, subprocess, sys; "
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "sys.stderr.write(r.stderr); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
        "sys.exit(r.returncode)"
    )
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", wrapper, *command], capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise TextgenError(f"training on {corpus} failed: {result.stderr.strip()[-500:]}")
    return int(result.stdout.split()[-1]) / 1024, seconds


def build_parser() -> argparse.ArgumentParser:
    """This benchmark's options, which `main` parses and docs/commands.md shows."""
    parser = bench_parser("memory", __doc__)
    add_list_argument(parser, "--sizes-mb", float, [10, 200], "corpus sizes in MB")
    parser.add_argument(
        "--steps", type=int, default=20, help="training steps per run (default: %(default)s)"
    )
    parser.add_argument(
        "--source",
        help=f"UTF-8 text to repeat (default: input.txt in ${MANUAL_DIR_ENV})",
    )
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    if args.source is None:
        folder = os.environ.get(MANUAL_DIR_ENV)
        if not folder:
            raise TextgenError(
                f"give the text to repeat with --source FILE (or set ${MANUAL_DIR_ENV} to "
                "the folder holding tiny Shakespeare's input.txt)"
            )
        args.source = os.path.join(folder, "input.txt")
    if not os.path.isfile(args.source):
        raise TextgenError(f"--source {args.source} does not exist; give a UTF-8 text file")
    with open(args.source, encoding="utf-8") as f:
        source_text = f.read()
    from lstm_textgen.bench.timing import cpu_description

    print(f"CPU: {cpu_description()}")
    print("| corpus | peak RSS of the training process | wall time |")
    print("| ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory(prefix="lstm-textgen-bench-") as folder:
        for megabytes in sorted(args.sizes_mb):
            corpus = os.path.join(folder, f"corpus-{megabytes:g}mb.txt")
            size = write_corpus(corpus, source_text, megabytes)
            peak_mb, seconds = measure(
                corpus, os.path.join(folder, f"run-{megabytes:g}"), args.steps
            )
            print(f"| {size / 1e6:.3g} MB | {peak_mb:,.0f} MB | {seconds:.0f} s |", flush=True)
            os.remove(corpus)


if __name__ == "__main__":
    main(sys.argv[1:])
