"""The generation settings: one table from which every path takes their names, types,
defaults and limits.

Nothing here imports TensorFlow. `SETTINGS` is the table; everything else is derived from
it: `SamplingSettings` (one row's checked settings, frozen), the `generate` command's
flags, the columns of a SavedModel request (`export_inputs`, which the REST client and
TF Serving's warmup file send), the input signatures of the SavedModel and LiteRT exports
(`lstm_textgen.generation.graph.generate_spec`, `lstm_textgen.export.litert`), the checks those
exports run in their graphs (`lstm_textgen.export.saved_model`), and the per-batch tensors of the
sampling loop (`lstm_textgen.generation.samplers.SamplingBatch`). A limit therefore exists once and
reads the same in a Python error, a CLI error and an INVALID_ARGUMENT from TF Serving.

Adding a setting is one entry in `SETTINGS` (a field of `SamplingBatch` if the sampling
loop needs it) and its use in `lstm_textgen.generation.samplers`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

from lstm_textgen.errors import TextgenError, setting

MAX_NUM_CHARS = 10_000  # characters generated per row
MAX_PROMPT_CHARS = 1_000  # the last characters of a prompt that prime the state
MAX_STOP_STRINGS = 4  # stop strings per row
MAX_STOP_CHARS = 16  # characters per stop string
MAX_SEED = 2**31 - 1  # seeds are 31-bit: the counter-based stream hashes them as uint32
# A continuation's first step of the random stream; with MAX_NUM_CHARS more it stays int32.
MAX_START_STEP = 2**31 - 1 - MAX_NUM_CHARS
# How long a request to a TF Serving server may take by default, from connecting to the
# reply's last byte: a server that answers a byte at a time is cut off then.
SERVER_DEADLINE = 120.0


@dataclass(frozen=True)
class Setting:
    """One generation setting: one row's value, checked the same way on every path.

    Args:
        name: the Python argument, the export's input and (with dashes) the CLI flag.
        dtype: the export's input dtype ("int32", "int64", "float32" or "string").
        default: the value when none is given (None for `seed`: drawn at random).
        limits: how the allowed values read in every error ("`name` must be `limits`").
        help: the CLI help.
        minimum, maximum: the bounds of a number (None: unbounded).
        minimum_excluded: the minimum itself is not allowed.
        in_graph: what an export does with a value outside the limits: "check" fails the
            request (INVALID_ARGUMENT), "clamp" brings it to the nearest limit.
        metavar: the CLI's placeholder.
    """

    name: str
    dtype: str
    default: object
    limits: str
    help: str
    minimum: float | None = None
    maximum: float | None = None
    minimum_excluded: bool = False
    in_graph: str = "check"
    metavar: str | None = None

    @property
    def is_integer(self) -> bool:
        return self.dtype.startswith("int")

    @property
    def is_number(self) -> bool:
        return self.dtype != "string"

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def message(self) -> str:
        """The error of a value outside the limits, without the value (the graph's)."""
        return f"{self.name} must be {self.limits}"

    def allows(self, value) -> bool:
        """Whether a number is within the limits (a finite number of the right kind)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if not math.isfinite(value) or self.is_integer and int(value) != value:
            return False
        if self.minimum is not None and (
            value < self.minimum or self.minimum_excluded and value == self.minimum
        ):
            return False
        return self.maximum is None or value <= self.maximum

    def check(self, value):
        """`value`, of the setting's Python type, or a one-line error naming the limits."""
        if not self.is_number:
            return check_stop_strings(value)
        if not self.allows(value):
            raise TextgenError(f"{setting(self.name)} must be {self.limits}, got {value}")
        return int(value) if self.is_integer else float(value)


def check_stop_strings(stops) -> tuple[str, ...]:
    """One row's stop strings, checked against the limits of `stop`."""
    stops = (stops,) if isinstance(stops, str) else tuple(stops)
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


# The table, in the order of the exports' inputs (after `prompt`).
SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting(
            "num_chars",
            "int32",
            500,
            f"0 to {MAX_NUM_CHARS:,} per row",
            "characters to generate",
            minimum=0,
            maximum=MAX_NUM_CHARS,
            in_graph="clamp",
        ),
        Setting(
            "temperature",
            "float32",
            1.0,
            "finite and >= 0 (0 is greedy)",
            "0 is greedy; higher is more random",
            minimum=0.0,
        ),
        Setting(
            "top_k",
            "int32",
            0,
            ">= 0 (0 turns it off)",
            "sample among the K likeliest characters; 0 = all",
            minimum=0,
            metavar="K",
        ),
        Setting(
            "top_p",
            "float32",
            1.0,
            "in (0, 1] (1 turns it off)",
            "sample from the smallest set of characters with probability >= P; 1 = all",
            minimum=0.0,
            maximum=1.0,
            minimum_excluded=True,
            metavar="P",
        ),
        Setting(
            "seed",
            "int64",
            None,
            f"0 to {MAX_SEED:,} (2**31 - 1)",
            "random seed, for reproducible text (default: random); row r of a batch gets seed + r",
            minimum=0,
            maximum=MAX_SEED,
        ),
        Setting(
            "stop",
            "string",
            (),
            f"up to {MAX_STOP_STRINGS} strings per row, each 1 to {MAX_STOP_CHARS} characters",
            "end a sample right before this string, which is left out (repeatable: up to "
            f"{MAX_STOP_STRINGS} strings of 1 to {MAX_STOP_CHARS} characters); "
            "e.g. --stop $'\\n\\n'",
            metavar="STR",
        ),
    )
}


