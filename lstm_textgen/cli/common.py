"""What several commands share: their common flags, defined once, and the progress log."""

from __future__ import annotations

import sys

CHECKPOINT_HELP = "which checkpoint of the run: best (validation) or last (default: best)"
MANUAL_DIR_HELP = (
    "folder holding the dataset's downloaded files, for offline machines "
    "(tiny_shakespeare: karpathy's input.txt); default $LSTM_TEXTGEN_TFDS_MANUAL_DIR"
)


def add_run(parser, required: bool = True, help: str = "training run directory") -> None:
    parser.add_argument("--run", required=required, metavar="DIR", help=help)


MODEL_SOURCE_HELP = (
    "the model: a training run directory, a SavedModel export, or a shipped model's name "
    "(default: the shipped model, shakespeare)"
)


def add_model_source(parser) -> None:
    """`--run` of a command that reads a trained model from anywhere `sources` finds one,
    and `--checkpoint`, which of a run's checkpoints."""
    parser.add_argument("--run", metavar="SOURCE", help=MODEL_SOURCE_HELP)
    add_checkpoint(parser)


def add_text_input(parser, text_help: str, file_help: str) -> None:
    """`--text STR` or `--text-file PATH`, one of them required: the text a command reads."""
    text = parser.add_mutually_exclusive_group(required=True)
    text.add_argument("--text", metavar="STR", help=text_help)
    text.add_argument("--text-file", metavar="PATH", help=file_help)


def add_checkpoint(parser) -> None:
    parser.add_argument(
        "--checkpoint", choices=["best", "last"], default="best", help=CHECKPOINT_HELP
    )


def add_manual_dir(parser) -> None:
    parser.add_argument("--tfds-manual-dir", metavar="DIR", help=MANUAL_DIR_HELP)


def source(args):
    """The model `Source` that `--run`, `--saved-model`, `--server` or `--litert` name
    (with `--checkpoint` and `--model-name`), parsed once here (`store.sources`)."""
    from lstm_textgen.store.sources import parse_source

    return parse_source(
        getattr(args, "checkpoint", "best"),
        getattr(args, "model_name", None),
        **{name: getattr(args, name, None) for name in ("run", "saved_model", "server", "litert")},
    )


def log(message: str) -> None:
    """A line for the user on stderr (stdout carries the command's result)."""
    print(message, file=sys.stderr, flush=True)
