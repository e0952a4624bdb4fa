"""The `lstm-textgen` command: parses argv and calls the library API.

Sub-commands: `train`, `generate`, `export`, `evaluate`, `plot`, `inspect`, `bench`. Bad
input ends with one line on stderr, `lstm-textgen: error: ...`, and exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import time

from lstm_textgen.bench import BENCHMARKS

PROG = "lstm-textgen"
LOG_LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"
DEBUG_ENV = "LSTM_TEXTGEN_DEBUG"


def _add_config_flags(groups: dict) -> None:
    """One flag per `ModelConfig` / `TrainConfig` field, from the field's metadata.

    Flags default to "not given" (argparse.SUPPRESS): the namespace holds only what the
    user typed, and `make_configs` lays it over the preset and the dataclass defaults.
    """
    from lstm_textgen.config import ModelConfig, TrainConfig, config_fields, flag_name

    defaults = {**dataclasses.asdict(ModelConfig()), **dataclasses.asdict(TrainConfig())}
    for name, (cls, f) in config_fields().items():
        group_name = f.metadata["group"] or ("model" if cls is ModelConfig else "optimisation")
        kind = f.type.replace(" | None", "")
        default = defaults[name]
        shown = (
            "" if default is None or default is False or default == [] else f" (default: {default})"
        )
        options = {"dest": name, "default": argparse.SUPPRESS, "help": f.metadata["help"] + shown}
        if kind == "bool":
            options["action"] = "store_true"
        elif kind == "list[str]":
            options.update(action="append", metavar="PATH")
        else:
            options["type"] = {"int": int, "float": float, "str": str}[kind]
            options["metavar"] = flag_name(name)[2:].upper().replace("-", "_")
            if f.metadata["choices"]:
                options["choices"] = f.metadata["choices"]
        groups[group_name].add_argument(flag_name(name), **options)


CHECKPOINT_HELP = "which checkpoint of the run: best (validation) or last (default: best)"
MANUAL_DIR_HELP = (
    "folder holding the dataset's downloaded files, for offline machines "
    "(tiny_shakespeare: karpathy's input.txt); default $LSTM_TEXTGEN_TFDS_MANUAL_DIR"
)


def build_parser() -> argparse.ArgumentParser:
    """The CLI's parser."""
    from lstm_textgen.config import PRESETS

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Character-level text generation with a gate-level LSTM.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    t = sub.add_parser(
        "train",
        help="train a model into a run directory",
        description="Train a character LSTM language model. Checkpoints (last and best "
        "validation) and config.json are written to --run; --resume continues from there.",
    )
    t.add_argument("--run", required=True, metavar="DIR", help="run directory to write")
    t.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --run from its last checkpoint with its saved config",
    )
    t.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="start from a documented configuration (see docs/training.md); flags given beside it "
        "override its values",
    )
    groups = {
        "corpus": t.add_argument_group("corpus"),
        "model": t.add_argument_group("model"),
        "optimisation": t.add_argument_group("optimisation"),
        "scaling out": t.add_argument_group("scaling out (see docs/scaling.md)"),
    }
    groups["corpus"].add_argument("--tfds-manual-dir", metavar="DIR", help=MANUAL_DIR_HELP)
    groups["optimisation"].add_argument(
        "--xla",
        choices=["auto", "on", "off"],
        default="auto",
        help="compile the train step with XLA: auto times a few steps with and without it "
        "and keeps the faster (runs of 100 steps or more; shorter ones run without) "
        "(default: %(default)s)",
    )
    groups["optimisation"].add_argument(
        "--no-jit", dest="xla", action="store_const", const="off", help=argparse.SUPPRESS
    )
    _add_config_flags(groups)
    d = groups["scaling out"]
    d.add_argument(
        "--strategy",
        choices=["default", "mirrored", "multi-worker"],
        default="default",
        help="default: one device; mirrored: every GPU of this machine (or --cpu-replicas "
        "logical CPUs); multi-worker: one process per machine, described by TF_CONFIG "
        "(default: %(default)s)",
    )
    d.add_argument(
        "--cpu-replicas",
        type=int,
        metavar="N",
        help="split the CPU into N logical devices for --strategy mirrored (for trying it "
        "out without GPUs; not faster)",
    )

    g = sub.add_parser(
        "generate",
        help="sample text from a trained run",
        description="Prime the LSTM with --prompt and sample up to --num-chars characters, "
        "carrying the state from step to step, from a run, an export, a TF Serving endpoint "
        "or a LiteRT file. The same request (prompt, settings, --seed, --stop) gives the "
        "same text from all four.",
    )
    source = g.add_mutually_exclusive_group(required=True)
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
    g.add_argument("--model-name", metavar="NAME", help="model name on the TF Serving server")
    g.add_argument("--checkpoint", choices=["best", "last"], default="best", help=CHECKPOINT_HELP)
    g.add_argument(
        "--prompt", default="", help="text to continue (default: start from the initial state)"
    )
    g.add_argument(
        "--num-chars", type=int, default=500, help="characters to generate (default: %(default)s)"
    )
    g.add_argument(
        "--temperature",
        type=float,
        default=1.0,
        help="0 is greedy; higher is more random (default: %(default)s)",
    )
    g.add_argument(
        "--top-k",
        type=int,
        default=0,
        metavar="K",
        help="sample among the K likeliest characters; 0 = all (default: %(default)s)",
    )
    g.add_argument(
        "--top-p",
        type=float,
        default=1.0,
        metavar="P",
        help="sample from the smallest set of characters with probability >= P; 1 = all "
        "(default: %(default)s)",
    )
    g.add_argument("--seed", type=int, help="random seed, for reproducible text (default: random)")
    g.add_argument(
        "--batch",
        type=int,
        default=1,
        metavar="N",
        help="number of samples to generate at once (default: %(default)s)",
    )
    g.add_argument(
        "--stop",
        action="append",
        metavar="STR",
        help="end a sample right before this string, which is left out (repeatable: up to "
        "4 strings of 1 to 16 characters); e.g. --stop $'\\n\\n'",
    )
    g.add_argument(
        "--num-items",
        type=int,
        metavar="N",
        help="print N new items, one per line, from a model trained with --items; each "
        "ends at the model's end-of-item marker or at --num-chars; --prompt begins each",
    )
    g.add_argument(
        "--show-finish-reason",
        action="store_true",
        help="print why each sample ended after it, tab-separated: [length], [stop] or [end]",
    )
    g.add_argument("--tfds-manual-dir", metavar="DIR", help=MANUAL_DIR_HELP)

    x = sub.add_parser(
        "export",
        help="export a run as a versioned SavedModel for TF Serving, or for LiteRT",
        description="Write --export-base/<version>/ (the next free version number unless "
        "--version is given) with the signatures serving_default, generate_rows, step "
        "and score, and a TF Serving warmup file. The version is written to a hidden "
        "temporary folder and renamed, so a watching server never sees half of it. "
        "Or write --litert FILE.tflite, a LiteRT model with the signatures step, prime "
        "and generate, its vocabulary and config embedded as metadata; written whole "
        "or not at all.",
    )
    x.add_argument("--run", required=True, metavar="DIR", help="training run directory")
    target = x.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--export-base",
        metavar="DIR",
        help="model folder, e.g. saved_models/shakespeare",
    )
    target.add_argument("--litert", metavar="FILE", help="LiteRT model to write (.tflite)")
    x.add_argument("--checkpoint", choices=["best", "last"], default="best", help=CHECKPOINT_HELP)
    x.add_argument("--version", type=int, help="version number (default: the next free one)")
    x.add_argument(
        "--quantize",
        choices=["dynamic"],
        help="with --litert: store the weights as int8 (dynamic-range quantization)",
    )

    pl = sub.add_parser(
        "plot",
        help="draw a run's loss curves as a PNG",
        description="Write a PNG of the train and validation loss at every checkpoint. "
        "TensorBoard logs of the same run are in RUN/logs (tensorboard --logdir RUN/logs).",
    )
    pl.add_argument("--run", required=True, metavar="DIR", help="training run directory")
    pl.add_argument("--out", metavar="FILE", help="PNG to write (default: RUN/loss.png)")

    ins = sub.add_parser(
        "inspect",
        help="show what the gates do on a text (HTML and PNG)",
        description="Run a text through the model and write a self-contained HTML page "
        "(and a PNG beside it) colouring each character by chosen units' cell state and "
        "forget, input and output gates. Units whose cell state tracks being inside "
        "quotes, the position in the line or the line start are found and listed.",
    )
    ins.add_argument("--run", required=True, metavar="DIR", help="training run directory")
    what = ins.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", help="the text to run through the model")
    what.add_argument("--text-file", metavar="PATH", help="read the text from a UTF-8 file")
    ins.add_argument(
        "--span",
        metavar="START:STOP",
        help="the characters of the text to show, as a Python slice (e.g. 5000:8000); "
        "needed when the text is longer than the most one page shows",
    )
    ins.add_argument(
        "--units", metavar="LIST", help="comma-separated units to show (default: those found)"
    )
    ins.add_argument(
        "--layer", type=int, default=-1, help="LSTM layer, 0-based; -1 is the last (default: -1)"
    )
    ins.add_argument(
        "--out",
        default="inspect.html",
        metavar="FILE",
        help="HTML to write, its folder created if needed; the PNG goes beside it "
        "(default: %(default)s)",
    )
    ins.add_argument("--checkpoint", choices=["best", "last"], default="best", help=CHECKPOINT_HELP)

    b = sub.add_parser(
        "bench",
        help="measure training or generation speed (benchmarks)",
        description="Benchmarks: `bench train` times GateLSTM against keras.layers.LSTM; "
        "`bench generate` times an export's in-graph generation against a Python loop; "
        "`bench serve` times K clients' requests to an export, separate and merged; "
        "`bench memory` reports peak memory of training on large text files. "
        "Pass --help after the name for their options.",
    )
    b.add_argument("which", choices=BENCHMARKS, help="which benchmark")
    b.add_argument("options", nargs=argparse.REMAINDER, help="options of that benchmark")

    e = sub.add_parser(
        "evaluate",
        help="report loss in nats/char and bits/char",
        description="Evaluate a run on a split of its corpus or on text files.",
    )
    e.add_argument("--run", required=True, metavar="DIR", help="training run directory")
    e.add_argument("--checkpoint", choices=["best", "last"], default="best", help=CHECKPOINT_HELP)
    e.add_argument(
        "--split",
        choices=["train", "validation", "test", "validation+test"],
        default="validation",
        help="split of the run's corpus; validation+test joins the two (default: %(default)s)",
    )
    e.add_argument(
        "--batch-size",
        type=int,
        help="windows (with --carry-state: streams) per batch (default: the run's)",
    )
    e.add_argument(
        "--seq-len",
        type=int,
        metavar="N",
        help="window length (with --carry-state: piece length) (default: the run's)",
    )
    e.add_argument(
        "--carry-state",
        action="store_true",
        help="read the text as contiguous streams, carrying the LSTM state across windows "
        "(default: each window starts from zero state, as in training)",
    )
    e.add_argument(
        "--text-file",
        action="append",
        default=[],
        metavar="PATH",
        help="evaluate on these UTF-8 files (or globs, repeatable) instead of a split",
    )
    e.add_argument("--tfds-manual-dir", metavar="DIR", help=MANUAL_DIR_HELP)
    e.add_argument(
        "--litert",
        metavar="FILE",
        help="score this LiteRT export of the run (export --litert) instead of its checkpoint",
    )
    return parser


