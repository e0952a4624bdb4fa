"""The sub-commands of `lstm-textgen`, one module each.

Each module defines `NAME`, `HELP` (one line for the command list), `DESCRIPTION`,
`add_cli_args(parser)`, which registers its flags, and `main(args) -> int`, which calls the
library. `tensorflow_start(args)`, where a module defines it, says whether the command
starts TensorFlow before it runs: "devices" (import it and start its devices, quietly; what
a module without it gets), "import" (import it only: the command still sets thread pools or
a distribution strategy) or None (no TensorFlow).
Importing a command module imports no TensorFlow.
"""

from lstm_textgen.cli import (
    bench,
    evaluate,
    export,
    generate,
    inspect,
    plot,
    score,
    train,
)

COMMANDS = (train, generate, export, evaluate, score, plot, inspect, bench)
