"""One generation request, its limits, and what a backend gives back for it.

Nothing here imports TensorFlow: the REST client and the LiteRT runner use it as they are.

A `GenerationRequest` is checked once, here, against the table of
`lstm_textgen.generation.settings`; the exports check the same limits in their graphs. A
backend (a `generator.Generator`) takes the `CheckedRequest` and returns one `Completion`
per prompt, and every backend applies the same prompt policy:

- only the last `MAX_PROMPT_CHARS` characters of a prompt prime the state;
- prompt characters outside the vocabulary are skipped (with a warning where the
  vocabulary is at hand);
- a model trained on items (`train --items`) starts every prompt with its end-of-item
  marker, so a prompt is the beginning of a new item;
- row r draws its random numbers from `random_stream.hash_uniforms` of its own seed, so
  the same request gives the same text from every backend (up to rounding, see docs).

Every `Completion` carries the row's `GenerationState`: a request made with it continues
the text without reading it again (`GenerationRequest(..., state=...)`), on any backend
of the same model, and N characters in one request are the same text as N in several
continued ones.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from lstm_textgen.errors import TextgenError, setting
from lstm_textgen.generation.settings import (
    MAX_PROMPT_CHARS,
    MAX_SEED,
    SETTINGS,
    START_STEP,
    SamplingSettings,
    export_inputs,
)

# Why a row ended, in the order of the codes the sampling loop returns.
FINISH_REASONS = ("length", "stop", "end")
FINISH_LENGTH, FINISH_STOP, FINISH_END = range(3)


def model_key(vocab, num_layers: int, units: int) -> str:
    """What tells one model's states from another's: its layers, units and vocabulary
    (two models of the same shape and vocabulary, e.g. a run's best and last checkpoints,
    share it: a state moves between them unnoticed)."""
    characters = "".join(vocab.characters) + (vocab.end_of_item or "")
    digest = hashlib.sha256(characters.encode("utf-8")).hexdigest()[:12]
    return f"{num_layers}x{units}:{digest}"


@dataclass(frozen=True, eq=False)
class GenerationState:
    """Where one row's generation ended, to continue from: the LSTM state after its last
    pick (`h`, `c`: float32 `[layers, units]`) and the step of its random stream that
    comes next. Treat it as opaque; pass it back as `GenerationRequest(state=...)`.

    The state has read every character the row generated, a stop string's and the
    end-of-item marker included (the text leaves those out).
    """

    h: np.ndarray
    c: np.ndarray
    step: int
    model: str | None = None  # `model_key` of the model that made it; None: unknown


@dataclass(frozen=True)
class Completion:
    """The generated text of one prompt (the prompt not included) and why it ended:
    `length` (num_chars reached), `stop` (right before a stop string, which is left out)
    or `end` (the model ended the item).

    `state` continues the text (None from an export that predates continuation).
    `logprobs[i]` is the log-probability (nats) of character i under the distribution it
    was sampled from, after temperature and filters (0 for a greedy row, whose picks are
    certain); `model_logprobs[i]` under the model's own distribution. Two completions are
    equal when their texts and finish reasons are.
    """

    text: str
    finish_reason: str
    state: GenerationState | None = field(default=None, compare=False, repr=False)
    logprobs: tuple[float, ...] = field(default=(), compare=False, repr=False)
    model_logprobs: tuple[float, ...] = field(default=(), compare=False, repr=False)

    @property
    def logprob_sum(self) -> float:
        """The log-probability of the text under the distributions it was sampled from."""
        return float(sum(self.logprobs))

    @property
    def model_logprob_sum(self) -> float:
        """The log-probability of the text under the model (after the prompt)."""
        return float(sum(self.model_logprobs))


def completion_from_row(
    text: str, finish_reason: str, outputs: dict | None, row: int, model: str | None
) -> Completion:
    """A `Completion` of one row of a generation's outputs: `h`, `c` `[B, layers, units]`,
    `next_step [B]`, `logprobs` and `model_logprobs` `[B, T]` (arrays or lists); outputs
    None (an export that predates them) gives text and finish reason alone."""
    if outputs is None:
        return Completion(text, finish_reason)
    length = len(text)
    state = GenerationState(
        np.asarray(outputs["h"][row], np.float32),
        np.asarray(outputs["c"][row], np.float32),
        int(outputs["next_step"][row]),
        model,
    )
    return Completion(
        text,
        finish_reason,
        state,
        tuple(float(x) for x in outputs["logprobs"][row][:length]),
        tuple(float(x) for x in outputs["model_logprobs"][row][:length]),
    )


@dataclass(frozen=True)
class CheckedRequest:
    """A request as a backend runs it: the part of each prompt that primes the state and
    each row's checked `SamplingSettings`, every seed set."""

    prompts: tuple[str, ...]
    rows: tuple[SamplingSettings, ...]
    states: tuple[GenerationState, ...] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def signature(self) -> str:
        """The export's signature that runs it: `continue` for a continued request."""
        return "serving_default" if self.states is None else "continue"

    def column(self, name: str) -> list:
        """One setting's value of every row."""
        return [row[name] for row in self.rows]

    def export_inputs(self) -> dict[str, list]:
        """The columns of the request to the export's `signature`: those of
        `settings.export_inputs`, and for a continuation each row's `h`, `c` and
        `start_step`."""
        inputs = export_inputs(list(self.prompts), list(self.rows))
        if self.states is not None:
            inputs["h"] = [s.h.tolist() for s in self.states]
            inputs["c"] = [s.c.tolist() for s in self.states]
            inputs[START_STEP.name] = [s.step for s in self.states]
        return inputs