def _start_tensorflow(init_devices: bool = True) -> None:
    from lstm_textgen.errors import quiet_stderr_fd

    with quiet_stderr_fd():
        import tensorflow as tf

        # Starting the devices here keeps their log lines quiet, but fixes the thread
        # pools, which the benchmarks still want to set.
        if init_devices:
            tf.config.list_logical_devices()
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)


class _WarningFormat(logging.Formatter):
    def __init__(self):
        super().__init__("warning: %(message)s")


def _show_library_warnings() -> None:
    """Print the library's warnings on stderr as `warning: ...` lines, once per process."""
    library_log = logging.getLogger("lstm_textgen")
    if not any(isinstance(h.formatter, _WarningFormat) for h in library_log.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_WarningFormat())
        library_log.addHandler(handler)
    library_log.setLevel(logging.WARNING)
    library_log.propagate = False


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _config_settings(args) -> dict:
    """The config fields the user gave on the command line (by field name)."""
    from lstm_textgen.config import config_fields

    return {name: getattr(args, name) for name in config_fields() if hasattr(args, name)}


def cmd_train(args) -> int:
    from lstm_textgen.config import bits, ignored_on_resume, make_configs
    from lstm_textgen.train import train

    started_wall, started_cpu = time.perf_counter(), time.process_time()
    settings = _config_settings(args)
    model_config, train_config = make_configs(args.preset, **settings)
    if args.resume:
        from lstm_textgen.rundir import load_run_config

        for warning in ignored_on_resume(load_run_config(args.run), settings):
            _log(f"warning: {warning}")
    else:
        model_config.validate()
        train_config.validate()
    strategy = None
    if args.strategy != "default" or args.cpu_replicas is not None:
        from lstm_textgen.distribute import make_strategy
        from lstm_textgen.errors import quiet_stderr_fd

        with quiet_stderr_fd():
            strategy = make_strategy(args.strategy, args.cpu_replicas)
    result = train(
        args.run,
        model_config,
        train_config,
        strategy=strategy,
        resume=args.resume,
        manual_dir=args.tfds_manual_dir,
        max_steps=settings.get("max_steps") if args.resume else None,
        epochs=settings.get("epochs") if args.resume else None,
        jit_compile={"auto": "auto", "on": True, "off": False}[args.xla],
        log=_log,
    )
    if result.best_val_loss is not None and result.chief:
        wall = time.perf_counter() - started_wall
        cpu = time.process_time() - started_cpu
        _log(
            f"done: step {result.step}, best validation {result.best_val_loss:.4f} "
            f"nats/char = {bits(result.best_val_loss):.4f} bits/char; model in {args.run} "
            f"({wall / 60:.1f} min, {cpu / 60:.1f} CPU-min)"
        )
    return 0


