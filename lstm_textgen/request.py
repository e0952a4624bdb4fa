"""One generation request, its limits, and the interface every generation backend shares.

Nothing here imports TensorFlow: the REST client and the LiteRT runner use it as they are.

A `GenerationRequest` is validated once, here, against `LIMITS`; the exports check the
same limits in their graphs. A `Generator` (a trained run, a SavedModel, a TF Serving
endpoint or a LiteRT file) takes a request and returns one `Completion` per prompt, and
every backend applies the same prompt policy:

- only the last `MAX_PROMPT_CHARS` characters of a prompt prime the state;
- prompt characters outside the vocabulary are skipped (with a warning where the
  vocabulary is at hand);
- a model trained on items (`train --items`) starts every prompt with its end-of-item
  marker, so a prompt is the beginning of a new item;
- row r draws its random numbers from `samplers.hash_uniforms` of its own seed, so the
  same request gives the same text from every backend (up to rounding, see docs).
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass, field

from lstm_textgen.errors import TextgenError, setting

log = logging.getLogger("lstm_textgen")

MAX_NUM_CHARS = 10_000  # characters generated per row
MAX_PROMPT_CHARS = 1_000  # the last characters of a prompt that prime the state
MAX_STOP_STRINGS = 4  # stop strings per row
MAX_STOP_CHARS = 16  # characters per stop string
MAX_SEED = 2**31 - 1  # seeds are 31-bit: the counter-based stream hashes them as uint32

# Why a row ended, in the order of the codes the sampling loop returns.
FINISH_REASONS = ("length", "stop", "end")
FINISH_LENGTH, FINISH_STOP, FINISH_END = range(3)

# The limits of one request, checked by `GenerationRequest.rows` and in the exports' graphs.
LIMITS = {
    "num_chars": f"0 to {MAX_NUM_CHARS:,} per row",
    "temperature": "finite and >= 0 (0 is greedy)",
    "top_k": ">= 0 (0 turns it off)",
    "top_p": "in (0, 1] (1 turns it off)",
    "seed": f"0 to {MAX_SEED:,} (2**31 - 1); row r of one seed gets seed + r",
    "prompt": f"any length; the last {MAX_PROMPT_CHARS:,} characters prime the state",
    "stop": f"up to {MAX_STOP_STRINGS} strings per row, each 1 to {MAX_STOP_CHARS} characters",
}


@dataclass(frozen=True)
class Completion:
    """The generated text of one prompt (the prompt not included) and why it ended:
    `length` (num_chars reached), `stop` (right before a stop string, which is left out)
    or `end` (the model ended the item)."""

    text: str
    finish_reason: str


@dataclass
class GenerationRequest:
    """What to generate: one row per prompt, each setting one value for every row or a
    list with one value per row.

    Args:
        prompts: a string or a list of strings; "" starts from the initial state.
        num_chars: characters to generate per row, at most (`MAX_NUM_CHARS`).
        temperature: 0 is greedy; higher is more random.
        top_k: sample among the k likeliest characters (0: all).
        top_p: sample among the likeliest characters whose probability reaches top_p (1: all).
        seed: the same seed gives the same text; None picks one at random. One seed for
            several rows gives row r the seed `seed + r`.
        stop: stop strings, one list for every row or a list of lists (one per row). A row
            ends right before the first stop string it generates; the text leaves it out.

    Example:

    >>> request = GenerationRequest(["ROMEO:", "JULIET:"], num_chars=200, stop=["\\n\\n"])
    >>> request.rows()["seed"]  # doctest: +SKIP
    [1234, 1235]
    """

    prompts: list[str] | str
    num_chars: int | list[int] = 500
    temperature: float | list[float] = 1.0
    top_k: int | list[int] = 0
    top_p: float | list[float] = 1.0
    seed: int | list[int] | None = None
    stop: list[str] | list[list[str]] = field(default_factory=list)

    def __post_init__(self):
        if isinstance(self.prompts, str):
            self.prompts = [self.prompts]
        self.prompts = list(self.prompts)
        if isinstance(self.stop, str):
            self.stop = [self.stop]
        self._rows = None

    def __len__(self) -> int:
        return len(self.prompts)

    def rows(self) -> dict[str, list]:
        """Every setting as a list with one checked value per row (computed once, so a
        random seed is drawn once)."""
        if self._rows is None:
            self._rows = _checked_rows(self)
        return self._rows


def _per_row(name: str, value, rows: int) -> list:
    if isinstance(value, (list, tuple)):
        if len(value) != rows:
            raise TextgenError(f"give one {name} per prompt ({rows}), got {len(value)}")
        return list(value)
    return [value] * rows


def check_stop_strings(stops) -> list[str]:
    """One row's stop strings, checked against `LIMITS`."""
    stops = list(stops)
    if len(stops) > MAX_STOP_STRINGS:
        raise TextgenError(
            f"at most {MAX_STOP_STRINGS} stop strings per row, got {len(stops)}; drop some"
        )
    for s in stops:
        if not isinstance(s, str):
            raise TextgenError(f"a stop string must be a string, got {s!r}")
        if not s:
            raise TextgenError("a stop string is empty; give at least one character")
        if len(s) > MAX_STOP_CHARS:
            raise TextgenError(
                f"stop string {s[:20]!r}... has {len(s)} characters; at most {MAX_STOP_CHARS}"
            )
    return stops


