"""Export a trained run as a LiteRT model (`.tflite`) for devices: builtin ops only, its
vocabulary and config embedded as metadata. `lstm_textgen.generation.backends.litert` runs
it without TensorFlow."""

from __future__ import annotations

import json
import os
import tempfile

import tensorflow as tf

from lstm_textgen.config import ModelConfig
from lstm_textgen.data.vocab import UNKNOWN_ID, CharVocabulary
from lstm_textgen.errors import TextgenError, setting
from lstm_textgen.export.model import export_model
from lstm_textgen.files import atomic_path
from lstm_textgen.generation.backends.litert import (
    CHECKSUM_PLACEHOLDER,
    METADATA_NAME,
    with_checksum,
)
from lstm_textgen.generation.sample_loop import sample_loop
from lstm_textgen.generation.samplers import sampling_batch
from lstm_textgen.generation.settings import (
    MAX_NUM_CHARS,
    MAX_START_STEP,
    MAX_STOP_CHARS,
    MAX_STOP_STRINGS,
    numbers,
)
from lstm_textgen.generation.signature_state import (
    row_spec,
    stacked_state,
    state_spec,
    unstacked_state,
)
from lstm_textgen.model import stepping
from lstm_textgen.model.language_model import CharLanguageModel

LITERT_SIGNATURES = ("step", "prime", "generate")
QUANTIZE_CHOICES = ("dynamic",)


class LiteRTFunctions:
    """The LiteRT signatures, written in ops that LiteRT has as builtins (no Flex).

    There is no masking: a batch's prompts share one length, and characters outside the
    vocabulary are dropped by the caller before `prime` or `generate`.
    """

    def __init__(self, model: CharLanguageModel, vocab: CharVocabulary):
        self.model = model
        self.end_id = vocab.end_id
        # The weights as constants: the converter then writes them into the flatbuffer
        # (variables would be left as uninitialised LiteRT resource variables).
        self.weights = tf.nest.map_structure(
            lambda w: tf.constant(w.numpy()), stepping.step_weights(model)
        )

    def _step(self, ids, state):
        return stepping.step(self.model, ids, state, self.weights)

    def step(self, ids, h, c):
        state = unstacked_state(h, c, self.model.num_layers)
        logits, state = self._step(ids, state)
        return {"logits": logits, **stacked_state(state)}

    def _prime(self, ids, h, c):
        state = unstacked_state(h, c, self.model.num_layers)
        logits = stepping.next_logits(self.model, state, self.weights.head)

        def body(t, logits, state):
            logits, state = self._step(ids[:, t], state)
            return t + 1, logits, state

        _, logits, state = tf.while_loop(
            lambda t, *_: t < tf.shape(ids)[1], body, (tf.constant(0), logits, state)
        )
        return logits, state

    def prime(self, ids, h, c):
        logits, state = self._prime(ids, h, c)
        return {"logits": logits, **stacked_state(state)}

    def generate(self, ids, *inputs):
        """`generate_inputs`' inputs after the prompt ids: each number setting, the stop
        strings as ids and lengths, then the state and start step."""
        *values, stop_ids, stop_lengths, h, c, start_step = inputs
        logits, state = self._prime(ids, h, c)
        settings = dict(zip((spec.name for spec in numbers()), values))
        batch = sampling_batch(logits, settings, stop_ids, stop_lengths, self.end_id, start_step)
        out = sample_loop(self._step, logits, state, batch, portable=True)
        return {
            "ids": out.ids,
            "length": out.lengths,
            "finish": out.finish,
            **stacked_state(out.state),
            "steps": out.steps,
            "logprobs": out.logprobs,
            "model_logprobs": out.model_logprobs,
        }

    def signatures(self, config: ModelConfig):
        """`{name: (function, input signature)}` of every LiteRT signature."""
        row, state = row_spec, lambda name: state_spec(config, name)  # noqa: E731
        prompt = tf.TensorSpec([None, None], tf.int32, name="ids")
        return {
            "step": (self.step, [row(tf.int32, "ids"), state("h"), state("c")]),
            "prime": (self.prime, [prompt, state("h"), state("c")]),
            "generate": (
                self.generate,
                [prompt, *generate_inputs(), state("h"), state("c"), row(tf.int32, "start_step")],
            ),
        }


