"""A generation's returned states in a file, to go on from later: `generate --save-state`
writes one, `generate --continue` reads it. No TensorFlow.

The file is JSON: each row's LSTM state (`h`, `c`), the step of its random stream that
comes next, and the seed it was generated with (a continuation draws from the same
stream only with the same seed), with the key of the model that made them, so another
model refuses them. It is written atomically: a killed command leaves the old file or the
new one, never half of one.
"""

from __future__ import annotations

import json

import numpy as np

from lstm_textgen.errors import TextgenError
from lstm_textgen.files import atomic_write_text
from lstm_textgen.generation.request import Completion, GenerationState

FORMAT = "lstm-textgen generation state"
VERSION = 1


def save_states(path: str, completions: list[Completion], seeds: list[int]) -> None:
    """Write the state of every completion, with its row's seed, to `path`."""
    if any(c.state is None for c in completions):
        raise TextgenError(
            "this model returns no state to save (an export from an earlier lstm-textgen); "
            "export the run again"
        )
    rows = [
        {"h": c.state.h.tolist(), "c": c.state.c.tolist(), "step": c.state.step, "seed": seed}
        for c, seed in zip(completions, seeds)
    ]
    document = {"format": FORMAT, "version": VERSION, "model": completions[0].state.model}
    try:
        atomic_write_text(path, json.dumps({**document, "rows": rows}) + "\n")
    except OSError as e:
        raise TextgenError(f"cannot write the state to {path}: {e.strerror}") from None


def load_states(path: str) -> tuple[list[GenerationState], list[int]]:
    """The states and seeds that `save_states` wrote to `path`, with a one-line error for
    a file that is missing, truncated, or not such a file."""
    not_a_state = f"{path} is not a generation state (a file that generate --save-state writes)"
    try:
        with open(path, encoding="utf-8") as f:
            document = json.load(f)
    except OSError as e:
        raise TextgenError(f"cannot read the state {path}: {e.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise TextgenError(f"{not_a_state}: it is truncated or damaged") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise TextgenError(not_a_state)
    if document.get("version") != VERSION:
        raise TextgenError(
            f"{path} is a state of format version {document.get('version')}; this "
            f"lstm-textgen reads version {VERSION}"
        )
    rows, model = document.get("rows"), document.get("model")
    try:
        states = [
            GenerationState(
                np.asarray(row["h"], np.float32),
                np.asarray(row["c"], np.float32),
                int(row["step"]),
                model if isinstance(model, str) else None,
            )
            for row in rows
        ]
        seeds = [int(row["seed"]) for row in rows]
    except (TypeError, KeyError, ValueError):
        raise TextgenError(f"{not_a_state}: its rows are damaged") from None
    if not states:
        raise TextgenError(f"{not_a_state}: it holds no rows")
    return states, seeds