def cmd_generate(args) -> int:
    from lstm_textgen.backends import open_generator
    from lstm_textgen.errors import TextgenError
    from lstm_textgen.request import MAX_SEED, GenerationRequest

    if args.batch < 1:
        raise TextgenError(f"--batch must be >= 1, got {args.batch}")
    if args.num_items is not None:
        if args.num_items < 1:
            raise TextgenError(f"--num-items must be >= 1, got {args.num_items}")
        if args.batch != 1:
            raise TextgenError("give --num-items or --batch, not both")
    rows = args.num_items or args.batch
    if args.seed is not None and not 0 <= args.seed <= MAX_SEED - (rows - 1):
        raise TextgenError(
            f"--seed must be 0 to {MAX_SEED:,} less the rows after the first, got {args.seed}"
        )
    # Row r gets the seed --seed + r: the rows differ, and row 0 is the text that
    # --batch 1 gives, from every backend alike.
    request = GenerationRequest(
        [args.prompt] * rows,
        num_chars=args.num_chars,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
        stop=args.stop or [],
    )
    request.rows()  # a bad request fails before a model is loaded
    generator = open_generator(
        run=args.run,
        saved_model=args.saved_model,
        server=args.server,
        litert=args.litert,
        checkpoint=args.checkpoint,
        model_name=args.model_name,
    )
    if args.num_items is not None and generator.vocab is not None and not generator.has_items:
        raise TextgenError(
            "--num-items needs a model trained on items; this one was trained on plain "
            "text (train with --items lines or --items paragraphs)"
        )
    completions = generator.complete(request)
    # Items of several lines (paragraphs) are told apart by a blank line.
    multiline = args.num_items is not None and any("\n" in c.text for c in completions)
    for k, completion in enumerate(completions):
        if args.num_items is None and rows > 1:
            print(f"----- sample {k + 1} -----")
        elif multiline and k:
            print()
        reason = f"\t[{completion.finish_reason}]" if args.show_finish_reason else ""
        print(args.prompt + completion.text + reason)
    if args.num_items is not None and args.run:
        from lstm_textgen.backends import training_items

        known = training_items(args.run, args.tfds_manual_dir)
        copies = sum(args.prompt + c.text in known for c in completions)
        _log(f"{copies} of {len(completions)} items appear verbatim among the training items")
    return 0


