"""Run a SavedModel written by `lstm-textgen export` in this process: generation from its
`serving_default` and `continue` signatures, and the vocabulary stored beside it.

The writer is `lstm_textgen.export`; what TF Serving loads is the same folder.
"""

from __future__ import annotations

import os

import tensorflow as tf

from lstm_textgen.errors import TextgenError, first_line
from lstm_textgen.request import (
    CheckedRequest,
    Completion,
    Generator,
    completion_from_row,
    model_key,
)
from lstm_textgen.sources import EXPORT_EXTRA_DIR, latest_version
from lstm_textgen.vocab import CharVocabulary


class SavedModelGenerator(Generator):
    """Generation from an export's `serving_default` and `continue` signatures, run in
    this process. An export that predates continuation generates, but its completions
    carry no state or log-probabilities.

    Args:
        saved_model: `saved_models/NAME` (its latest version) or one version folder.
    """

    source = "SavedModel"

    def __init__(self, saved_model: str):
        path = latest_version(saved_model)
        try:
            loaded = tf.saved_model.load(path)
        except Exception as e:  # a damaged export fails in many ways inside TensorFlow
            raise TextgenError(f"cannot load SavedModel {path}: {first_line(e)}") from None
        if "serving_default" not in loaded.signatures:
            raise TextgenError(f"{path} has no serving_default signature")
        self.path = path
        self._loaded = loaded  # the signature needs its object alive
        self.signature = loaded.signatures["serving_default"]
        self.specs = self.signature.structured_input_signature[1]
        if "stop" not in self.specs or "finish_reason" not in self.signature.structured_outputs:
            raise TextgenError(
                f"{path} is an export from an earlier lstm-textgen, without stop strings, "
                "finish reasons or the shared random stream; export the run again"
            )
        self.vocab = export_vocabulary(path)
        self.can_continue = "continue" in loaded.signatures
        if self.can_continue:
            _, layers, units = self.signature.structured_outputs["h"].shape
            self.state_shape = (layers, units)
            if self.vocab is not None:
                self.model_key = model_key(self.vocab, layers, units)

    def _complete(self, request: CheckedRequest) -> list[Completion]:
        if request.states is not None and not self.can_continue:
            raise TextgenError(
                f"{self.path} is an export from an earlier lstm-textgen, without "
                "continuation; export the run again"
            )
        signature = self._loaded.signatures[request.signature]
        specs = signature.structured_input_signature[1]
        inputs = request.export_inputs()
        try:
            out = signature(
                **{name: tf.constant(v, specs[name].dtype) for name, v in inputs.items()}
            )
        except tf.errors.InvalidArgumentError as e:
            raise TextgenError(f"{self.path} refused the request: {first_line(e)}") from None
        out = {name: value.numpy() for name, value in out.items()}
        full = out if "next_step" in out else None
        return [
            completion_from_row(t.decode("utf-8", "replace"), r.decode(), full, row, self.model_key)
            for row, (t, r) in enumerate(zip(out["text"], out["finish_reason"]))
        ]


def export_vocabulary(saved_model: str) -> CharVocabulary | None:
    """The vocabulary stored beside an export, or None if it has none."""
    extra = os.path.join(latest_version(saved_model), EXPORT_EXTRA_DIR)
    if not os.path.isfile(os.path.join(extra, "vocab.json")):
        return None
    return CharVocabulary.load(extra)
