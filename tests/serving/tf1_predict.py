"""Serve PredictRequests from a SavedModel the way TF Serving's loader does, in Python.

    python tf1_predict.py EXPORT_DIR REQUEST.pb RESPONSE.pb [REQUEST.pb RESPONSE.pb ...]
    python tf1_predict.py --lines

With `--lines`, each line of stdin holds such arguments (tab-separated) and is answered
by one line on stdout, `ok` or the reason it failed: one process, and one TF1 Session
per export, serve every request of a test session.

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


def answer(session, meta_graph, paths):
    """Serve each REQUEST.pb of `paths` (request, response pairs) into its RESPONSE.pb."""
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


def load(export_dir):
    session = tf.compat.v1.Session(graph=tf.Graph())
    meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], export_dir)
    return session, meta_graph


def serve_lines(lines, replies):
    loaded = {}
    for line in lines:
        export_dir, *paths = line.rstrip("\n").split("\t")
        try:
            if len(paths) % 2:
                raise ValueError("a line holds EXPORT_DIR and (REQUEST, RESPONSE) pairs")
            if export_dir not in loaded:
                loaded[export_dir] = load(export_dir)
            answer(*loaded[export_dir], paths)
            if "lstm_textgen" in sys.modules:
                raise RuntimeError("the export must load without lstm_textgen")
            replies.write("ok\n")
        except Exception as e:  # the test reads the reason; the process serves on
            replies.write(f"{type(e).__name__}: {e}".replace("\n", " ") + "\n")
        replies.flush()


def main(argv):
    if argv[1:] == ["--lines"]:
        serve_lines(sys.stdin, sys.stdout)
        return
    export_dir, paths = argv[1], argv[2:]
    if len(paths) % 2:
        sys.exit("usage: tf1_predict.py EXPORT_DIR REQUEST.pb RESPONSE.pb [...] | --lines")
    session, meta_graph = load(export_dir)
    with session:
        answer(session, meta_graph, paths)
    assert "lstm_textgen" not in sys.modules, "the export must load without lstm_textgen"


if __name__ == "__main__":
    main(sys.argv)
