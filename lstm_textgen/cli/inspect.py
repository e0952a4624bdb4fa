"""`lstm-textgen inspect`."""

from __future__ import annotations

from lstm_textgen.cli import common

NAME = "inspect"
HELP = "show what the gates do on a text (HTML and PNG)"
DESCRIPTION = (
    "Run a text through the model and write a self-contained HTML page "
    "(and a PNG beside it) colouring each character by chosen units' cell state and "
    "forget, input and output gates. Units whose cell state tracks being inside "
    "quotes, the position in the line or the line start are found and listed."
)


def add_cli_args(parser) -> None:
    common.add_model_source(parser)
    common.add_text_input(
        parser, "the text to run through the model", "read the text from a UTF-8 file"
    )
    parser.add_argument(
        "--span",
        metavar="START:STOP",
        help="the characters of the text to show, as a Python slice (e.g. 5000:8000); "
        "needed when the text is longer than the most one page shows",
    )
    parser.add_argument(
        "--units", metavar="LIST", help="comma-separated units to show (default: those found)"
    )
    parser.add_argument(
        "--layer", type=int, default=-1, help="LSTM layer, 0-based; -1 is the last (default: -1)"
    )
    parser.add_argument(
        "--out",
        default="inspect.html",
        metavar="FILE",
        help="HTML to write, its folder created if needed; the PNG goes beside it "
        "(default: %(default)s)",
    )


def main(args) -> int:
    from lstm_textgen.data.corpus import read_text_file
    from lstm_textgen.errors import TextgenError
    from lstm_textgen.reports.inspect_gates import inspect_run, parse_span

    try:
        units = [int(u) for u in args.units.split(",")] if args.units else None
    except ValueError:
        raise TextgenError(
            f"--units must be comma-separated integers, got {args.units!r}"
        ) from None
    span = parse_span(args.span) if args.span else None
    text = read_text_file(args.text_file) if args.text_file else args.text
    html_path, png_path, findings = inspect_run(
        args.run,
        text,
        args.out,
        units=units,
        layer=args.layer,
        checkpoint=args.checkpoint,
        span=span,
    )
    for finding in findings:
        print(f"unit {finding.unit}: {finding.feature} (r = {finding.correlation:+.2f})")
    print(html_path)
    print(png_path)
    return 0
