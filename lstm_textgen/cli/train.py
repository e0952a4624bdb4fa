"""`lstm-textgen train`."""

from __future__ import annotations

import argparse
import dataclasses
import time

from lstm_textgen.cli import common

NAME = "train"
HELP = "train a model into a run directory"
DESCRIPTION = (
    "Train a character LSTM language model. Checkpoints (last and best "
    "validation) and config.json are written to --run; --resume continues from there."
)


def tensorflow_start(args) -> str:
    # A distribution strategy sets up devices and collective ops before TensorFlow starts
    # its devices.
    return "import" if config_strategy(args) else "devices"


def check_early(args) -> None:
    """Refuse a run that another process trains before TensorFlow starts (seconds)."""
    from lstm_textgen.store.run_dir import check_not_in_use

    check_not_in_use(args.run)


def config_strategy(args) -> bool:
    """Whether the command line asks for a distribution strategy."""
    return args.strategy != "default" or args.cpu_replicas is not None


def add_cli_args(parser) -> None:
    from lstm_textgen.config import PRESETS

    parser.add_argument("--run", required=True, metavar="DIR", help="run directory to write")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --run from its last checkpoint with its saved config",
    )
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="start from a documented configuration (see docs/training.md); flags given beside it "
        "override its values",
    )
    groups = {
        "corpus": parser.add_argument_group("corpus"),
        "model": parser.add_argument_group("model"),
        "optimisation": parser.add_argument_group("optimisation"),
        "fine-tuning": parser.add_argument_group("fine-tuning (see docs/training.md)"),
        "scaling out": parser.add_argument_group("scaling out (see docs/scaling.md)"),
    }
    common.add_manual_dir(groups["corpus"])
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
    add_config_flags(groups)
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


def main(args) -> int:
    from lstm_textgen.config import bits, ignored_on_resume, make_configs
    from lstm_textgen.training.train import train

    started_wall, started_cpu = time.perf_counter(), time.process_time()
    settings = config_settings(args)
    base_model = None
    if settings.get("init_from") and not args.resume:
        from lstm_textgen.store.sources import describe_source, source_configs

        base_model = source_configs(describe_source(settings["init_from"]))[0]
    model_config, train_config = make_configs(args.preset, base_model, **settings)
    if args.resume:
        from lstm_textgen.store.run_dir import load_run_config

        for warning in ignored_on_resume(load_run_config(args.run), settings):
            common.log(f"warning: {warning}")
    else:
        # The flags are checked before a strategy splits devices or waits for workers;
        # `train` checks the configs it settles (once), for every caller.
        model_config.validate()
        train_config.validate()
    strategy = None
    if config_strategy(args):
        from lstm_textgen.errors import quiet_stderr_fd
        from lstm_textgen.training.distribute import make_strategy

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
        log=common.log,
    )
    if result.best_val_loss is not None and result.chief:
        wall = time.perf_counter() - started_wall
        cpu = time.process_time() - started_cpu
        common.log(
            f"done: step {result.step}, best validation {result.best_val_loss:.4f} "
            f"nats/char = {bits(result.best_val_loss):.4f} bits/char; model in {args.run} "
            f"({wall / 60:.1f} min, {cpu / 60:.1f} CPU-min)"
        )
    return 0


def add_config_flags(groups: dict) -> None:
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
            if f.metadata["choices"]:
                options["choices"] = f.metadata["choices"]  # usage shows them
            else:
                metavar = f.metadata.get("metavar") or flag_name(name)[2:].upper()
                options["metavar"] = metavar.replace("-", "_")
            if f.metadata["const"] is not None:  # the flag alone means this value
                options.update(nargs="?", const=f.metadata["const"])
        groups[group_name].add_argument(flag_name(name), **options)


def config_settings(args) -> dict:
    """The config fields the user gave on the command line (by field name)."""
    from lstm_textgen.config import config_fields

    return {name: getattr(args, name) for name in config_fields() if hasattr(args, name)}
