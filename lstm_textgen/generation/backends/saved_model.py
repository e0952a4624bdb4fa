"""Run a SavedModel written by `lstm-textgen export` in this process: generation from its
`serving_default` and `continue` signatures (`SavedModelGenerator`) and scoring through its
`step` signature (`SavedModelScorer`). Both start TensorFlow.
"""

from __future__ import annotations

import os

import numpy as np

from lstm_textgen.errors import TextgenError, first_line
from lstm_textgen.generation.generator import Generator
from lstm_textgen.generation.request import (
    CheckedRequest,
    Completion,
    completion_from_row,
    model_key,
)
from lstm_textgen.generation.scoring import Scorer, log_softmax
from lstm_textgen.store.export_layout import (
    ExportMetadata,
    check_graph,
    export_vocabulary,
    latest_version,
    load,
    metadata_if_any,
)


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
        metadata = metadata_if_any(path)
        loaded = load(path, metadata)
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
        check_graph(path, loaded, metadata, self.vocab)
        self.can_continue = "continue" in loaded.signatures
        if self.can_continue:
            _, layers, units = self.signature.structured_outputs["h"].shape
            self.state_shape = (layers, units)
            if self.vocab is not None:
                self.model_key = model_key(self.vocab, layers, units)

    def _complete(self, request: CheckedRequest) -> list[Completion]:
        import tensorflow as tf

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


class SavedModelScorer(Scorer):
    """An export as a `Scorer`, run by its `step` signature one character at a time (as a
    client of TF Serving scores text from a state), not by a Keras model rebuilt from its
    weights. The state is `(h, c, logits)`: the logits are those of the next character,
    and the zero state's are the head's bias (its `h` is zero), read from the export.

    Args:
        saved_model: `saved_models/NAME` (its latest version) or one version folder.
    """

    def __init__(self, saved_model: str):
        import tensorflow as tf

        path = latest_version(saved_model)
        metadata = ExportMetadata.read(path)
        loaded = load(path, metadata)
        vocab = export_vocabulary(path)
        check_graph(path, loaded, metadata, vocab)
        bias_key = next((k for k, w in (metadata.weights or {}).items() if w == "logits/bias"), "")
        if "step" not in loaded.signatures or not bias_key:
            raise TextgenError(
                f"{path} is an export from an earlier lstm-textgen, which cannot be scored "
                "through its signatures; export the run again"
            )
        reader = tf.train.load_checkpoint(os.path.join(path, "variables", "variables"))
        self.path = path
        self.config = metadata.model_config(path)
        self.vocab = vocab
        self._loaded = loaded  # the signature needs its object alive
        self._step = loaded.signatures["step"]
        self._bias = reader.get_tensor(bias_key)
        self.state_shape = (self.config.num_layers, self.config.units)

    def initial_state(self, batch: int):
        zeros = np.zeros((batch, *self.state_shape), np.float32)
        return zeros, zeros.copy(), np.tile(self._bias, (batch, 1))

    def _read(self, ids, state):
        """The state after reading ids `[B]` from `state`."""
        h, c, _ = state
        out = self._step(ids=ids, h=h, c=c)
        return out["h"].numpy(), out["c"].numpy(), out["logits"].numpy()

    def char_log_probs(self, ids, state):
        ids = np.asarray(ids, np.int32)
        rows, log_probs = np.arange(len(ids)), []
        for t in range(ids.shape[1]):
            log_probs.append(log_softmax(state[2])[rows, ids[:, t]])
            state = self._read(ids[:, t], state)
        if not log_probs:
            return np.zeros((len(ids), 0)), state
        return np.stack(log_probs, axis=1), state

    def summed_loss(self, x, y, state):
        x, y = np.asarray(x, np.int32), np.asarray(y)
        rows, total = np.arange(len(x)), 0.0
        for t in range(x.shape[1]):
            state = self._read(x[:, t], state)
            total -= float(log_softmax(state[2])[rows, y[:, t]].sum())
        return total, state
