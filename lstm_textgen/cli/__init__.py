"""The `lstm-textgen` command: `dispatch` parses argv and runs one command module.

Each command (`train`, `generate`, `export`, `evaluate`, `score`, `plot`, `inspect`,
`bench`) is a module here with `add_cli_args(parser)` and `main(args)`; it only turns flags
into a call of the library. Importing this package imports no TensorFlow.
"""

from lstm_textgen.cli.dispatch import (
    UsageError,
    build_parser,
    command_parsers,
    console_main,
    main,
    parse_args,
)

__all__ = ["UsageError", "build_parser", "command_parsers", "console_main", "main", "parse_args"]
