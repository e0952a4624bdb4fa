"""`lstm-textgen evaluate`."""

from __future__ import annotations

from lstm_textgen.cli import common

NAME = "evaluate"
HELP = "report loss in nats/char and bits/char"
DESCRIPTION = (
    "Evaluate a run, an export or the shipped model (the default) on a split of its corpus "
    "or on text files."
)


def add_cli_args(parser) -> None:
    common.add_model_source(parser)
    parser.add_argument(
        "--split",
        choices=["train", "validation", "test", "validation+test"],
        default="validation",
        help="split of the run's corpus; validation+test joins the two (default: %(default)s)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        help="windows (with --carry-state: streams) per batch (default: the run's)",
    )
    parser.add_argument(
        "--seq-len",
        type=int,
        metavar="N",
        help="window length (with --carry-state: piece length) (default: the run's)",
    )
    parser.add_argument(
        "--carry-state",
        action="store_true",
        help="read the text as contiguous streams, carrying the LSTM state across windows "
        "(default: each window starts from zero state, as in training)",
    )
    parser.add_argument(
        "--text-file",
        action="append",
        default=[],
        metavar="PATH",
        help="evaluate on these UTF-8 files (or globs, repeatable) instead of a split",
    )
    common.add_manual_dir(parser)
    parser.add_argument(
        "--litert",
        metavar="FILE",
        help="score this LiteRT export of the run (export --litert) instead of its checkpoint",
    )
    parser.add_argument(
        "--saved-model",
        metavar="DIR",
        help="score this SavedModel export of the run through its signatures instead of "
        "its checkpoint",
    )


def main(args) -> int:
    from lstm_textgen.errors import TextgenError
    from lstm_textgen.evaluation.run import evaluate_run

    if args.batch_size is not None and args.batch_size < 1:
        raise TextgenError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.seq_len is not None and args.seq_len < 1:
        raise TextgenError(f"--seq-len must be >= 1, got {args.seq_len}")

    passed = ("split", "checkpoint", "batch_size", "carry_state", "litert", "seq_len")
    result = evaluate_run(
        args.run,
        text_files=args.text_file,
        manual_dir=args.tfds_manual_dir,
        saved_model=args.saved_model,
        **{name: getattr(args, name) for name in passed},
    )
    what = "text files" if args.text_file else args.split
    what += f", windows of {args.seq_len}" if args.seq_len and not args.carry_state else ""
    what += ", state carried" if args.carry_state else ""
    print(
        f"{what}: {result.nats_per_char:.4f} nats/char = {result.bits_per_char:.4f} "
        f"bits/char over {result.num_chars:,} characters"
    )
    if result.unknown_chars:
        common.log(f"note: {result.unknown_chars} characters were outside the vocabulary")
    return 0
