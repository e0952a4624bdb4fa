"""The `lstm-textgen` command: parses argv and calls the library API.

Sub-commands: `train`, `generate`, `export`, `evaluate`, `plot`, `inspect`, `bench`. Bad input ends with one line on stderr,
`lstm-textgen: error: ...`, and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import random
import sys
import time

PROG = "lstm-textgen"
LOG_LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"
DEBUG_ENV = "LSTM_TEXTGEN_DEBUG"


def _add_corpus_args(p: argparse.ArgumentParser, training: bool) -> None:
    g = p.add_argument_group("corpus")
    if training:
        g.add_argument(
            "--tfds",
            dest="tfds_name",
            default="tiny_shakespeare",
            metavar="NAME",
            help="tensorflow-datasets text dataset to train on (default: %(default)s)",
        )
    g.add_argument(
        "--text-file",
        action="append",
        default=[],
        metavar="PATH",
        help="UTF-8 text file or glob to use instead of the tfds corpus (repeatable)",
    )
    g.add_argument(
        "--tfds-manual-dir",
        metavar="DIR",
        help="folder holding the dataset's downloaded files, for offline machines "
        "(tiny_shakespeare: karpathy's input.txt); default $LSTM_TEXTGEN_TFDS_MANUAL_DIR",
    )


# Config fields whose `train` flag has another argparse dest.
FLAG_DESTS = {"num_layers": "layers", "text_files": "text_file"}


def preset_defaults(name: str | None) -> dict:
    """The `train` flags' defaults under preset `name` (by argparse dest)."""
    if name is None:
        return {}
    from lstm_textgen.config import PRESETS, preset_configs

    preset_configs(name)  # a clear error for an unknown name
    values = {**PRESETS[name]["model"], **PRESETS[name]["train"]}
    return {FLAG_DESTS.get(field, field): value for field, value in values.items()}


