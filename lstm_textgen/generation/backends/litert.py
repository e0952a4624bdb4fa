"""Run a LiteRT model written by `lstm-textgen export --litert` with LiteRT's interpreter.

This module needs `ai-edge-litert` (the `litert` extra) and NumPy, and no TensorFlow:
it is what an app does on a device, in Python. The model file is self-contained: its
vocabulary and config are a JSON metadata entry named `lstm_textgen` (`read_metadata`).

Example:

>>> model = LiteRTModel("shakespeare.tflite")
>>> model.generate(["ROMEO:"], num_chars=100, temperature=0.8, seed=1)
"""

from __future__ import annotations

import hashlib
import json
import os
from itertools import groupby

import numpy as np

from lstm_textgen.config import model_config_of
from lstm_textgen.data.vocab import UNKNOWN_ID, CharVocabulary
from lstm_textgen.errors import TextgenError, first_line, quiet_stderr_fd
from lstm_textgen.generation.generator import Generator
from lstm_textgen.generation.request import (
    FINISH_REASONS,
    CheckedRequest,
    Completion,
    completion_from_row,
    model_key,
)
from lstm_textgen.generation.scoring import Scorer, log_softmax
from lstm_textgen.generation.settings import MAX_STOP_CHARS, MAX_STOP_STRINGS, numbers

METADATA_NAME = "lstm_textgen"


def _litert():
    """The `ai_edge_litert` package, or a one-line error that says how to install it."""
    try:
        import ai_edge_litert.interpreter
        import ai_edge_litert.schema_py_generated
    except ImportError:
        raise TextgenError(
            "LiteRT's interpreter is not installed; pip install 'lstm-textgen[litert]' "
            "(or ai-edge-litert)"
        ) from None
    return ai_edge_litert


# A LiteRT export's metadata holds the sha256 of the whole file, taken with this in place
# of the digest (the digest cannot hash itself).
CHECKSUM_PLACEHOLDER = "0" * 64


def _checksum_field(digest: str) -> bytes:
    """The checksum as the metadata's JSON holds it."""
    return f'"checksum": "{digest}"'.encode()


def file_checksum(content: bytes, digest: str = CHECKSUM_PLACEHOLDER) -> str:
    """The sha256 of a LiteRT file's `content` whose metadata holds `digest`, taken with
    the placeholder in the digest's place."""
    blank = _checksum_field(CHECKSUM_PLACEHOLDER)
    return hashlib.sha256(content.replace(_checksum_field(digest), blank, 1)).hexdigest()


def with_checksum(content: bytes) -> bytes:
    """`content` (metadata holding the placeholder) with its checksum written in."""
    blank = _checksum_field(CHECKSUM_PLACEHOLDER)
    return content.replace(blank, _checksum_field(file_checksum(content)), 1)


def read_metadata(path: str) -> dict:
    """The JSON metadata (`vocabulary`, `model`, ...) embedded in a LiteRT export, after
    checking the file against its checksum where the metadata holds one."""
    schema = _litert().schema_py_generated

    try:
        with open(path, "rb") as f:
            content = f.read()
        model = schema.Model.GetRootAs(content, 0)
        metadata = None
        for k in range(model.MetadataLength()):
            entry = model.Metadata(k)
            if entry.Name() == METADATA_NAME.encode():
                data = model.Buffers(entry.Buffer()).DataAsNumpy()
                metadata = json.loads(bytes(data).decode("utf-8"))
    except OSError as e:
        raise TextgenError(f"cannot read {path}: {e.strerror}") from None
    except Exception:  # a file that is not a flatbuffer fails in many ways
        raise TextgenError(f"{path} is not a LiteRT model file") from None
    if metadata is None:
        raise TextgenError(
            f"{path} has no {METADATA_NAME} metadata; write it with `lstm-textgen export --litert`"
        )
    digest = metadata.get("checksum") if isinstance(metadata, dict) else None
    if digest is not None and file_checksum(content, str(digest)) != digest:
        raise TextgenError(
            f"{path} changed since it was exported (its checksum differs); the file is "
            "damaged: export the run again"
        )
    return metadata


