"""TF Serving, as far as the tests need it: its REST JSON rules, its warmup file, and
what it reads from a SavedModel (signature input dtypes, op types).

The REST conversion follows TF Serving's rules for `:predict`:

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

import base64
import contextlib
import http.server
import json
import os
import threading

import numpy as np
import tensorflow as tf

# Ops a CPU build of TF Serving may lack, or that tie a model to a GPU or to Python.
DENIED_OPS = ("PyFunc", "PyFuncStateless", "EagerPyFunc", "CudnnRNN", "XlaLaunch", "_XlaRun")


class RestError(ValueError):
    """A request TF Serving would answer with 400."""


def read_warmup_requests(path: str):
    """The PredictRequests of a warmup file, in order."""
    from tensorflow_serving.apis import prediction_log_pb2

    requests = []
    for record in tf.data.TFRecordDataset(path):
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record.numpy())
        requests.append(log.predict_log.request)
    return requests


def _decode_json_value(value, dtype: tf.DType):
    """A JSON value (nested lists allowed) as a numpy array of `dtype`."""

    def convert(v):
        if isinstance(v, list):
            return [convert(x) for x in v]
        if dtype == tf.string:
            if isinstance(v, dict) and set(v) == {"b64"}:
                return base64.b64decode(v["b64"])
            if not isinstance(v, str):
                raise RestError(f"expected a string, got {v!r}")
            return v.encode("utf-8")
        if isinstance(v, (dict, str)):
            raise RestError(f"expected a number for a {dtype.name} input, got {v!r}")
        if dtype.is_integer and (isinstance(v, bool) or not isinstance(v, int)):
            raise RestError(f"expected an integer for a {dtype.name} input, got {v!r}")
        if dtype.is_floating and isinstance(v, bool):
            raise RestError(f"expected a number for a {dtype.name} input, got {v!r}")
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
        raise RestError('a predict request needs exactly one of "instances" or "inputs"')
    names = sorted(input_dtypes)
    if "instances" in body:
        rows = body["instances"]
        if not isinstance(rows, list) or not rows:
            raise RestError('"instances" must be a non-empty list')
        if len(names) == 1 and not _is_named_inputs(rows[0]):
            rows = [{names[0]: row} for row in rows]
        for row in rows:
            if not isinstance(row, dict) or set(row) != set(names):
                raise RestError(f"every instance needs exactly the inputs {names}")
        inputs = {
            name: _decode_json_value([row[name] for row in rows], input_dtypes[name])
            for name in names
        }
        return inputs, True
    columns = body["inputs"]
    if len(names) == 1 and not _is_named_inputs(columns):
        columns = {names[0]: columns}
    if not isinstance(columns, dict) or set(columns) != set(names):
        raise RestError(f'"inputs" needs exactly the inputs {names}')
    return {name: _decode_json_value(columns[name], input_dtypes[name]) for name in names}, False


def _encode_json_value(array: np.ndarray):
    if array.dtype == object or array.dtype.kind == "S":
        return np.vectorize(lambda b: b.decode("utf-8", "replace"), otypes=[object])(array).tolist()
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


def read_saved_model_proto(saved_model_dir: str):
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(saved_model_dir, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    return proto


def graph_op_types(saved_model_dir: str) -> set[str]:
    """Every op type in the SavedModel's graphs, function library included."""
    ops = set()
    for meta_graph in read_saved_model_proto(saved_model_dir).meta_graphs:
        ops.update(node.op for node in meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    return ops


def signature_input_dtypes(saved_model_dir: str) -> dict[str, dict[str, tf.DType]]:
    """`{signature: {input alias: dtype}}` of the "serve" graph, as TF Serving reads it."""
    for meta_graph in read_saved_model_proto(saved_model_dir).meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags:
            return {
                name: {alias: tf.as_dtype(info.dtype) for alias, info in sig.inputs.items()}
                for name, sig in meta_graph.signature_def.items()
                if not name.startswith("__")
            }
    raise ValueError(f"{saved_model_dir} has no graph tagged 'serve'")


def denied_ops(saved_model_dir: str) -> list[str]:
    """Denied op types in the export, plus `jit_compile:NAME` for every function that
    must be compiled with XLA (a CPU TF Serving may not run those around string ops)."""
    found = {
        op for op in graph_op_types(saved_model_dir) if any(op.startswith(d) for d in DENIED_OPS)
    }
    for meta_graph in read_saved_model_proto(saved_model_dir).meta_graphs:
        for function in meta_graph.graph_def.library.function:
            attr = function.attr.get("_XlaMustCompile")
            if attr is not None and attr.b:
                found.add(f"jit_compile:{function.signature.name}")
    return sorted(found)


def signature_input_shapes(saved_model_dir: str) -> dict[str, dict[str, list[int]]]:
    """`{signature: {input alias: dims}}` of the "serve" graph (-1 for an unknown size)."""
    for meta_graph in read_saved_model_proto(saved_model_dir).meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags:
            return {
                name: {
                    alias: [d.size for d in info.tensor_shape.dim]
                    for alias, info in sig.inputs.items()
                }
                for name, sig in meta_graph.signature_def.items()
                if not name.startswith("__")
            }
    raise ValueError(f"{saved_model_dir} has no graph tagged 'serve'")


# --- a fake TF Serving REST endpoint -------------------------------------------------------


class FakeTFServing(http.server.ThreadingHTTPServer):
    """Answers `/v1/models/NAME:predict` like TF Serving, running the export in-process."""

    def __init__(self, model_name, version_dir):
        self.model_name = model_name
        self.loaded = tf.saved_model.load(version_dir)
        self.dtypes = signature_input_dtypes(version_dir)
        self.bodies = []
        super().__init__(("127.0.0.1", 0), FakeTFServingHandler)


class FakeTFServingHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, code, payload):
        data = json.dumps(payload).encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        server = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server.bodies.append(body)
        if self.path != f"/v1/models/{server.model_name}:predict":
            return self.reply(404, {"error": f"Servable not found for request: {self.path}"})
        name = body.get("signature_name", "serving_default")
        try:
            inputs, row_format = rest_to_inputs(body, server.dtypes[name])
            outputs = server.loaded.signatures[name](
                **{k: tf.constant(v) for k, v in inputs.items()}
            )
        except (RestError, tf.errors.InvalidArgumentError) as e:
            return self.reply(400, {"error": getattr(e, "message", str(e))})
        self.reply(200, outputs_to_rest({k: v.numpy() for k, v in outputs.items()}, row_format))


@contextlib.contextmanager
def fake_tf_serving(model_name, version_dir):
    """A `FakeTFServing` of one export on a free loopback port, serving in a thread."""
    server = FakeTFServing(model_name, version_dir)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
