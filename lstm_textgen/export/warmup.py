"""TF Serving's warmup file: the requests a server replays before it takes traffic."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from lstm_textgen.config import ModelConfig
from lstm_textgen.generation.graph import generate_spec
from lstm_textgen.generation.settings import START_STEP, SamplingSettings, export_inputs

# The batch sizes the batching_parameters.txt of docs/serving.md allows; the warmup file runs each.
ALLOWED_BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64)
WARMUP_CHARS = 8


def warmup_inputs(config: ModelConfig, rows: int = 1) -> dict[str, dict[str, np.ndarray]]:
    """One small request of `rows` rows per signature, as numpy inputs: generation of
    `WARMUP_CHARS` characters with the table's defaults and one stop string (so the
    warmup runs the stop check)."""
    settings = [
        SamplingSettings(num_chars=WARMUP_CHARS, seed=r, stop=["\n\n"]) for r in range(rows)
    ]
    generate = generate_arrays([""] * rows, settings)
    zeros = np.zeros([rows, config.num_layers, config.units], np.float32)
    state = {"h": zeros, "c": zeros, START_STEP.name: np.full([rows], WARMUP_CHARS, np.int32)}
    return {
        "serving_default": generate,
        "continue": {**generate, **state},
        "generate_rows": generate,
        "step": {"ids": np.ones([rows], np.int32), "h": zeros, "c": zeros},
        "score": {"text": np.array([b"\n"] * rows, object)},
    }


def generate_arrays(prompts, rows) -> dict[str, np.ndarray]:
    """The `serving_default` inputs of prompts and their `SamplingSettings`, as numpy
    arrays of the signature's dtypes."""
    columns = export_inputs(list(prompts), list(rows))
    arrays = {}
    for spec in generate_spec():
        if spec.dtype == tf.string:
            shape = [len(rows), *spec.shape[1:]]
            arrays[spec.name] = np.array(columns[spec.name], object).reshape(shape)
        else:
            arrays[spec.name] = np.array(columns[spec.name], spec.dtype.as_numpy_dtype)
    return arrays


def predict_request(signature: str, inputs: dict, model_name: str = "lstm_textgen"):
    """A `tensorflow.serving.PredictRequest` for `inputs` (name -> array)."""
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return request


def write_warmup_requests(path: str, config: ModelConfig) -> None:
    """TF Serving's warmup file: a TFRecord of PredictionLog, one request per signature
    and batch size of `ALLOWED_BATCH_SIZES`."""
    from tensorflow_serving.apis import prediction_log_pb2

    requests = [
        (signature, inputs)
        for rows in ALLOWED_BATCH_SIZES
        for signature, inputs in warmup_inputs(config, rows).items()
    ]
    with tf.io.TFRecordWriter(path) as writer:
        for signature, inputs in requests:
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(
                    request=predict_request(signature, inputs)
                )
            )
            writer.write(log.SerializeToString())