class LiteRTModel(Generator, Scorer):
    """A LiteRT export: its signatures as NumPy functions, and text generation with the
    request, prompt policy and random stream of every other backend.

    Args:
        path: the `.tflite` file.
        num_threads: the interpreter's threads (default: one per core this process may
            use, rather than LiteRT's default; see docs/performance.md).
    """

    source = "LiteRT"

    def __init__(self, path: str, num_threads: int | None = None):
        if num_threads is None:
            cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
            num_threads = len(cores) if cores else os.cpu_count() or 1
        if os.path.isdir(path):
            found = sorted(name for name in os.listdir(path) if name.endswith(".tflite"))
            hint = f" (it holds {', '.join(found)})" if found else ""
            raise TextgenError(
                f"LiteRT model {path} is a folder{hint}; give the .tflite file itself"
            )
        if not os.path.isfile(path):
            raise TextgenError(f"LiteRT model {path} does not exist")
        litert = _litert()
        metadata = read_metadata(path)
        self.path = path
        self.config = model_config_of(metadata["model"], path)
        vocabulary = metadata["vocabulary"]
        self.vocab = CharVocabulary(
            vocabulary["characters"], vocabulary.get("end_of_item"), keep_order=True
        )
        self.max_num_chars = metadata["max_num_chars"]
        if "max_start_step" not in metadata:
            raise TextgenError(
                f"{path} is a LiteRT export from an earlier lstm-textgen, without "
                "continuation or log-probabilities; export the run again"
            )
        self.model_key = model_key(self.vocab, *self.state_shape)
        try:
            self.interpreter = litert.interpreter.Interpreter(
                model_path=path, num_threads=num_threads
            )
            self._runners = {
                name: self.interpreter.get_signature_runner(name) for name in metadata["signatures"]
            }
            # LiteRT logs a line on stderr as its first call starts the CPU delegate:
            # make that call here, quietly.
            with quiet_stderr_fd():
                logits, _, _ = self.step(np.zeros(1, np.int32), *self.initial_state(1))
        except (ValueError, RuntimeError, KeyError) as e:
            raise TextgenError(
                f"LiteRT cannot run {path} as an lstm-textgen export: {first_line(e)}"
            ) from None
        if logits.shape[-1] != self.vocab.size:
            raise TextgenError(
                f"{path}'s metadata has a vocabulary of {self.vocab.size} ids, but its graph "
                f"predicts {logits.shape[-1]}; the file is damaged: export the run again"
            )

    @property
    def state_shape(self):
        return (self.config.num_layers, self.config.units)

    def initial_state(self, batch: int):
        zeros = np.zeros((batch, *self.state_shape), np.float32)
        return zeros, zeros.copy()

    def step(self, ids, h, c):
        """`ids [B]`, `h`, `c` `[B, layers, units]` -> `(logits [B, V], h, c)`."""
        out = self._runners["step"](ids=np.asarray(ids, np.int32), h=h, c=c)
        return out["logits"], out["h"], out["c"]

    def prime(self, ids, h=None, c=None):
        """Prompts of one length `ids [B, T]`, read from state `(h, c)` (the initial state
        when None) -> `(logits [B, V], h, c)` after them."""
        ids = np.asarray(ids, np.int32).reshape(len(ids), -1)
        if h is None:
            h, c = self.initial_state(len(ids))
        out = self._runners["prime"](
            ids=ids, h=np.asarray(h, np.float32), c=np.asarray(c, np.float32)
        )
        return out["logits"], out["h"], out["c"]

    def logits_and_state(self, ids, h, c):
        """Logits `[B, T, V]` of every position of `ids [B, T]` from state (h, c), step by
        step, and the state after the last: text scored piece by piece."""
        ids = np.asarray(ids, np.int32)
        logits = []
        for t in range(ids.shape[1]):
            step_logits, h, c = self.step(ids[:, t], h, c)
            logits.append(step_logits)
        return np.stack(logits, axis=1), h, c

    def char_log_probs(self, ids, state):
        """`Scorer.char_log_probs` through the `prime` and `step` signatures."""
        ids = np.asarray(ids, np.int32)
        h, c = state
        logits, h, c = self.prime(ids[:, :0], h, c)
        log_probs = []
        for t in range(ids.shape[1]):
            log_probs.append(log_softmax(logits)[np.arange(len(ids)), ids[:, t]])
            logits, h, c = self.step(ids[:, t], h, c)
        return np.stack(log_probs, axis=1) if log_probs else np.zeros((len(ids), 0)), (h, c)

    def summed_loss(self, x, y, state):
        """`Scorer.summed_loss` through the `step` signature; the state is `(h, c)`."""
        logits, h, c = self.logits_and_state(x, *state)
        picked = np.take_along_axis(log_softmax(logits), np.asarray(y)[..., None], axis=-1)
        return float(-picked.sum()), (h, c)

    def generate_ids(
        self, ids, settings: dict, stop_ids, stop_lengths, h=None, c=None, start_step=None
    ):
        """The `generate` signature: prompts of one length `ids [B, T]` (ids of known
        characters only), `settings` `{name: [B]}` of each number setting of
        `settings.SETTINGS`, stop strings as `encode_stops` gives them, and where each row
        starts: state `(h, c)` `[B, layers, units]` and random-stream step `start_step [B]`
        (the initial state and 0 when None) -> the signature's outputs: `ids [B, N]`,
        `length`, `finish`, `h`, `c`, `steps`, `logprobs` and `model_logprobs`."""
        ids = np.asarray(ids, np.int32).reshape(len(ids), -1)
        rows = len(ids)
        if h is None:
            h, c = self.initial_state(rows)
        h, c = np.asarray(h, np.float32), np.asarray(c, np.float32)
        start_step = np.zeros(rows, np.int32) if start_step is None else start_step
        if max(settings["num_chars"], default=0) <= 0:
            # LiteRT's Python wrapper cannot read a zero-size output: the prompt alone.
            _, h, c = self.prime(ids, h, c)
            empty = np.zeros((rows, 0), np.float32)
            zeros = np.zeros(rows, np.int32)
            return {
                "ids": empty.astype(np.int32), "length": zeros, "finish": zeros, "h": h,
                "c": c, "steps": zeros, "logprobs": empty, "model_logprobs": empty,
            }  # fmt: skip
        return self._runners["generate"](
            ids=ids,
            **{
                spec.name: np.asarray(
                    settings[spec.name], np.int32 if spec.is_integer else np.float32
                )
                for spec in numbers()
            },
            stop_ids=np.asarray(stop_ids, np.int32),
            stop_lengths=np.asarray(stop_lengths, np.int32),
            h=h,
            c=c,
            start_step=np.asarray(start_step, np.int32),
        )

    def encode_stops(self, stops: list[list[str]]):
        """Rows of stop strings as `(stop_ids [B, S, L], stop_lengths [B, S])`; characters
        outside the vocabulary get id 0, which is never generated."""
        ids = np.zeros((len(stops), MAX_STOP_STRINGS, MAX_STOP_CHARS), np.int32)
        lengths = np.zeros((len(stops), MAX_STOP_STRINGS), np.int32)
        for r, row in enumerate(stops):
            for k, stop in enumerate(row):
                ids[r, k, : len(stop)] = self.vocab.encode(stop)
                lengths[r, k] = len(stop)
        return ids, lengths

    def _complete(self, request: CheckedRequest) -> list[Completion]:
        """Prompts of one length run as one batch (the `generate` signature has no mask)."""
        fresh = request.states is None
        start = [self.vocab.end_id] if fresh and self.vocab.end_id is not None else []
        encoded = [
            start + [i for i in self.vocab.encode(p) if i != UNKNOWN_ID] for p in request.prompts
        ]
        stop_ids, stop_lengths = self.encode_stops(request.column("stop"))
        completions = [None] * len(encoded)
        by_length = sorted(range(len(encoded)), key=lambda r: len(encoded[r]))
        for _, group in groupby(by_length, key=lambda r: len(encoded[r])):
            group = list(group)
            if fresh:
                h = c = None
                start_step = np.zeros(len(group), np.int32)
            else:
                h = np.stack([request.states[r].h for r in group])
                c = np.stack([request.states[r].c for r in group])
                start_step = np.array([request.states[r].step for r in group], np.int32)
            out = dict(
                self.generate_ids(
                    [encoded[r] for r in group],
                    {spec.name: [request.rows[r][spec.name] for r in group] for spec in numbers()},
                    stop_ids[group],
                    stop_lengths[group],
                    h,
                    c,
                    start_step,
                )
            )
            out["next_step"] = start_step + out["steps"]
            for k, r in enumerate(group):
                text = self.vocab.decode(out["ids"][k][: out["length"][k]])
                reason = FINISH_REASONS[out["finish"][k]]
                completions[r] = completion_from_row(text, reason, out, k, self.model_key)
        return completions
