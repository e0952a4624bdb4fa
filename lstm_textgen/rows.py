"""Generation settings per row, checked in Python with one-line errors (no TensorFlow),
so that `generate --server` checks a request the same way before it sends it."""

from __future__ import annotations

import math
import random

from lstm_textgen.errors import TextgenError

MAX_SEED = 2**31 - 1  # the largest seed picked at random when none is given


def check_sampling_args(temperature: float, top_k: int, top_p: float) -> None:
    """Reject sampling settings that have no meaning, with a one-line reason."""
    if not math.isfinite(temperature) or temperature < 0:
        raise TextgenError(f"temperature must be >= 0 (0 means greedy), got {temperature}")
    if top_k < 0:
        raise TextgenError(f"top-k must be >= 0 (0 turns it off), got {top_k}")
    if not (0.0 < top_p <= 1.0):
        raise TextgenError(f"top-p must be in (0, 1] (1 turns it off), got {top_p}")


def row_settings(rows: int, num_chars, temperature, top_k, top_p, seed) -> dict:
    """Per-row settings as lists of `rows` values, checked, with one-line errors.

    Each setting is one value for every row or a list with one per row. One seed for
    several rows gives row r the seed `seed + r`, so rows differ and row 0 is the text
    the same seed gives alone; None picks a random seed.
    """
    if seed is None:
        seed = random.randint(0, MAX_SEED - rows)  # room for seed + r
    values = {}
    given = dict(num_chars=num_chars, temperature=temperature, top_k=top_k, top_p=top_p)
    for name, value in {**given, "seed": seed}.items():
        if isinstance(value, (list, tuple)):
            if len(value) != rows:
                raise TextgenError(f"give one {name} per prompt ({rows}), got {len(value)}")
            values[name] = list(value)
        elif name == "seed":
            values[name] = [int(value) + r for r in range(rows)]
        else:
            values[name] = [value] * rows
    for n in values["num_chars"]:
        if n < 0:
            raise TextgenError(f"num-chars must be >= 0, got {n}")
    for s in values["seed"]:
        if not 0 <= s < 2**63:
            raise TextgenError(f"seed must be in [0, 2**63), got {s}")
    for t, k, p in zip(values["temperature"], values["top_k"], values["top_p"]):
        check_sampling_args(t, k, p)
    return values
