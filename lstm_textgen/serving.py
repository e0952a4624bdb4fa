"""TF Serving's warmup file: the requests a server replays before it takes traffic."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from lstm_textgen.config import ModelConfig


def warmup_inputs(config: ModelConfig) -> dict[str, dict[str, np.ndarray]]:
    """One small request per signature, as numpy inputs."""
    zeros = np.zeros([1, config.num_layers, config.units], np.float32)
    return {
        "serving_default": {
            "prompt": np.array([b""], object),
            "num_chars": np.array(8, np.int32),
            "temperature": np.array(1.0, np.float32),
            "top_k": np.array(0, np.int32),
            "top_p": np.array(1.0, np.float32),
            "seed": np.array(0, np.int64),
        },
        "generate_rows": {
            "prompt": np.array([b""], object),
            "num_chars": np.array([8], np.int32),
            "temperature": np.array([1.0], np.float32),
            "top_k": np.array([0], np.int32),
            "top_p": np.array([1.0], np.float32),
            "seed": np.array([0], np.int64),
        },
        "step": {"ids": np.array([1], np.int32), "h": zeros, "c": zeros},
        "score": {"text": np.array([b"\n"], object)},
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
    """TF Serving's warmup file: a TFRecord of PredictionLog, one per signature."""
    from tensorflow_serving.apis import prediction_log_pb2

    with tf.io.TFRecordWriter(path) as writer:
        for signature, inputs in warmup_inputs(config).items():
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(
                    request=predict_request(signature, inputs)
                )
            )
            writer.write(log.SerializeToString())