def cmd_export(args) -> int:
    from lstm_textgen.errors import TextgenError
    from lstm_textgen.export import export_for_serving, export_litert

    if args.litert:
        if args.version is not None:
            raise TextgenError("--version numbers SavedModel exports; leave it out with --litert")
        path = export_litert(args.run, args.litert, args.checkpoint, args.quantize)
        print(f"{path} ({os.path.getsize(path):,} bytes)")
        return 0
    if args.quantize:
        raise TextgenError("--quantize applies to --litert exports only")
    path = export_for_serving(
        args.run, args.export_base, checkpoint=args.checkpoint, version=args.version
    )
    print(path)
    return 0


def cmd_plot(args) -> int:
    from lstm_textgen.plot import plot_run

    print(plot_run(args.run, args.out))
    return 0


def cmd_inspect(args) -> int:
    from lstm_textgen.data import read_text_file
    from lstm_textgen.errors import TextgenError
    from lstm_textgen.inspect_gates import inspect_run, parse_span

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


def cmd_bench(args) -> int:
    import importlib

    importlib.import_module(f"lstm_textgen.bench.{args.which}").main(args.options)
    return 0


def cmd_evaluate(args) -> int:
    from lstm_textgen.errors import TextgenError
    from lstm_textgen.evaluate import evaluate_run

    if args.batch_size is not None and args.batch_size < 1:
        raise TextgenError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.seq_len is not None and args.seq_len < 1:
        raise TextgenError(f"--seq-len must be >= 1, got {args.seq_len}")

    result = evaluate_run(
        args.run,
        split=args.split,
        text_files=args.text_file,
        manual_dir=args.tfds_manual_dir,
        checkpoint=args.checkpoint,
        batch_size=args.batch_size,
        carry_state=args.carry_state,
        litert=args.litert,
        seq_len=args.seq_len,
    )
    what = "text files" if args.text_file else args.split
    what += f", windows of {args.seq_len}" if args.seq_len and not args.carry_state else ""
    what += ", state carried" if args.carry_state else ""
    print(
        f"{what}: {result.nats_per_char:.4f} nats/char = {result.bits_per_char:.4f} "
        f"bits/char over {result.num_chars:,} characters"
    )
    if result.unknown_chars:
        _log(f"note: {result.unknown_chars} characters were outside the vocabulary")
    return 0


