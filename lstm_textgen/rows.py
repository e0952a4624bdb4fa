"""Generation settings, checked in Python with one-line errors (no TensorFlow), so that
`generate --server` can check a request before it sends it."""

from __future__ import annotations

import math

from lstm_textgen.errors import TextgenError


def check_sampling_args(temperature: float, top_k: int, top_p: float) -> None:
    """Reject sampling settings that have no meaning, with a one-line reason."""
    if not math.isfinite(temperature) or temperature < 0:
        raise TextgenError(f"temperature must be >= 0 (0 means greedy), got {temperature}")
    if top_k < 0:
        raise TextgenError(f"top-k must be >= 0 (0 turns it off), got {top_k}")
    if not (0.0 < top_p <= 1.0):
        raise TextgenError(f"top-p must be in (0, 1] (1 turns it off), got {top_p}")
