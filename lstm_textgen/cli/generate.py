"""`lstm-textgen generate`."""

from __future__ import annotations

from lstm_textgen.cli import common

NAME = "generate"
HELP = "sample text from the shipped model, a run, an export, a server or a LiteRT file"
DESCRIPTION = (
    "Prime the LSTM with --prompt and sample up to --num-chars characters, "
    "carrying the state from step to step, from a run, an export, a TF Serving endpoint "
    "or a LiteRT file; with none of them, from the shipped model (saved_models/shakespeare). "
    "The same request (prompt, settings, --seed, --stop) gives the same text from all four."
)


STREAM_CHUNK_CHARS = 16  # characters per continued request while streaming
LEAST_LIKELY_SHOWN = 5


def _uses_shipped_model(args) -> bool:
    return not (args.run or args.saved_model or args.server or args.litert)


def tensorflow_start(args) -> str | None:
    # A TF Serving client and a LiteRT runner need no TensorFlow; nor does the shipped
    # model where LiteRT's interpreter is installed.
    if args.server or args.litert:
        return None
    if _uses_shipped_model(args):
        from lstm_textgen.store.shipped import litert_installed

        return None if litert_installed() else "devices"
    return "devices"


def add_cli_args(parser) -> None:
    _add_source_flags(parser)
    parser.add_argument(
        "--prompt", default="", help="text to continue (default: start from the initial state)"
    )
    add_setting_flags(parser)
    _add_output_flags(parser)
    _add_state_flags(parser)
    common.add_manual_dir(parser)


def _add_source_flags(parser) -> None:
    from lstm_textgen.generation.settings import SERVER_DEADLINE

    source = parser.add_mutually_exclusive_group()
    source.add_argument("--run", metavar="DIR", help="training run directory")
    source.add_argument(
        "--saved-model",
        metavar="DIR",
        help="an export (saved_models/NAME, its latest version, or one version folder)",
    )
    source.add_argument(
        "--server",
        metavar="URL",
        help="a TF Serving REST endpoint, e.g. http://localhost:8501 (with --model-name)",
    )
    source.add_argument(
        "--litert",
        metavar="FILE",
        help="a LiteRT model (export --litert), run by LiteRT's interpreter without "
        "TensorFlow (needs ai-edge-litert)",
    )
    parser.add_argument("--model-name", metavar="NAME", help="model name on the TF Serving server")
    parser.add_argument(
        "--deadline",
        type=float,
        default=SERVER_DEADLINE,
        metavar="SECONDS",
        help="with --server: the most a request may take, the whole reply included "
        f"(default: {SERVER_DEADLINE:g})",
    )
    common.add_checkpoint(parser)


def _add_output_flags(parser) -> None:
    parser.add_argument(
        "--batch",
        type=int,
        default=1,
        metavar="N",
        help="number of samples to generate at once (default: %(default)s)",
    )
    parser.add_argument(
        "--num-items",
        type=int,
        metavar="N",
        help="print N new items, one per line, from a model trained with --items; each "
        "ends at the model's end-of-item marker or at --num-chars; --prompt begins each",
    )
    switches = {
        "--stream": f"print the text as it is generated, {STREAM_CHUNK_CHARS} characters at "
        "a time (the same text as without; one sample: not with --batch or --num-items)",
        "--show-logprobs": "after each sample, print its log-probability (under the "
        "distribution it was sampled from and under the model) and its least likely characters",
    }
    for flag, help_text in switches.items():
        parser.add_argument(flag, action="store_true", help=help_text)


def _add_state_flags(parser) -> None:
    parser.add_argument(
        "--save-state",
        metavar="FILE",
        help="write where each sample ended (its state, random stream and seed) to FILE, "
        "for --continue",
    )
    parser.add_argument(
        "--continue",
        dest="continue_from",
        metavar="FILE",
        help="go on from the state --save-state wrote, with the same model: with the same "
        "settings, the text is what one longer request would have given (--prompt is read on "
        "from the state; the seeds are the file's unless --seed is given)",
    )
    parser.add_argument(
        "--show-finish-reason",
        action="store_true",
        help="print why each sample ended after it, tab-separated: [length], [stop] or [end]",
    )


def add_setting_flags(parser) -> None:
    """One flag per generation setting of `settings.SETTINGS`; `--stop` is repeatable."""
    from lstm_textgen.generation.settings import SETTINGS

    for spec in SETTINGS.values():
        if not spec.is_number:
            parser.add_argument(spec.flag, action="append", metavar=spec.metavar, help=spec.help)
            continue
        default = "" if spec.default is None else " (default: %(default)s)"
        parser.add_argument(
            spec.flag,
            type=int if spec.is_integer else float,
            default=spec.default,
            metavar=spec.metavar,
            help=spec.help + default,
        )


def main(args) -> int:
    request = _request(args)
    generator = _open_generator(args)
    if args.stream:
        completions = [_print_stream(generator, request, args)]
    else:
        completions = generator.complete(request)
        _print_completions(completions, args)
    if args.save_state:
        from lstm_textgen.generation.state_file import save_states

        save_states(args.save_state, completions, request.checked().column("seed"))
    if args.num_items is not None and args.run:
        from lstm_textgen.store.loading import training_items

        known = training_items(args.run, args.tfds_manual_dir)
        copies = sum(args.prompt + c.text in known for c in completions)
        common.log(f"{copies} of {len(completions)} items appear verbatim among the training items")
    return 0