def generate_inputs():
    """The inputs of LiteRT's `generate` after the prompt ids: each number setting of
    `settings.SETTINGS` as `[B]` int32 or float32 (LiteRT takes no int64), then the stop
    strings as ids (`stop_ids [B, S, L]`, left-aligned) and `stop_lengths [B, S]`."""
    return [
        row_spec(tf.int32 if spec.is_integer else tf.float32, spec.name) for spec in numbers()
    ] + [
        tf.TensorSpec([None, MAX_STOP_STRINGS, MAX_STOP_CHARS], tf.int32, name="stop_ids"),
        tf.TensorSpec([None, MAX_STOP_STRINGS], tf.int32, name="stop_lengths"),
    ]


def _with_metadata(flatbuffer: bytes, name: str, payload: bytes) -> bytes:
    """`flatbuffer` with a metadata entry `name` holding `payload`."""
    import numpy as np
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(payload, np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = name
    entry.buffer = len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def export_litert(
    run_dir: str, path: str, checkpoint: str = "best", quantize: str | None = None
) -> str:
    """Write the run's model to `path` (a `.tflite` file) for LiteRT's interpreter.

    Signatures (builtin ops only):
    - `step`: `ids` int32 [B], `h` and `c` float32 [B, layers, units] -> `logits` [B, V],
      `h`, `c`: the SavedModel's `step`.
    - `prime`: `ids` int32 [B, T] (prompts of one length), `h`, `c` (the state they
      start from; zeros: the initial state) -> `logits`, `h`, `c` after them.
    - `generate`: `ids` [B, T], `num_chars`, `temperature`, `top_k`, `top_p`, `seed`
      (int32) [B], `stop_ids` int32 [B, MAX_STOP_STRINGS, MAX_STOP_CHARS] (left-aligned),
      `stop_lengths` int32 [B, MAX_STOP_STRINGS] (0: unused), `h`, `c` (where the prompts
      start) and `start_step` int32 [B] (the first step of each row's random stream) ->
      `ids` int32 [B, max(num_chars)], `length` int32 [B] (the ids of each row's text),
      `finish` int32 [B] (an index into `request.FINISH_REASONS`), `h`, `c` and `steps`
      int32 [B] (each row's state after its picks, and how many it made), `logprobs` and
      `model_logprobs` float32 [B, max(num_chars)]: the sampling loop of every backend,
      in one call.

    The vocabulary and model config are embedded as JSON metadata named `lstm_textgen`.
    `quantize="dynamic"` stores the weights as int8 (dynamic-range quantization). The file
    appears whole or not at all.
    """
    if not path.endswith(".tflite"):
        raise TextgenError(f"a LiteRT model file ends in .tflite, got {path}")
    if quantize not in (None, *QUANTIZE_CHOICES):
        raise TextgenError(f"{setting('quantize')} must be one of {', '.join(QUANTIZE_CHOICES)}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise TextgenError(f"folder {folder} does not exist; create it first")
    trained = export_model(run_dir, checkpoint)
    model, vocab, model_config = trained.model, trained.vocab, trained.model_config
    functions = LiteRTFunctions(model, vocab)

    module = tf.Module()
    concrete = {
        name: tf.function(fn, input_signature=spec).get_concrete_function()
        for name, (fn, spec) in functions.signatures(model_config).items()
    }
    with tempfile.TemporaryDirectory(prefix="lstm-textgen-litert-") as tmp:
        tf.saved_model.save(module, tmp, signatures=concrete)
        converter = tf.lite.TFLiteConverter.from_saved_model(
            tmp, signature_keys=list(LITERT_SIGNATURES)
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize == "dynamic":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        flatbuffer = converter.convert()
    metadata = {
        "format": "lstm-textgen LiteRT",
        "vocabulary": {
            "unknown_id": UNKNOWN_ID,
            "characters": vocab.characters,
            "end_of_item": vocab.end_of_item,
        },
        "model": model_config.__dict__,
        "quantize": quantize or "none",
        "max_num_chars": MAX_NUM_CHARS,
        "max_stop_strings": MAX_STOP_STRINGS,
        "max_stop_chars": MAX_STOP_CHARS,
        "max_start_step": MAX_START_STEP,
        "signatures": list(LITERT_SIGNATURES),
        "checksum": CHECKSUM_PLACEHOLDER,
    }
    payload = json.dumps(metadata, ensure_ascii=False).encode("utf-8")
    flatbuffer = with_checksum(_with_metadata(flatbuffer, METADATA_NAME, payload))
    try:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                f.write(flatbuffer)
    except OSError as e:
        raise TextgenError(f"could not write {path}: {e.strerror or e}") from None
    return path
