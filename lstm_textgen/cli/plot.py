"""`lstm-textgen plot`."""

from __future__ import annotations

from lstm_textgen.cli import common

NAME = "plot"
HELP = "draw a run's loss curves as a PNG"
DESCRIPTION = (
    "Write a PNG of the train and validation loss at every checkpoint. "
    "TensorBoard logs of the same run are in RUN/logs (tensorboard --logdir RUN/logs)."
)


def tensorflow_start(args) -> None:
    return None  # matplotlib only


def add_cli_args(parser) -> None:
    common.add_run(parser)
    parser.add_argument("--out", metavar="FILE", help="PNG to write (default: RUN/loss.png)")


def main(args) -> int:
    from lstm_textgen.reports.plot import plot_run

    print(plot_run(args.run, args.out))
    return 0