def _request(args):
    """The `GenerationRequest` the flags ask for, checked before a model is loaded."""
    from lstm_textgen.errors import TextgenError
    from lstm_textgen.generation.request import GenerationRequest
    from lstm_textgen.generation.settings import SETTINGS

    if args.batch < 1:
        raise TextgenError(f"--batch must be >= 1, got {args.batch}")
    if args.num_items is not None:
        if args.num_items < 1:
            raise TextgenError(f"--num-items must be >= 1, got {args.num_items}")
        if args.batch != 1:
            raise TextgenError("give --num-items or --batch, not both")
    rows = args.num_items or args.batch
    if args.stream and rows > 1:
        raise TextgenError(
            "--stream prints one sample as it is generated; leave out --batch and --num-items"
        )
    # Row r gets the seed --seed + r: the rows differ, and row 0 is the text that
    # --batch 1 gives, from every backend alike.
    settings = {name: getattr(args, name) for name in SETTINGS}
    settings["stop"] = args.stop or []
    states = None
    if args.continue_from:
        states, rows, seeds = _continued(args)
        if args.seed is None:
            settings["seed"] = seeds
    request = GenerationRequest([args.prompt] * rows, **settings, state=states)
    request.checked()
    return request


def _open_generator(args):
    """The generator of the source the flags name, checked against what they ask of it."""
    from lstm_textgen.errors import TextgenError
    from lstm_textgen.generation.open_model import generator_for

    if args.model_name and not args.server:
        raise TextgenError("--model-name names a model on a TF Serving server; give --server too")
    generator = generator_for(common.source(args), args.deadline)
    if _uses_shipped_model(args):
        common.log(
            f"generating from the shipped model ({generator.source}: {generator.path}); "
            "--run, --saved-model, --server or --litert choose another"
        )
    if args.num_items is not None and generator.vocab is not None and not generator.has_items:
        raise TextgenError(
            "--num-items needs a model trained on items; this one was trained on plain "
            "text (train with --items lines or --items paragraphs)"
        )
    if args.show_logprobs and not generator.can_continue:
        raise TextgenError(
            f"{generator.source} gives no log-probabilities (an export from an earlier "
            "lstm-textgen); export the run again"
        )
    return generator


def _continued(args):
    """`(states, rows, seeds)` of the file --continue names, checked against the flags."""
    from lstm_textgen.errors import TextgenError
    from lstm_textgen.generation.state_file import load_states

    if args.num_items is not None:
        raise TextgenError("--num-items starts new items; leave it out with --continue")
    states, seeds = load_states(args.continue_from)
    if args.batch not in (1, len(states)):
        raise TextgenError(
            f"{args.continue_from} holds {len(states)} rows, and --batch asks for "
            f"{args.batch}; leave --batch out"
        )
    return states, len(states), seeds


def _reason(completion, args) -> str:
    return f"\t[{completion.finish_reason}]" if args.show_finish_reason else ""


def _print_stream(generator, request, args):
    """The one sample of `request`, printed piece by piece as it comes; its Completion."""
    stream = generator.stream(request, chunk_chars=STREAM_CHUNK_CHARS)
    print(args.prompt, end="", flush=True)
    for piece in stream:
        print(piece, end="", flush=True)
    print(_reason(stream.completion, args))
    if args.show_logprobs:
        print(logprob_report(stream.completion))
    return stream.completion


def _print_completions(completions, args) -> None:
    rows = len(completions)
    # Items of several lines (paragraphs) are told apart by a blank line.
    multiline = args.num_items is not None and any("\n" in c.text for c in completions)
    for k, completion in enumerate(completions):
        if args.num_items is None and rows > 1:
            print(f"----- sample {k + 1} -----")
        elif multiline and k:
            print()
        print(args.prompt + completion.text + _reason(completion, args))
        if args.show_logprobs:
            print(logprob_report(completion))


def logprob_report(completion) -> str:
    """One line: the sample's log-probabilities and its least likely characters."""
    from lstm_textgen.config import bits
    from lstm_textgen.errors import TextgenError

    if len(completion.model_logprobs) != len(completion.text):
        raise TextgenError(
            "this model gives no log-probabilities (an export from an earlier "
            "lstm-textgen); export the run again"
        )
    if not completion.text:
        return "[logprob: no characters]"
    count = len(completion.text)
    per_char = -completion.model_logprob_sum / count
    least = sorted(range(count), key=lambda i: completion.model_logprobs[i])[:LEAST_LIKELY_SHOWN]
    shown = ", ".join(
        f"{completion.text[i]!r} at {i} ({completion.model_logprobs[i]:.2f})" for i in least
    )
    return (
        f"[logprob: {completion.model_logprob_sum:.2f} nats under the model "
        f"({bits(per_char):.3f} bits/char), {completion.logprob_sum:.2f} as sampled; "
        f"least likely: {shown}]"
    )
