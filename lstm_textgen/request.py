"""One generation request, its limits, and the interface every generation backend shares.

Nothing here imports TensorFlow: the REST client and the LiteRT runner use it as they are.

A `GenerationRequest` is checked once, here, against the table of `lstm_textgen.settings`;
the exports check the same limits in their graphs. A `Generator` (a trained run, a
SavedModel, a TF Serving endpoint or a LiteRT file) takes a request and returns one
`Completion` per prompt, and every backend applies the same prompt policy:

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
import random
from dataclasses import dataclass

from lstm_textgen.errors import TextgenError, setting
from lstm_textgen.settings import (
    MAX_PROMPT_CHARS,
    MAX_SEED,
    SETTINGS,
    SamplingSettings,
    export_inputs,
)

log = logging.getLogger("lstm_textgen")

# Why a row ended, in the order of the codes the sampling loop returns.
FINISH_REASONS = ("length", "stop", "end")
FINISH_LENGTH, FINISH_STOP, FINISH_END = range(3)


@dataclass(frozen=True)
class Completion:
    """The generated text of one prompt (the prompt not included) and why it ended:
    `length` (num_chars reached), `stop` (right before a stop string, which is left out)
    or `end` (the model ended the item)."""

    text: str
    finish_reason: str


@dataclass(frozen=True)
class CheckedRequest:
    """A request as a backend runs it: the part of each prompt that primes the state and
    each row's checked `SamplingSettings`, every seed set."""

    prompts: tuple[str, ...]
    rows: tuple[SamplingSettings, ...]

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> list:
        """One setting's value of every row."""
        return [row[name] for row in self.rows]

    def export_inputs(self) -> dict[str, list]:
        """The columns of a SavedModel's `serving_default` request (`settings.export_inputs`)."""
        return export_inputs(list(self.prompts), list(self.rows))


class GenerationRequest:
    """What to generate: one row per prompt, with the settings of `lstm_textgen.settings`.

    Args:
        prompts: a string or a list of strings; "" starts from the initial state.
        settings: a `SamplingSettings` for every row, or a list with one per prompt.
        **values: or the settings by name instead, each one value for every row or a list
            with one value per row:
            num_chars (characters to generate per row, at most `MAX_NUM_CHARS`),
            temperature (0 is greedy; higher is more random),
            top_k (sample among the k likeliest characters; 0: all),
            top_p (sample among the likeliest characters whose probability reaches
            top_p; 1: all),
            seed (the same seed gives the same text; None picks one at random),
            stop (stop strings, one list for every row or a list of lists, one per row:
            a row ends right before the first stop string it generates, which the text
            leaves out).

    One seed for several rows gives row r the seed `seed + r`.

    Example:

    >>> request = GenerationRequest(["ROMEO:", "JULIET:"], num_chars=200, stop=["\\n\\n"])
    >>> request.checked().column("seed")  # doctest: +SKIP
    [1234, 1235]
    """

    def __init__(self, prompts, *, settings=None, **values):
        self.prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if settings is not None and values:
            raise TextgenError("give settings or the settings by name, not both")
        self.settings = settings
        self.values = values
        self._checked = None

    def __len__(self) -> int:
        return len(self.prompts)

    def checked(self) -> CheckedRequest:
        """The checked request (computed once, so a random seed is drawn once)."""
        if self._checked is None:
            self._checked = _checked(self)
        return self._checked


def _per_row(name: str, value, rows: int) -> list:
    if isinstance(value, (list, tuple)):
        if len(value) != rows:
            raise TextgenError(f"give one {name} per prompt ({rows}), got {len(value)}")
        return list(value)
    return [value] * rows


def _row_values(request: GenerationRequest, rows: int) -> list[dict]:
    """Each row's settings by name, as given (unchecked)."""
    if request.settings is not None:
        given = _per_row("settings", request.settings, rows)
        for s in given:
            if not isinstance(s, SamplingSettings):
                raise TextgenError(f"settings must be SamplingSettings, got {type(s).__name__}")
        return [dict(s) for s in given]
    columns = {}
    for name, value in request.values.items():
        if name not in SETTINGS:
            raise TextgenError(
                f"unknown generation setting {name!r}; the settings are {', '.join(SETTINGS)}"
            )
        if name == "stop":
            value = [value] if isinstance(value, str) else value or []
            # A list of lists is one list per row; a list of strings is every row's.
            per_row = bool(value) and all(isinstance(s, (list, tuple)) for s in value)
            columns[name] = _per_row(name, value, rows) if per_row else [value] * rows
        else:
            columns[name] = _per_row(name, value, rows)
    return [{name: column[r] for name, column in columns.items()} for r in range(rows)]


def _seeds(request: GenerationRequest, given: list, rows: int) -> list[int]:
    """Each row's seed: one seed (or none, drawn at random) for every row gives row r that
    seed + r; a seed per row is taken as it is (None drawn at random)."""
    per_row = isinstance(request.values.get("seed"), (list, tuple)) or isinstance(
        request.settings, (list, tuple)
    )
    if per_row:
        return [random.randint(0, MAX_SEED) if s is None else s for s in given]
    first = given[0]
    if first is None:
        first = random.randint(0, MAX_SEED - rows + 1)
    spec = SETTINGS["seed"]
    if spec.allows(first) and first + rows - 1 > MAX_SEED:
        raise TextgenError(
            f"{setting('seed')} must be {spec.limits} less the {rows - 1} rows after the "
            f"first (row r gets seed + r), got {first}"
        )
    return [first + r if spec.allows(first) else first for r in range(rows)]


def _checked(request: GenerationRequest) -> CheckedRequest:
    rows = len(request.prompts)
    if not rows:
        raise TextgenError("give at least one prompt")
    for p in request.prompts:
        if not isinstance(p, str):
            raise TextgenError(f"a prompt must be a string, got {type(p).__name__}")
    values = _row_values(request, rows)
    seeds = _seeds(request, [v.get("seed") for v in values], rows)
    checked = tuple(SamplingSettings(**{**v, "seed": s}) for v, s in zip(values, seeds))
    return CheckedRequest(tuple(prompt_tail(p) for p in request.prompts), checked)


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
    implement `_complete(request)`, which takes a `CheckedRequest` and returns one
    `Completion` per row.
    """

    vocab = None
    source = "model"

    def complete(self, request: GenerationRequest) -> list[Completion]:
        """One `Completion` per prompt of `request`."""
        checked = request.checked()
        self.warn_about_prompts(request.prompts)
        return self._complete(checked)

    def generate(self, prompts, *, settings=None, **values) -> list[str]:
        """The texts alone of `complete` for the request of these settings (see
        `GenerationRequest`)."""
        request = GenerationRequest(prompts, settings=settings, **values)
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

    def _complete(self, request: CheckedRequest) -> list[Completion]:
        raise NotImplementedError
