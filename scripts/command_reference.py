#!/usr/bin/env python3
"""Write docs/commands.md: every command's `--help`, as the parser prints it.

    python3 scripts/command_reference.py            # rewrite docs/commands.md
    python3 scripts/command_reference.py --check    # exit 1 if it is out of date

The page is made from the parser itself, so every flag is documented and every flag the
page shows exists; tests/test_docs.py fails when the page falls behind the code.
"""

from __future__ import annotations

import argparse
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = os.path.join(REPO, "docs", "commands.md")
WIDTH = "100"  # argparse wraps help to $COLUMNS


def reference() -> str:
    """The page's text, from the CLI's parser."""
    os.environ["COLUMNS"] = WIDTH
    from lstm_textgen.cli import build_parser, command_parsers

    commands = command_parsers(build_parser())
    parts = [
        "# Command reference\n",
        "Every command's `--help`, as `lstm-textgen COMMAND --help` prints it (made by "
        "`python3 scripts/command_reference.py`; a test keeps it in step with the code). "
        "The pages on [training](training.md), [generation](generation.md), "
        "[serving](serving.md), [devices](devices.md) and [performance](performance.md) "
        "explain what the flags do.\n",
    ]
    for name, command in commands.items():
        parts.append(section(f"lstm-textgen {name}", command))
    import importlib

    from lstm_textgen.bench import BENCHMARKS

    for name in BENCHMARKS:  # each benchmark parses its own options after `bench NAME`
        bench = importlib.import_module(f"lstm_textgen.bench.{name}")
        parts.append(section(f"lstm-textgen bench {name}", bench.build_parser(), level="###"))
    return "\n".join(parts)


def section(title: str, parser: argparse.ArgumentParser, level: str = "##") -> str:
    return f"{level} `{title}`\n\n```text\n{parser.format_help().rstrip()}\n```\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check the page")
    args = parser.parse_args()
    text = reference()
    if args.check:
        with open(PAGE, encoding="utf-8") as f:
            return 0 if f.read() == text else 1
    with open(PAGE, "w", encoding="utf-8") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