def _checked_rows(request: GenerationRequest) -> dict[str, list]:
    rows = len(request.prompts)
    if not rows:
        raise TextgenError("give at least one prompt")
    for p in request.prompts:
        if not isinstance(p, str):
            raise TextgenError(f"a prompt must be a string, got {type(p).__name__}")
    seed = request.seed
    if seed is None:
        seed = random.randint(0, MAX_SEED - rows + 1)
    values = {
        name: _per_row(name, getattr(request, name), rows)
        for name in ("num_chars", "temperature", "top_k", "top_p")
    }
    if isinstance(seed, (list, tuple)):
        values["seed"] = _per_row("seed", seed, rows)
    else:
        values["seed"] = [int(seed) + r for r in range(rows)]
    stop = request.stop
    per_row_stops = bool(stop) and all(isinstance(s, (list, tuple)) for s in stop)
    values["stop"] = [
        check_stop_strings(s)
        for s in (_per_row("stop", stop, rows) if per_row_stops else [stop] * rows)
    ]
    for n in values["num_chars"]:
        if isinstance(n, bool) or int(n) != n or not 0 <= n <= MAX_NUM_CHARS:
            raise TextgenError(f"{setting('num_chars')} must be {LIMITS['num_chars']}, got {n}")
    for s in values["seed"]:
        if not 0 <= s <= MAX_SEED:
            raise TextgenError(
                f"{setting('seed')} must be 0 to {MAX_SEED:,} (a row's seed is the first "
                f"plus its row number), got {s}"
            )
    for t, k, p in zip(values["temperature"], values["top_k"], values["top_p"]):
        if not math.isfinite(t) or t < 0:
            raise TextgenError(f"{setting('temperature')} must be >= 0 (0 means greedy), got {t}")
        if k < 0:
            raise TextgenError(f"{setting('top_k')} must be >= 0 (0 turns it off), got {k}")
        if not 0.0 < p <= 1.0:
            raise TextgenError(f"{setting('top_p')} must be in (0, 1] (1 turns it off), got {p}")
    values["prompt"] = [prompt_tail(p) for p in request.prompts]
    return values


def stop_matrix(stops: list[list[str]]) -> list[list[str]]:
    """Each row's stop strings padded with empty (unused) slots to `MAX_STOP_STRINGS`: the
    `stop` input of an export's `serving_default`."""
    return [list(row) + [""] * (MAX_STOP_STRINGS - len(row)) for row in stops]


def prompt_tail(prompt: str) -> str:
    """The part of a prompt that primes the state: its last `MAX_PROMPT_CHARS` characters."""
    return prompt[-MAX_PROMPT_CHARS:]


def stop_at_first(text: str, stops) -> tuple[str, bool]:
    """`text` cut right before the first stop string it contains, as the sampling loop cuts
    it: the first to be completed, reading left to right (the longest of those completed at
    the same character). Returns `(text, stopped)`."""
    for end in range(1, len(text) + 1):
        done = [s for s in stops if s and text.endswith(s, 0, end)]
        if done:
            return text[: end - max(len(s) for s in done)], True
    return text, False


class Generator:
    """The interface of every generation backend.

    Subclasses set `vocab` (a `CharVocabulary`, or None where it is not at hand) and
    implement `_complete(rows)`, which takes `GenerationRequest.rows()` and returns one
    `Completion` per row.
    """

    vocab = None
    source = "model"

    def complete(self, request: GenerationRequest) -> list[Completion]:
        """One `Completion` per prompt of `request`."""
        rows = request.rows()
        self.warn_about_prompts(request.prompts)
        return self._complete(rows)

    def generate(
        self, prompts, num_chars=500, temperature=1.0, top_k=0, top_p=1.0, seed=None, stop=()
    ) -> list[str]:
        """The texts alone of `complete` for the request of these settings (see
        `GenerationRequest`)."""
        request = GenerationRequest(
            prompts, num_chars, temperature, top_k, top_p, seed, list(stop) if stop else []
        )
        return [c.text for c in self.complete(request)]

    def warn_about_prompts(self, prompts) -> None:
        """The one warning of each prompt policy that a request runs into."""
        longest = max((len(p) for p in prompts), default=0)
        if longest > MAX_PROMPT_CHARS:
            log.warning(
                "only the last %s characters of a prompt prime the state, of the %s given",
                f"{MAX_PROMPT_CHARS:,}",
                f"{longest:,}",
            )
        if self.vocab is not None:
            unknown = self.vocab.unknown_characters("".join(prompt_tail(p) for p in prompts))
            if unknown:
                log.warning(
                    "the model never saw %r in training; those prompt characters are skipped",
                    "".join(unknown),
                )

    @property
    def has_items(self) -> bool:
        """Whether the model was trained on items (it can end a row by itself)."""
        return self.vocab is not None and self.vocab.end_id is not None

    def _complete(self, rows: dict) -> list[Completion]:
        raise NotImplementedError
