#!/usr/bin/env python3
"""What starting from the shipped model buys: the table of docs/training.md#fine-tuning.

    python3 scripts/fine_tune_vs_scratch.py [--runs DIR] [--steps N]

Trains twice on the same English text that is not Shakespeare, with the same settings,
steps and seed: once fine-tuning the shipped model (`--init-from shakespeare`), once from
scratch with the same architecture. Prints the validation loss of each at every
checkpoint, and the best of each, as a Markdown table with the CPU named.

The text is five licences that Debian's base-files package installs on every Debian and
Ubuntu machine (/usr/share/common-licenses: Apache-2.0, GFDL-1.3, GPL-3, LGPL-2.1,
MPL-2.0; 112,718 characters, English legal prose). The last 5% of their concatenation
(the end of MPL-2.0) is the validation text. A killed run resumes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

LICENSES = "/usr/share/common-licenses"
TEXTS = ("Apache-2.0", "GFDL-1.3", "GPL-3", "LGPL-2.1", "MPL-2.0")
SETTINGS = ("--batch-size", "32", "--seed", "1", "--xla", "on")
# The shipped model's architecture, for the run from scratch.
SCRATCH = ("--units", "512", "--layers", "2", "--embedding-dim", "64", "--dropout", "0.2")


def train(run: str, steps: int, every: int, *model: str) -> list[dict]:
    """Train (or resume) `run`; its validation history."""
    texts = [arg for name in TEXTS for arg in ("--text-file", os.path.join(LICENSES, name))]
    command = ["lstm-textgen", "train", "--run", run, *texts, *SETTINGS, *model]
    command += ["--max-steps", str(steps), "--checkpoint-every", str(every)]
    if os.path.isfile(os.path.join(run, "last.keras")):
        command.append("--resume")
    print("$ " + " ".join(command), file=sys.stderr, flush=True)
    subprocess.run(command, check=True)
    with open(os.path.join(run, "state.json"), encoding="utf-8") as f:
        return json.load(f)["history"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="runs", help="folder for the two runs")
    parser.add_argument("--steps", type=int, default=600, help="steps of each run")
    parser.add_argument("--every", type=int, default=100, help="steps between validations")
    args = parser.parse_args()
    missing = [name for name in TEXTS if not os.path.isfile(os.path.join(LICENSES, name))]
    if missing:
        sys.exit(f"{LICENSES} lacks {', '.join(missing)} (Debian's base-files installs them)")

    from lstm_textgen.bench.timing import cpu_description
    from lstm_textgen.config import bits

    tuned = train(
        os.path.join(args.runs, "licenses-fine-tuned"),
        args.steps,
        args.every,
        "--init-from",
        "shakespeare",
    )
    scratch = train(os.path.join(args.runs, "licenses-scratch"), args.steps, args.every, *SCRATCH)
    print(f"CPU: {cpu_description()}; validation loss in nats/char (bits in brackets)\n")
    print("| step | fine-tuned from the shipped model | from scratch | difference |")
    print("| ---: | ---: | ---: | ---: |")
    for a, b in zip(tuned, scratch, strict=True):
        ta, tb = a["val_loss"], b["val_loss"]
        print(
            f"| {a['step']} | {ta:.4f} ({bits(ta):.4f}) | "
            f"{tb:.4f} ({bits(tb):.4f}) | {tb - ta:+.4f} |"
        )
    best_a = min(h["val_loss"] for h in tuned)
    best_b = min(h["val_loss"] for h in scratch)
    print(f"| best | {best_a:.4f} | {best_b:.4f} | {best_b - best_a:+.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