COMMANDS = {
    "train": cmd_train,
    "generate": cmd_generate,
    "export": cmd_export,
    "evaluate": cmd_evaluate,
    "plot": cmd_plot,
    "inspect": cmd_inspect,
    "bench": cmd_bench,
}


def _needs_tensorflow(args) -> bool:
    """Whether the command runs TensorFlow (plot, a TF Serving client and LiteRT do not)."""
    return not (
        args.command == "plot" or (args.command == "generate" and (args.server or args.litert))
    )


def main(argv=None) -> int:
    """Run the CLI with `argv` (default: sys.argv[1:]); returns the exit status."""
    args = build_parser().parse_args(argv)
    _show_library_warnings()
    if _needs_tensorflow(args):
        # The benchmarks set thread pools and a distribution strategy sets up devices
        # and collective ops: both must come before TensorFlow starts its devices.
        distributed = args.command == "train" and (
            args.strategy != "default" or args.cpu_replicas is not None
        )
        _start_tensorflow(init_devices=args.command != "bench" and not distributed)
    from lstm_textgen.errors import TextgenError, first_line

    try:
        return COMMANDS[args.command](args)
    except TextgenError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        where = f": {e.filename}" if e.filename else ""
        print(f"{PROG}: error: {e.strerror or e}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if os.environ.get(DEBUG_ENV):
            raise
        print(
            f"{PROG}: error: {type(e).__name__}: {first_line(e)} "
            f"(set {DEBUG_ENV}=1 for the full traceback)",
            file=sys.stderr,
        )
        return 1


def console_main() -> None:
    """Entry point of the `lstm-textgen` script."""
    # TensorFlow reads its C++ log level once, from the environment it started with, so
    # the quiet default has to be in place before the process starts: re-exec once.
    if LOG_LEVEL_ENV not in os.environ:
        os.environ[LOG_LEVEL_ENV] = "3"
        argv = [sys.executable, "-m", "lstm_textgen", *sys.argv[1:]]
        try:
            os.execv(sys.executable, argv)
        except OSError:
            pass
    sys.exit(main())
