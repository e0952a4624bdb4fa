"""Serve PredictRequests from a SavedModel the way TF Serving's loader does, in Python.

    python tf1_predict.py EXPORT_DIR REQUEST.pb RESPONSE.pb [REQUEST.pb RESPONSE.pb ...]

The model is loaded into a TF1 graph and `Session` with
`tf.compat.v1.saved_model.loader.load(sess, ["serve"], EXPORT_DIR)`, exactly the
SavedModelBundle path, and every request runs by the tensor names of its SignatureDef.
Deliberately, `lstm_textgen` is never imported: the export must stand on its own. A
request that fails writes its error, `TYPE: message`, to RESPONSE.pb.error instead.
"""

import sys

import tensorflow as tf
from tensorflow_serving.apis import predict_pb2


def serve(session, meta_graph, request):
    name = request.model_spec.signature_name or "serving_default"
    if name not in meta_graph.signature_def:
        raise KeyError(f"no signature {name!r}")
    signature = meta_graph.signature_def[name]
    if set(request.inputs) != set(signature.inputs):
        raise KeyError(f"inputs {sorted(request.inputs)} != signature {sorted(signature.inputs)}")
    feeds = {}
    for alias, proto in request.inputs.items():
        info = signature.inputs[alias]
        if proto.dtype != info.dtype:
            raise TypeError(f"input {alias}: dtype {proto.dtype} != signature's {info.dtype}")
        feeds[info.name] = tf.make_ndarray(proto)
    aliases = sorted(request.output_filter or signature.outputs)
    values = session.run([signature.outputs[a].name for a in aliases], feeds)
    response = predict_pb2.PredictResponse()
    response.model_spec.CopyFrom(request.model_spec)
    response.model_spec.signature_name = name
    for alias, value in zip(aliases, values):
        response.outputs[alias].CopyFrom(tf.make_tensor_proto(value))
    return response


def main(argv):
    export_dir, paths = argv[1], argv[2:]
    if len(paths) % 2:
        sys.exit("usage: tf1_predict.py EXPORT_DIR REQUEST.pb RESPONSE.pb [...]")
    with tf.compat.v1.Session(graph=tf.Graph()) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], export_dir)
        for request_path, response_path in zip(paths[::2], paths[1::2]):
            with open(request_path, "rb") as f:
                request = predict_pb2.PredictRequest.FromString(f.read())
            try:
                response = serve(session, meta_graph, request)
            except (tf.errors.OpError, KeyError, TypeError, ValueError) as e:
                message = getattr(e, "message", None) or str(e)
                with open(response_path + ".error", "w", encoding="utf-8") as f:
                    f.write(f"{type(e).__name__}: {message}")
                continue
            with open(response_path, "wb") as f:
                f.write(response.SerializeToString())
    assert "lstm_textgen" not in sys.modules, "the export must load without lstm_textgen"


if __name__ == "__main__":
    main(sys.argv)
