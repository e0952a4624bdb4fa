"""Run a SavedModel written by `lstm-textgen export` in this process: generation from its
`serving_default` signature, and the vocabulary stored beside it.

The writer is `lstm_textgen.export`; what TF Serving loads is the same folder.
"""

from __future__ import annotations

import os

import tensorflow as tf

from lstm_textgen.errors import TextgenError, first_line
from lstm_textgen.request import CheckedRequest, Completion, Generator
from lstm_textgen.sources import EXPORT_EXTRA_DIR, latest_version
from lstm_textgen.vocab import CharVocabulary


class SavedModelGenerator(Generator):
    """Generation from an export's `serving_default` signature, run in this process.

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

    def _complete(self, request: CheckedRequest) -> list[Completion]:
        inputs = request.export_inputs()
        try:
            out = self.signature(
                **{name: tf.constant(v, self.specs[name].dtype) for name, v in inputs.items()}
            )
        except tf.errors.InvalidArgumentError as e:
            raise TextgenError(f"{self.path} refused the request: {first_line(e)}") from None
        return [
            Completion(t.decode("utf-8", "replace"), r.decode())
            for t, r in zip(out["text"].numpy(), out["finish_reason"].numpy())
        ]


def export_vocabulary(saved_model: str) -> CharVocabulary | None:
    """The vocabulary stored beside an export, or None if it has none."""
    extra = os.path.join(latest_version(saved_model), EXPORT_EXTRA_DIR)
    if not os.path.isfile(os.path.join(extra, "vocab.json")):
        return None
    return CharVocabulary.load(extra)