# Not a setting of a request but of a continuation, where its random stream goes on: the
# `start_step` input of the continuation signatures, checked as the settings are.
START_STEP = Setting(
    "start_step",
    "int32",
    0,
    f"0 to {MAX_START_STEP:,}",
    "the step of the random stream a continuation starts at",
    minimum=0,
    maximum=MAX_START_STEP,
)


def numbers() -> list[Setting]:
    """The settings that are one number per row (all but `stop`)."""
    return [s for s in SETTINGS.values() if s.is_number]


class SamplingSettings(Mapping):
    """One row's generation settings, checked against `SETTINGS` and frozen.

    Reads as attributes (`settings.temperature`) and as a mapping of every setting. A
    setting not given takes its default; `seed` may stay None (a `GenerationRequest`
    draws one).

    Example:

    >>> SamplingSettings(temperature=0.8, stop=["\\n\\n"]).stop
    ('\\n\\n',)
    """

    __slots__ = ("_values",)

    def __init__(self, **values):
        unknown = sorted(set(values) - set(SETTINGS))
        if unknown:
            raise TextgenError(
                f"unknown generation setting {unknown[0]!r}; the settings are {', '.join(SETTINGS)}"
            )
        checked = {}
        for name, spec in SETTINGS.items():
            value = values.get(name, spec.default)
            checked[name] = value if value is None else spec.check(value)
        object.__setattr__(self, "_values", checked)

    def __getattr__(self, name):
        if name.startswith("_") or name not in SETTINGS:
            raise AttributeError(name)
        return self._values[name]

    def __setattr__(self, name, value):
        raise dataclasses.FrozenInstanceError(f"cannot assign to {name}: settings are frozen")

    def __getitem__(self, name):
        return self._values[name]

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)

    def __eq__(self, other):
        return isinstance(other, SamplingSettings) and self._values == other._values

    def __hash__(self):
        return hash(tuple(self._values.items()))

    def __repr__(self):
        inner = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"SamplingSettings({inner})"

    def __reduce__(self):  # copies and pickles are made anew, and checked again
        return (_settings_of, (dict(self._values),))

    def replace(self, **changes) -> SamplingSettings:
        """A copy with `changes`, checked again."""
        return SamplingSettings(**{**self._values, **changes})


def _settings_of(values: dict) -> SamplingSettings:
    return SamplingSettings(**values)


def stop_matrix(stops) -> list[list[str]]:
    """Each row's stop strings padded with empty (unused) slots to `MAX_STOP_STRINGS`: the
    `stop` input of an export's `serving_default`."""
    return [list(row) + [""] * (MAX_STOP_STRINGS - len(row)) for row in stops]


def export_inputs(prompts: list[str], rows: list[SamplingSettings]) -> dict[str, list]:
    """The inputs of a SavedModel's `serving_default` for these rows, as JSON-ready
    columns: `prompt`, then one list per setting (stop strings padded to
    `MAX_STOP_STRINGS`). Every row's seed must be set."""
    if any(row.seed is None for row in rows):
        raise TextgenError("every row needs its seed; a GenerationRequest draws them")
    inputs = {"prompt": list(prompts)}
    for name, spec in SETTINGS.items():
        column = [row[name] for row in rows]
        inputs[name] = stop_matrix(column) if not spec.is_number else column
    return inputs
