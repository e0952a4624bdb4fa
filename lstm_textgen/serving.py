"""Talking to TensorFlow Serving: warmup records, the REST JSON format, a REST client.

The JSON conversion follows TF Serving's REST API rules for `:predict`:

- row format, `{"instances": [...]}`: one entry per row, an object of named inputs (or a
  bare value when the signature has one input); every input is stacked along a new first
  dimension. The reply is `{"predictions": [...]}`, one object per row (a bare value when
  there is one output).
- columnar format, `{"inputs": {...}}`: each named input is converted as it stands (a
  JSON scalar becomes a scalar tensor). The reply is `{"outputs": {...}}` (a bare value
  when there is one output).
- a string is a JSON string, or `{"b64": "..."}` for raw bytes; numbers take the
  signature's dtype.
"""

from __future__ import annotations

import base64
import http.client
import json
import urllib.error
import urllib.request

import numpy as np
import tensorflow as tf

from lstm_textgen.config import ModelConfig
from lstm_textgen.errors import TextgenError


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


def read_warmup_requests(path: str):
    """The PredictRequests of a warmup file, in order."""
    from tensorflow_serving.apis import prediction_log_pb2

    requests = []
    for record in tf.data.TFRecordDataset(path):
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record.numpy())
        requests.append(log.predict_log.request)
    return requests


# --- REST JSON <-> tensors -------------------------------------------------------------


def _decode_json_value(value, dtype: tf.DType):
    """A JSON value (nested lists allowed) as a numpy array of `dtype`."""

    def convert(v):
        if isinstance(v, list):
            return [convert(x) for x in v]
        if dtype == tf.string:
            if isinstance(v, dict) and set(v) == {"b64"}:
                return base64.b64decode(v["b64"])
            if not isinstance(v, str):
                raise TextgenError(f"expected a string, got {v!r}")
            return v.encode("utf-8")
        if isinstance(v, (dict, str)):
            raise TextgenError(f"expected a number for a {dtype.name} input, got {v!r}")
        if dtype.is_integer and (isinstance(v, bool) or not isinstance(v, int)):
            raise TextgenError(f"expected an integer for a {dtype.name} input, got {v!r}")
        if dtype.is_floating and isinstance(v, bool):
            raise TextgenError(f"expected a number for a {dtype.name} input, got {v!r}")
        return v

    converted = convert(value)
    if dtype == tf.string:
        array = np.array(converted, dtype=object)
        return array
    return np.array(converted, dtype=dtype.as_numpy_dtype)


def _is_named_inputs(value) -> bool:
    """An object of named inputs, as opposed to a bare value ({"b64": ...} is a value)."""
    return isinstance(value, dict) and set(value) != {"b64"}


def rest_to_inputs(body: dict, input_dtypes: dict[str, tf.DType]):
    """Convert a `:predict` JSON body to named arrays as TF Serving does.

    Returns `(inputs, row_format)`.
    """
    if ("instances" in body) == ("inputs" in body):
        raise TextgenError('a predict request needs exactly one of "instances" or "inputs"')
    names = sorted(input_dtypes)
    if "instances" in body:
        rows = body["instances"]
        if not isinstance(rows, list) or not rows:
            raise TextgenError('"instances" must be a non-empty list')
        if len(names) == 1 and not _is_named_inputs(rows[0]):
            rows = [{names[0]: row} for row in rows]
        for row in rows:
            if not isinstance(row, dict) or set(row) != set(names):
                raise TextgenError(f"every instance needs exactly the inputs {names}")
        inputs = {
            name: _decode_json_value([row[name] for row in rows], input_dtypes[name])
            for name in names
        }
        return inputs, True
    columns = body["inputs"]
    if len(names) == 1 and not _is_named_inputs(columns):
        columns = {names[0]: columns}
    if not isinstance(columns, dict) or set(columns) != set(names):
        raise TextgenError(f'"inputs" needs exactly the inputs {names}')
    return {name: _decode_json_value(columns[name], input_dtypes[name]) for name in names}, False


def _encode_json_value(array: np.ndarray):
    if array.dtype == object or array.dtype.kind == "S":
        return np.vectorize(lambda b: b.decode("utf-8", "replace"), otypes=[object])(
            array
        ).tolist()
    return array.tolist()


def outputs_to_rest(outputs: dict[str, np.ndarray], row_format: bool) -> dict:
    """Named output arrays as TF Serving's `:predict` JSON reply."""
    encoded = {name: _encode_json_value(np.asarray(v)) for name, v in outputs.items()}
    if not row_format:
        if len(encoded) == 1:
            return {"outputs": next(iter(encoded.values()))}
        return {"outputs": encoded}
    rows = len(next(iter(encoded.values())))
    if len(encoded) == 1:
        return {"predictions": next(iter(encoded.values()))}
    return {"predictions": [{n: v[r] for n, v in encoded.items()} for r in range(rows)]}


# --- REST client -----------------------------------------------------------------------


def rest_predict(server: str, model_name: str, body: dict, timeout: float = 60.0) -> dict:
    """POST `body` to `server/v1/models/MODEL:predict` and return the JSON reply."""
    url = f"{server.rstrip('/')}/v1/models/{model_name}:predict"
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return json.loads(reply.read().decode("utf-8"))
    except ValueError as e:  # a malformed URL
        raise TextgenError(f"bad TF Serving URL {url}: {e}") from None
    except urllib.error.HTTPError as e:
        detail = e.read().decode("utf-8", "replace").strip()
        try:
            detail = json.loads(detail).get("error", detail)
        except (json.JSONDecodeError, AttributeError):
            pass
        raise TextgenError(f"TF Serving at {url} answered {e.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise TextgenError(f"cannot reach TF Serving at {url}: {reason}") from None
    except http.client.HTTPException as e:
        raise TextgenError(
            f"{url} did not answer like TF Serving's REST API ({type(e).__name__}); "
            "is that the REST port (8501), not gRPC (8500)?"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise TextgenError(f"TF Serving at {url} did not answer with JSON") from None


def generate_body(prompts, num_chars, temperature, top_k, top_p, seed) -> dict:
    """The columnar `serving_default` request for these settings."""
    return {
        "signature_name": "serving_default",
        "inputs": {
            "prompt": list(prompts),
            "num_chars": int(num_chars),
            "temperature": float(temperature),
            "top_k": int(top_k),
            "top_p": float(top_p),
            "seed": int(seed),
        },
    }


def texts_from_reply(reply: dict) -> list[str]:
    outputs = reply.get("outputs")
    if isinstance(outputs, dict):
        outputs = outputs.get("text")
    if not isinstance(outputs, list):
        raise TextgenError(f"unexpected reply from TF Serving: {json.dumps(reply)[:200]}")
    return [str(t) for t in outputs]
