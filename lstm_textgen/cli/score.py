"""`lstm-textgen score`."""

from __future__ import annotations

from lstm_textgen.cli import common

NAME = "score"
HELP = "print the log-probability of every character of a text, as JSON lines"
DESCRIPTION = (
    "Read a text with the model, from its initial state, and print one JSON line per "
    'character: {"char": ..., "logprob": ...} (nats; null for a character the model never '
    "saw, which is skipped). The total, nats/char and bits/char go to stderr. The model is "
    "a run, an export or the shipped model (--run), a LiteRT file (--litert), or an export run "
    "by its signatures, as a server runs it (--saved-model)."
)


PROGRESS_EVERY = 256  # characters between two looks at the clock


def tensorflow_start(args) -> str | None:
    return None if args.litert else "devices"


def add_cli_args(parser) -> None:
    common.add_model_source(parser)
    parser.add_argument(
        "--litert", metavar="FILE", help="score with this LiteRT file instead (no TensorFlow)"
    )
    parser.add_argument(
        "--saved-model",
        metavar="DIR",
        help="score with this SavedModel export's signatures instead of a Keras model",
    )
    common.add_text_input(parser, "the text to score", "a UTF-8 file to score ('-' reads stdin)")


def main(args) -> int:
    import json

    from lstm_textgen.config import bits
    from lstm_textgen.errors import TextgenError
    from lstm_textgen.generation.open_model import open_scorer
    from lstm_textgen.generation.request import without_surrogates
    from lstm_textgen.generation.scoring import score_text
    from lstm_textgen.progress import Progress

    text = _read_text(args)
    scorer, vocab = open_scorer(args.run, args.checkpoint, args.litert, args.saved_model)
    total, scored, skipped = 0.0, 0, 0
    progress = Progress(len(text), "scored")
    for k, item in enumerate(score_text(scorer, vocab, text)):
        if k % PROGRESS_EVERY == 0:
            progress.update(k)
        # A byte that is not UTF-8 shows as U+FFFD: the text to print must be UTF-8.
        char = without_surrogates(item.char) or "\ufffd"
        print(json.dumps({"char": char, "logprob": item.logprob}, ensure_ascii=False))
        if item.logprob is None:
            skipped += 1
        else:
            total, scored = total + item.logprob, scored + 1
    progress.close()
    if not scored:
        raise TextgenError(
            f"none of the text's {len(text):,} characters is in the model's vocabulary; "
            "there is nothing to score"
        )
    per_char = -total / scored
    common.log(
        f"{scored} characters: {total:.4f} nats in all, {per_char:.4f} nats/char, "
        f"{bits(per_char):.4f} bits/char"
        + (f"; {skipped} the model never saw were skipped" if skipped else "")
    )
    return 0


def _read_text(args) -> str:
    """The text to score, as given: a file's bytes that are not UTF-8 come as lone
    surrogates (skipped as characters the model never saw, with a warning), and its line
    ends stay as they are (a CRLF file's carriage returns are scored, or skipped)."""
    import logging
    import sys

    from lstm_textgen.errors import TextgenError
    from lstm_textgen.generation.request import without_surrogates

    if args.text is not None:
        text, name = args.text, "--text"
    elif args.text_file == "-":
        text, name = sys.stdin.read(), "standard input"
    else:
        name = args.text_file
        try:
            with open(args.text_file, encoding="utf-8", errors="surrogateescape", newline="") as f:
                text = f.read()
        except OSError as e:
            raise TextgenError(f"cannot read {args.text_file}: {e.strerror}") from None
    if not text:
        raise TextgenError("the text to score is empty")
    undecodable = len(text) - len(without_surrogates(text))
    if undecodable:
        logging.getLogger("lstm_textgen").warning(
            "%s byte(s) of %s are not UTF-8; they are skipped as characters the model never saw",
            undecodable,
            name,
        )
    return text