class GenerationRequest:
    """What to generate: one row per prompt, with the settings of `generation.settings`.

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
        state: continue each row from a `GenerationState` (`Completion.state`): one for
            every row, or a list with one per prompt. The prompt is then read on from
            that state (an items model adds no end-of-item marker before it), and the
            random stream goes on where it ended: with the same settings and seed, the
            text is what one longer request would have given.

    One seed for several rows gives row r the seed `seed + r`; a continuation should
    give each row the seed it had, as a list of seeds (a state does not keep its seed:
    another seed goes on with another random stream).

    Example:

    >>> request = GenerationRequest(["ROMEO:", "JULIET:"], num_chars=200, stop=["\\n\\n"])
    >>> request.checked().column("seed")  # doctest: +SKIP
    [1234, 1235]
    """

    def __init__(self, prompts, *, settings=None, state=None, **values):
        if isinstance(prompts, (bytes, bytearray)) or not isinstance(prompts, str | Iterable):
            raise TextgenError(
                f"prompts must be a string or a list of strings, got {_kind(prompts)}"
            )
        self.prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if settings is not None and values:
            raise TextgenError("give settings or the settings by name, not both")
        self.settings = settings
        self.state = state
        self.values = values
        self._checked = None

    def __len__(self) -> int:
        return len(self.prompts)

    def checked(self) -> CheckedRequest:
        """The checked request (computed once, so a random seed is drawn once)."""
        if self._checked is None:
            self._checked = _checked(self)
        return self._checked


def _kind(value) -> str:
    """What a value is, for an error: its type, and how to mend bytes."""
    if isinstance(value, (bytes, bytearray)):
        return f"{type(value).__name__}; decode it first (e.g. prompt.decode('utf-8'))"
    return type(value).__name__


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
            raise TextgenError(f"a prompt must be a string, got {_kind(p)}")
    values = _row_values(request, rows)
    seeds = _seeds(request, [v.get("seed") for v in values], rows)
    checked = tuple(SamplingSettings(**{**v, "seed": s}) for v, s in zip(values, seeds))
    states = None if request.state is None else _states(request.state, rows)
    prompts = tuple(prompt_tail(without_surrogates(p)) for p in request.prompts)
    return CheckedRequest(prompts, checked, states)


def _states(given, rows: int) -> tuple[GenerationState, ...]:
    """One checked `GenerationState` per row, all of one model."""
    states = []
    for s in _per_row("state", given, rows):
        if not isinstance(s, GenerationState):
            raise TextgenError(
                f"a state must be a GenerationState (a Completion's .state), got "
                f"{type(s).__name__}; a completion without one came from an export that "
                "predates continuation: export the run again"
            )
        try:
            h, c = np.asarray(s.h, np.float32), np.asarray(s.c, np.float32)
        except (TypeError, ValueError):
            raise TextgenError("a state's h and c must be arrays of numbers") from None
        s = GenerationState(h, c, START_STEP.check(s.step), s.model)
        if not (np.isfinite(h).all() and np.isfinite(c).all()):
            raise TextgenError(
                "a state's h and c must be finite numbers, and this one holds NaN or "
                "infinity: it is damaged; continue from a completion's .state"
            )
        states.append(s)
        if s.h.ndim != 2 or s.h.shape != s.c.shape:
            raise TextgenError(
                f"a state's h and c are [layers, units], got {list(s.h.shape)} and "
                f"{list(s.c.shape)}"
            )
    if len({(s.h.shape, s.model) for s in states}) > 1:
        raise TextgenError("the rows' states come from different models; continue each on its own")
    return tuple(states)


def without_surrogates(text: str) -> str:
    """`text` without lone surrogates: what Python makes of bytes that are not UTF-8 (a
    command line's `surrogateescape`) is no character of any vocabulary, so a prompt skips
    it like any character the model never saw (and the warning names it)."""
    return _SURROGATES.sub("", text)


_SURROGATES = re.compile("[\ud800-\udfff]")


def prompt_tail(prompt: str) -> str:
    """The part of a prompt that primes the state: its last `MAX_PROMPT_CHARS` characters."""
    return prompt[-MAX_PROMPT_CHARS:]
