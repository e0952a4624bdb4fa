"""The `lstm-textgen` command: a thin dispatcher over the command modules
of `lstm_textgen.cli` (listed in `lstm_textgen.cli.commands`).

Each sub-command (`train`, `generate`, `export`, `evaluate`, `plot`, `inspect`, `bench`)
registers its own flags and runs itself; this module parses argv, starts TensorFlow
quietly when the command needs it, and turns errors into one line. Bad input ends with
one line on stderr, `lstm-textgen: error: ...`, and exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

PROG = "lstm-textgen"
LOG_LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"
DEBUG_ENV = "LSTM_TEXTGEN_DEBUG"


class UsageError(Exception):
    """A command line that argparse refuses; the CLI prints it as one line."""


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line (the usage block stays behind --help)."""

    def error(self, message):
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    """The CLI's parser: each command module registers its own flags."""
    from lstm_textgen.cli.commands import COMMANDS

    parser = _Parser(
        prog=PROG,
        description="Character-level text generation with a gate-level LSTM.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command_parser = sub.add_parser(
            command.NAME, help=command.HELP, description=command.DESCRIPTION
        )
        command.add_cli_args(command_parser)
        command_parser.set_defaults(command_module=command)
    return parser


def command_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """`{name: parser}` of the CLI's commands, in the order `--help` lists them."""
    return next(
        action.choices
        for action in parser._actions  # argparse keeps its sub-commands here only
        if isinstance(action, argparse._SubParsersAction)
    )


def _command_parser(parser: argparse.ArgumentParser, argv: list[str]):
    """The parser of the command `argv` starts with, or None."""
    if not argv or argv[0].startswith("-"):
        return None
    return command_parsers(parser).get(argv[0])


def _unknown_options(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """The options of `argv` that its command does not have. argparse reports a missing
    required argument before an unknown one, which hides a mistyped flag."""
    command = _command_parser(parser, argv)
    if command is None:
        return []
    known = {option for action in command._actions for option in action.option_strings}
    return [
        arg.split("=", 1)[0]
        for arg in argv[1:]
        if arg.startswith("--") and arg.split("=", 1)[0] not in known and arg != "--"
    ]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """`argv` parsed; a bad command line raises `UsageError` (one line)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        return parser.parse_args(argv)
    except UsageError:
        unknown = _unknown_options(parser, argv)
        if unknown:
            raise UsageError(
                f"unrecognized arguments: {' '.join(unknown)} (see `{PROG} {argv[0]} --help`)"
            ) from None
        raise


# Settings the library names after its Python arguments whose flag is spelled otherwise.
_FLAGS_OF_ARGUMENTS = {"run_dir": "--run", "manual_dir": "--tfds-manual-dir"}


def _flag_namer(argv: list[str] | None):
    """`name -> flag` for the settings an error names: the command's own flags by their
    argparse destination, the training config's fields by their `train` flag."""
    from lstm_textgen.config import config_fields, flag_name
    from lstm_textgen.errors import default_flag

    command = _command_parser(build_parser(), sys.argv[1:] if argv is None else list(argv))
    by_dest = {
        action.dest: max(action.option_strings, key=len)
        for action in (command._actions if command else [])
        if action.option_strings and action.help != argparse.SUPPRESS
    }

    def flag_of(name: str) -> str:
        if name in by_dest:
            return by_dest[name]
        if name in _FLAGS_OF_ARGUMENTS:
            return _FLAGS_OF_ARGUMENTS[name]
        if name in config_fields():
            return flag_name(name)
        return default_flag(name)

    return flag_of


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


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time (it may be replaced after main ran)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _):
        pass


class _WarningFormat(logging.Formatter):
    def __init__(self):
        super().__init__("warning: %(message)s")


def _show_library_warnings() -> None:
    """Print the library's warnings on stderr as `warning: ...` lines, once per process."""
    library_log = logging.getLogger("lstm_textgen")
    if not any(isinstance(h.formatter, _WarningFormat) for h in library_log.handlers):
        handler = _StderrHandler()
        handler.setFormatter(_WarningFormat())
        library_log.addHandler(handler)
    library_log.setLevel(logging.WARNING)
    library_log.propagate = False


def main(argv=None) -> int:
    """Run the CLI with `argv` (default: sys.argv[1:]); returns the exit status."""
    try:
        args = parse_args(argv)
    except UsageError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    _show_library_warnings()
    from lstm_textgen.errors import TextgenError, first_line

    try:
        # What a command can refuse without TensorFlow, it refuses before TensorFlow starts.
        check_early = getattr(args.command_module, "check_early", None)
        if check_early:
            check_early(args)
        start = getattr(args.command_module, "tensorflow_start", lambda _: "devices")(args)
        if start:
            _start_tensorflow(init_devices=start == "devices")
        return args.command_module.main(args)
    except TextgenError as e:
        print(f"{PROG}: error: {e.for_command_line(_flag_namer(argv))}", file=sys.stderr)
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
