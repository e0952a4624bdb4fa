#!/usr/bin/env python3
"""Rebuild the shipped model, saved_models/shakespeare/, from scratch in one command.

    python3 scripts/build_shipped_model.py [--run RUN_DIR] [--out FOLDER]

Trains the `shakespeare` preset into RUN_DIR (default runs/shipped-shakespeare; a run
already trained to the end is reused, a killed one resumes), then writes FOLDER (default
saved_models/shakespeare): the SavedModel version 1 with its TF Serving warmup file, the
LiteRT files with float32 and int8 weights, card.json (every figure below) and README.md,
the model card made from it. The folder is built beside the old one and swapped in whole.

Rebuild only when the export format changes: every rebuild adds the model's whole size to
git history. Offline, point tfds at karpathy's input.txt with LSTM_TEXTGEN_TFDS_MANUAL_DIR
(default ../shared/data/tinyshakespeare when it exists).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_LOG = "build-train.log"  # in the run directory: the train command's report
SAMPLE = {"prompt": "ROMEO:", "num_chars": 400, "temperature": 0.8, "seed": 1}
SPLITS = ("validation", "test", "validation+test")
WINDOWS = (100, 256)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def manual_dir() -> str | None:
    folder = os.environ.get("LSTM_TEXTGEN_TFDS_MANUAL_DIR", "../shared/data/tinyshakespeare")
    return folder if os.path.isdir(folder) else None


def train_command(run: str) -> list[str]:
    corpus = ["--tfds-manual-dir", manual_dir()] if manual_dir() else []
    # float32 on every CPU, as the shipped run was trained (`--mixed-precision auto` would
    # pick bfloat16 on a CPU with bfloat16 instructions).
    precision = ["--mixed-precision", "off"]
    return ["lstm-textgen", "train", "--preset", "shakespeare", "--run", run, *precision, *corpus]


def train(run: str) -> dict:
    """Train (or finish) the run; the wall and CPU minutes its train command reported."""
    from lstm_textgen.store.run_dir import read_state

    report = os.path.join(run, TRAIN_LOG)
    if not os.path.isdir(run) or read_state(run).step < _preset_steps():
        command = train_command(run)
        resume = os.path.isfile(os.path.join(run, "last.keras"))
        if resume:
            command.append("--resume")
        log("$ " + " ".join(command))
        lines = []
        with subprocess.Popen(command, stderr=subprocess.PIPE, text=True) as process:
            for line in process.stderr:  # the train command's report, shown as it comes
                sys.stderr.write(line)
                lines.append(line)
        if process.returncode:
            sys.exit(process.returncode)
        with open(report, "a" if resume else "w", encoding="utf-8") as out:
            out.writelines(lines)
    with open(report, encoding="utf-8") as f:
        done = re.findall(r"\(([\d.]+) min, ([\d.]+) CPU-min\)", f.read())
    if not done:
        sys.exit(f"{report} holds no 'done:' line of the train command")
    return {
        "wall_minutes": sum(float(w) for w, _ in done),
        "cpu_minutes": sum(float(c) for _, c in done),
    }


def _preset_steps() -> int:
    from lstm_textgen.config import PRESETS

    return PRESETS["shakespeare"]["train"]["max_steps"]


def export(run: str, folder: str) -> None:
    from lstm_textgen.export.litert import export_litert
    from lstm_textgen.export.saved_model import export_for_serving
    from lstm_textgen.store.shipped import LITERT_FILE, LITERT_INT8_FILE

    log(f"exporting {run} to {folder}")
    export_for_serving(run, folder, version=1)
    export_litert(run, os.path.join(folder, LITERT_FILE))
    export_litert(run, os.path.join(folder, LITERT_INT8_FILE), quantize="dynamic")


def losses(folder: str) -> dict:
    """{split: {window length: nats/char}} of the export itself (not of the run)."""
    from lstm_textgen.evaluation.run import evaluate_run

    version = os.path.join(folder, "1")
    table = {}
    for split in SPLITS:
        table[split] = {}
        for seq_len in WINDOWS:
            result = evaluate_run(version, split=split, manual_dir=manual_dir(), seq_len=seq_len)
            table[split][str(seq_len)] = round(result.nats_per_char, 4)
            log(f"{split}, windows of {seq_len}: {result.nats_per_char:.4f} nats/char")
    return table


def sample(folder: str) -> str:
    """The sample text, from the SavedModel; the LiteRT file must give the same."""
    from lstm_textgen.generation.open_model import open_generator
    from lstm_textgen.generation.request import GenerationRequest
    from lstm_textgen.store.shipped import LITERT_FILE

    settings = {k: v for k, v in SAMPLE.items() if k != "prompt"}
    request = GenerationRequest([SAMPLE["prompt"]], **settings)
    saved = open_generator(saved_model=folder).complete(request)[0].text
    litert = open_generator(litert=os.path.join(folder, LITERT_FILE)).complete(request)[0].text
    if saved != litert:
        sys.exit("the LiteRT file and the SavedModel give different text: not shipping it")
    return SAMPLE["prompt"] + saved


def files(folder: str) -> dict:
    listing = {}
    for root, _, names in os.walk(folder):
        for name in sorted(names):
            path = os.path.join(root, name)
            relative = os.path.relpath(path, folder)
            if relative in ("README.md", "card.json"):
                continue
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            listing[relative] = {"bytes": os.path.getsize(path), "sha256": digest}
    return dict(sorted(listing.items()))


def commit() -> str:
    def git(*args):
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()

    head = git("rev-parse", "--short=12", "HEAD") or "unknown"
    changed = [
        line for line in git("status", "--porcelain").splitlines() if "saved_models" not in line
    ]
    return head + (" with uncommitted changes" if changed else "")


def card(run: str, folder: str, timing: dict) -> dict:
    from lstm_textgen.bench.timing import cpu_description
    from lstm_textgen.store.sources import load_source

    trained = load_source(os.path.join(folder, "1"))
    return {
        "name": "shakespeare",
        "built_by": "python3 scripts/build_shipped_model.py",
        "train_command": " ".join(train_command(run)),
        "commit": commit(),
        "cpu": cpu_description(),
        "train_minutes": timing,
        "parameters": trained.model.count_params(),
        "model": trained.model_config.__dict__,
        "train": trained.train_config.__dict__,
        "losses": losses(folder),
        "vocabulary": trained.vocab.characters,
        "files": files(folder),
        "sample": {**SAMPLE, "text": sample(folder)},
    }


def render(info: dict) -> str:
    """The model card (README.md) of `card.json`'s figures."""
    from lstm_textgen.config import bits

    model = info["model"]
    rows = []
    for split, by_window in info["losses"].items():
        cells = [f"{n:.4f} ({bits(n):.4f})" for n in by_window.values()]
        rows.append(f"| {split} | " + " | ".join(cells) + " |")
    file_rows = [
        f"| `{path}` | {entry['bytes']:,} | `{entry['sha256']}` |"
        for path, entry in info["files"].items()
    ]
    sample = info["sample"]
    vocabulary = "".join(info["vocabulary"])
    n = len(info["vocabulary"])
    architecture = (
        f"embedding {model['embedding_dim']} -> {model['num_layers']} x "
        f"GateLSTM({model['units']}) -> dense, dropout {model['dropout']}; "
        f"{info['parameters']:,} parameters"
    )
    minutes = info["train_minutes"]
    timing = f"{minutes['wall_minutes']:.1f} min wall, {minutes['cpu_minutes']:.1f} CPU-min"
    command = (
        f'lstm-textgen generate --prompt "{sample["prompt"]}" --num-chars '
        f"{sample['num_chars']} --temperature {sample['temperature']} --seed {sample['seed']}"
    )
    return f"""# The shipped model: shakespeare

A character-level LSTM trained on tiny Shakespeare (karpathy's `input.txt`, through
`tensorflow-datasets`' `tiny_shakespeare` splits): the `--preset shakespeare` recipe of
[docs/training.md](../../docs/training.md#reproducing-a-result). `lstm-textgen generate`
uses it when no other model is named. Every figure on this page is in `card.json` beside
it, written by the command that built the folder.

| | |
| --- | --- |
| architecture | {architecture} |
| vocabulary | {n} characters (ids 1 to {n}; 0 is unknown) |
| built by | `{info["built_by"]}` |
| trained by | `{info["train_command"]}` |
| code | commit {info["commit"]} |
| CPU | {info["cpu"]}, 2 cores |
| training time | {timing} |

## Loss

Nats per character (bits in brackets) of the exported model, each window starting from the
zero state; validation+test is the last 10% of the text:

| split | windows of 100 | windows of 256 |
| --- | ---: | ---: |
{chr(10).join(rows)}

`lstm-textgen evaluate --run saved_models/shakespeare --split test` measures the first
column again (a test of the suite checks it against `card.json`).

## Files

The SavedModel (`1/`, with `assets.extra/tf_serving_warmup_requests`) is what TF Serving
serves as it is; `model.tflite` (float32 weights) gives the same text as the SavedModel
for the same request; `model-int8.tflite` stores the weights as int8 (dynamic-range
quantization) and its text drifts from the others after a few dozen characters.

| file | bytes | sha256 |
| --- | ---: | --- |
{chr(10).join(file_rows)}

## Sample

`{command}`
(the same text from the SavedModel and from `model.tflite`; another CPU can round a
product differently and change it):

```text
{sample["text"]}
```

## Vocabulary

{json.dumps(vocabulary, ensure_ascii=False)}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default="runs/shipped-shakespeare", help="run directory")
    parser.add_argument("--out", default="saved_models/shakespeare", help="folder to write")
    args = parser.parse_args()
    started = time.perf_counter()
    timing = train(args.run)
    out = os.path.abspath(args.out)
    building = os.path.join(os.path.dirname(out), f".{os.path.basename(out)}-building")
    shutil.rmtree(building, ignore_errors=True)
    export(args.run, building)
    info = card(args.run, building, timing)
    with open(os.path.join(building, "card.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1, ensure_ascii=False)
        f.write("\n")
    with open(os.path.join(building, "README.md"), "w", encoding="utf-8") as f:
        f.write(render(info))
    old = building.replace("-building", "-old")
    shutil.rmtree(old, ignore_errors=True)
    if os.path.exists(out):
        os.rename(out, old)
    os.rename(building, out)
    shutil.rmtree(old, ignore_errors=True)
    log(f"wrote {out} in {(time.perf_counter() - started) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