def build_parser(preset: str | None = None) -> argparse.ArgumentParser:
    """The CLI's parser; `preset` makes that preset's values the `train` defaults."""
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
        help="start from a documented configuration (see README); flags given beside it "
        "override its values",
    )
    _add_corpus_args(t, training=True)
    m = t.add_argument_group("model")
    m.add_argument("--units", type=int, default=256, help="LSTM units per layer (default: %(default)s)")
    m.add_argument("--layers", type=int, default=2, help="stacked LSTM layers (default: %(default)s)")
    m.add_argument("--embedding-dim", type=int, default=64, help="character embedding width (default: %(default)s)")
    m.add_argument("--dropout", type=float, default=0.0, help="dropout after each LSTM layer (default: %(default)s)")
    m.add_argument(
        "--implementation",
        choices=["gates", "keras"],
        default="gates",
        help="gates: our explicit gate loop; keras: keras.layers.LSTM (cuDNN on a GPU) "
        "over the same weights (default: %(default)s)",
    )
    o = t.add_argument_group("optimisation")
    o.add_argument("--seq-len", type=int, default=100, help="characters per training window (default: %(default)s)")
    o.add_argument("--batch-size", type=int, default=64, help="windows per batch (default: %(default)s)")
    o.add_argument("--learning-rate", type=float, default=2e-3, help="Adam learning rate (default: %(default)s)")
    o.add_argument(
        "--lr-schedule",
        choices=["constant", "cosine"],
        default="constant",
        help="constant, or cosine: linear warm-up, then decay to 10%% of the rate at the "
        "last step (default: %(default)s)",
    )
    o.add_argument("--warmup-steps", type=int, default=0, metavar="N", help="warm-up steps of the cosine schedule (default: %(default)s)")
    o.add_argument("--clip-norm", type=float, default=1.0, help="global gradient-norm clip (default: %(default)s)")
    o.add_argument("--epochs", type=int, help="passes over the training text (default: 1 unless --max-steps)")
    o.add_argument("--max-steps", type=int, help="train for this many steps in all")
    o.add_argument(
        "--checkpoint-every",
        type=int,
        default=200,
        metavar="N",
        help="validate and checkpoint every N steps, and at the end (default: %(default)s)",
    )
    o.add_argument("--eval-batches", type=int, metavar="N", help="validate on the first N batches only (default: all)")
    o.add_argument("--seed", type=int, default=1337, help="seed for initialisation and shuffling (default: %(default)s)")
    o.add_argument(
        "--no-jit",
        dest="jit_compile",
        action="store_false",
        help="do not compile the train step with XLA",
    )
    d = t.add_argument_group("scaling out (see README, Scaling out)")
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
    d.add_argument(
        "--mixed-precision",
        action="store_true",
        help="compute in float16 on a GPU (bfloat16 on a CPU), keeping variables, logits, "
        "loss and the gate loop of the gates implementation in float32",
    )
    t.set_defaults(**preset_defaults(preset))

    g = sub.add_parser(
        "generate",
        help="sample text from a trained run",
        description="Prime the LSTM with --prompt and sample --num-chars characters, "
        "carrying the state from step to step. The same --seed gives the same text.",
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
    g.add_argument("--model-name", metavar="NAME", help="model name on the TF Serving server")
    g.add_argument("--checkpoint", choices=["best", "last"], default="best", help="which checkpoint of --run (default: %(default)s)")
    g.add_argument("--prompt", default="", help="text to continue (default: start from the initial state)")
    g.add_argument("--num-chars", type=int, default=500, help="characters to generate (default: %(default)s)")
    g.add_argument("--temperature", type=float, default=1.0, help="0 is greedy; higher is more random (default: %(default)s)")
    g.add_argument("--top-k", type=int, default=0, metavar="K", help="sample among the K likeliest characters; 0 = all (default: %(default)s)")
    g.add_argument("--top-p", type=float, default=1.0, metavar="P", help="sample from the smallest set of characters with probability >= P; 1 = all (default: %(default)s)")
    g.add_argument("--seed", type=int, help="random seed, for reproducible text (default: random)")
    g.add_argument("--batch", type=int, default=1, metavar="N", help="number of samples to generate at once (default: %(default)s)")

    x = sub.add_parser(
        "export",
        help="export a run as a versioned SavedModel for TF Serving",
        description="Write --export-base/<version>/ (the next free version number unless "
        "--version is given) with the signatures serving_default, generate_rows, step "
        "and score, and a TF Serving warmup file. The version is written to a hidden "
        "temporary folder and renamed, so a watching server never sees half of it.",
    )
    x.add_argument("--run", required=True, metavar="DIR", help="training run directory")
    x.add_argument("--export-base", required=True, metavar="DIR", help="model folder, e.g. saved_models/shakespeare")
    x.add_argument("--checkpoint", choices=["best", "last"], default="best", help="which checkpoint (default: %(default)s)")
    x.add_argument("--version", type=int, help="version number (default: the next free one)")

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
    ins.add_argument("--units", metavar="LIST", help="comma-separated units to show (default: the tracking units found)")
    ins.add_argument("--layer", type=int, default=-1, help="LSTM layer, 0-based; -1 is the last (default: %(default)s)")
    ins.add_argument("--out", default="inspect.html", metavar="FILE", help="HTML to write; the PNG goes beside it (default: %(default)s)")
    ins.add_argument("--checkpoint", choices=["best", "last"], default="best", help="which checkpoint (default: %(default)s)")

    b = sub.add_parser(
        "bench",
        help="measure training or generation speed (benchmarks)",
        description="Benchmarks: `bench train` times GateLSTM against keras.layers.LSTM; "
        "`bench generate` times an export's in-graph generation against a Python loop; "
        "`bench memory` reports peak memory of training on large text files. "
        "Pass --help after the name for their options.",
    )
    b.add_argument("which", choices=["train", "generate", "memory"], help="which benchmark")
    b.add_argument("options", nargs=argparse.REMAINDER, help="options of that benchmark")

    e = sub.add_parser(
        "evaluate",
        help="report loss in nats/char and bits/char",
        description="Evaluate a run on a split of its corpus or on text files.",
    )
    e.add_argument("--run", required=True, metavar="DIR", help="training run directory")
    e.add_argument("--checkpoint", choices=["best", "last"], default="best", help="which checkpoint (default: %(default)s)")
    e.add_argument(
        "--split",
        choices=["train", "validation", "test", "validation+test"],
        default="validation",
        help="split of the run's corpus; validation+test joins the two (default: %(default)s)",
    )
    e.add_argument("--batch-size", type=int, help="windows (with --carry-state: streams) per batch (default: the run's)")
    e.add_argument(
        "--carry-state",
        action="store_true",
        help="read the text as contiguous streams, carrying the LSTM state across windows "
        "(default: each window starts from zero state, as in training)",
    )
    _add_corpus_args(e, training=False)
    return parser


@contextlib.contextmanager
def _quiet_stderr_fd():
    """Silence C++ log lines written straight to fd 2 while TensorFlow starts up."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            sys.stderr.flush()
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _start_tensorflow(init_devices: bool = True) -> None:
    with _quiet_stderr_fd():
        import tensorflow as tf

        # Starting the devices here keeps their log lines quiet, but fixes the thread
        # pools, which the benchmarks still want to set.
        if init_devices:
            tf.config.list_logical_devices()
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)
    import tensorflow_datasets as tfds

    tfds.disable_progress_bar()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("warning: %(message)s"))
    library_log = logging.getLogger("lstm_textgen")
    library_log.addHandler(handler)
    library_log.setLevel(logging.WARNING)
    library_log.propagate = False


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _warn_ignored_on_resume(args, model_config, train_config) -> None:
    """--resume uses the run's saved config: say which given flags it overrides."""
    from lstm_textgen.config import load_run_config

    saved_model, saved_train = load_run_config(args.run)
    defaults = vars(build_parser(args.preset).parse_args(["train", "--run", args.run]))
    for config, saved in ((model_config, saved_model), (train_config, saved_train)):
        for name, value in vars(config).items():
            if name in ("vocab_size", "max_steps", "epochs"):
                continue
            dest = FLAG_DESTS.get(name, name)
            given = value != defaults[dest] and value != []
            if given and value != getattr(saved, name):
                flag = "tfds" if dest == "tfds_name" else dest.replace("_", "-")
                _log(
                    f"warning: --{flag} is ignored with --resume "
                    f"(the run keeps {getattr(saved, name)!r})"
                )


def cmd_train(args) -> int:
    from lstm_textgen.config import ModelConfig, TrainConfig
    from lstm_textgen.train import train

    if args.preset and args.epochs is not None:
        if args.max_steps == preset_defaults(args.preset).get("max_steps"):
            args.max_steps = None  # --epochs replaces the preset's length
    started_wall, started_cpu = time.perf_counter(), time.process_time()

    model_config = ModelConfig(
        embedding_dim=args.embedding_dim,
        units=args.units,
        num_layers=args.layers,
        dropout=args.dropout,
        implementation=args.implementation,
    )
    train_config = TrainConfig(
        tfds_name=args.tfds_name,
        text_files=list(args.text_file),
        seq_len=args.seq_len,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        lr_schedule=args.lr_schedule,
        warmup_steps=args.warmup_steps,
        clip_norm=args.clip_norm,
        epochs=args.epochs,
        max_steps=args.max_steps,
        checkpoint_every=args.checkpoint_every,
        eval_batches=args.eval_batches,
        seed=args.seed,
        mixed_precision=args.mixed_precision,
    )
    if args.resume:
        _warn_ignored_on_resume(args, model_config, train_config)
    else:
        model_config.validate()
        train_config.validate()
    strategy = None
    if args.strategy != "default" or args.cpu_replicas is not None:
        from lstm_textgen.distribute import make_strategy

        with _quiet_stderr_fd():
            strategy = make_strategy(args.strategy, args.cpu_replicas)
    result = train(
        args.run,
        model_config,
        train_config,
        strategy=strategy,
        resume=args.resume,
        manual_dir=args.tfds_manual_dir,
        max_steps=args.max_steps if args.resume else None,
        epochs=args.epochs if args.resume else None,
        jit_compile=args.jit_compile,
        log=_log,
    )
    if result.best_val_loss is not None and result.chief:
        from lstm_textgen.train import bits

        wall = time.perf_counter() - started_wall
        cpu = time.process_time() - started_cpu
        _log(
            f"done: step {result.step}, best validation {result.best_val_loss:.4f} "
            f"nats/char = {bits(result.best_val_loss):.4f} bits/char; model in {args.run} "
            f"({wall / 60:.1f} min, {cpu / 60:.1f} CPU-min)"
        )
    return 0


def _warn_unknown(vocab, prompt: str) -> None:
    unknown = vocab.unknown_characters(prompt) if vocab is not None else []
    if unknown:
        _log(
            f"warning: the model never saw {''.join(unknown)!r} in training; "
            "those prompt characters are skipped"
        )


def cmd_generate(args) -> int:
    from lstm_textgen.errors import TextgenError
    from lstm_textgen.samplers import check_sampling_args

    if args.batch < 1:
        raise TextgenError(f"--batch must be >= 1, got {args.batch}")
    if args.num_chars < 0:
        raise TextgenError(f"--num-chars must be >= 0, got {args.num_chars}")
    if args.server and not args.model_name:
        raise TextgenError("--server needs --model-name, the model's name on the server")
    if args.server and not args.server.startswith(("http://", "https://")):
        raise TextgenError(f"--server must be an http:// or https:// URL, got {args.server!r}")
    if args.seed is not None and not 0 <= args.seed < 2**63:
        raise TextgenError(f"--seed must be in [0, 2**63), got {args.seed}")
    if not args.run:
        from lstm_textgen.export import MAX_NUM_CHARS

        if args.num_chars > MAX_NUM_CHARS:
            raise TextgenError(
                f"--num-chars {args.num_chars} is more than an export generates per "
                f"request ({MAX_NUM_CHARS:,}); ask for fewer"
            )
    check_sampling_args(args.temperature, args.top_k, args.top_p)
    prompts = [args.prompt] * args.batch
    settings = dict(
        num_chars=args.num_chars,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed if args.seed is not None else random.randint(0, 2**31 - 1),
    )
    if args.run:
        from lstm_textgen.generate import TextGenerator
        from lstm_textgen.train import load_trained_model

        model, vocab = load_trained_model(args.run, args.checkpoint)
        _warn_unknown(vocab, args.prompt)
        texts = TextGenerator(model, vocab).generate(prompts, **settings)
    elif args.saved_model:
        from lstm_textgen.export import export_vocabulary, generate_from_saved_model

        _warn_unknown(export_vocabulary(args.saved_model), args.prompt)
        texts = generate_from_saved_model(args.saved_model, prompts, **settings)
    else:
        from lstm_textgen.serving import generate_body, rest_predict, texts_from_reply

        reply = rest_predict(args.server, args.model_name, generate_body(prompts, **settings))
        texts = texts_from_reply(reply)
    for k, text in enumerate(texts):
        if args.batch > 1:
            print(f"----- sample {k + 1} -----")
        print(args.prompt + text)
    return 0


def cmd_export(args) -> int:
    from lstm_textgen.export import export_for_serving

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
    from lstm_textgen.inspect_gates import inspect_run

    try:
        units = [int(u) for u in args.units.split(",")] if args.units else None
    except ValueError:
        raise TextgenError(f"--units must be comma-separated integers, got {args.units!r}") from None
    text = read_text_file(args.text_file) if args.text_file else args.text
    html_path, png_path, findings = inspect_run(
        args.run, text, args.out, units=units, layer=args.layer, checkpoint=args.checkpoint
    )
    for finding in findings:
        print(f"unit {finding.unit}: {finding.feature} (r = {finding.correlation:+.2f})")
    print(html_path)
    print(png_path)
    return 0


def cmd_bench(args) -> int:
    if args.which == "train":
        from lstm_textgen.bench_train import main as bench_main
    elif args.which == "generate":
        from lstm_textgen.bench_generate import main as bench_main
    else:
        from lstm_textgen.bench_memory import main as bench_main
    bench_main(args.options)
    return 0


def cmd_evaluate(args) -> int:
    from lstm_textgen.errors import TextgenError
    from lstm_textgen.evaluate import evaluate_run

    if args.batch_size is not None and args.batch_size < 1:
        raise TextgenError(f"--batch-size must be >= 1, got {args.batch_size}")

    result = evaluate_run(
        args.run,
        split=args.split,
        text_files=args.text_file,
        manual_dir=args.tfds_manual_dir,
        checkpoint=args.checkpoint,
        batch_size=args.batch_size,
        carry_state=args.carry_state,
    )
    what = "text files" if args.text_file else args.split
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


def main(argv=None) -> int:
    """Run the CLI with `argv` (default: sys.argv[1:]); returns the exit status."""
    args = build_parser().parse_args(argv)
    if getattr(args, "preset", None):
        args = build_parser(args.preset).parse_args(argv)
    # The benchmarks set thread pools and a distribution strategy sets up devices and
    # collective ops: both must come before TensorFlow starts its devices.
    distributed = args.command == "train" and (
        args.strategy != "default" or args.cpu_replicas is not None
    )
    _start_tensorflow(init_devices=args.command != "bench" and not distributed)
    from lstm_textgen.errors import TextgenError

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
        first_line = (str(e).strip().splitlines() or [""])[0]
        print(
            f"{PROG}: error: {type(e).__name__}: {first_line} "
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
