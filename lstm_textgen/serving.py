"""TF Serving's warmup file: the requests a server replays before it takes traffic."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from lstm_textgen.config import ModelConfig
from lstm_textgen.request import MAX_STOP_STRINGS

# The batch sizes the batching_parameters.txt of docs/serving.md allows; the warmup file runs each.
ALLOWED_BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64)
WARMUP_CHARS = 8


def warmup_inputs(config: ModelConfig, rows: int = 1) -> dict[str, dict[str, np.ndarray]]:
    """One small request of `rows` rows per signature, as numpy inputs."""
    zeros = np.zeros([rows, config.num_layers, config.units], np.float32)
    generate = {
        "prompt": np.array([b""] * rows, object),
        "num_chars": np.full([rows], WARMUP_CHARS, np.int32),
        "temperature": np.ones([rows], np.float32),
        "top_k": np.zeros([rows], np.int32),
        "top_p": np.ones([rows], np.float32),
        "seed": np.arange(rows, dtype=np.int64),
        # One slot with a stop string, the rest unused: the warmup runs the stop check.
        "stop": np.array([[b"\n\n"] + [b""] * (MAX_STOP_STRINGS - 1)] * rows, object).reshape(
            rows, MAX_STOP_STRINGS
        ),
    }
    return {
        "serving_default": generate,
        "generate_rows": generate,
        "step": {"ids": np.ones([rows], np.int32), "h": zeros, "c": zeros},
        "score": {"text": np.array([b"\n"] * rows, object)},
    }


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
