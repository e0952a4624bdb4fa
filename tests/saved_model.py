"""What the SavedModel tests share: one tiny exported run, and TF Serving's way of loading
it. Requests go through `tests/serving/tf1_predict.py`, a fresh process (one per test session)
that never imports lstm_textgen and serves PredictRequests from a TF1 Session after
`tf.compat.v1.saved_model.loader.load`. Expected values come from the library in this
process (the same checkpoint), or from an independent step-by-step recomputation.
"""

import atexit
import json
import os
import select
import subprocess
import sys
import tempfile
from pathlib import Path

import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from lstm_textgen.config import ModelConfig
from lstm_textgen.export.saved_model import export_for_serving
from lstm_textgen.export.warmup import predict_request
from lstm_textgen.generation.backends.keras import TextGenerator
from lstm_textgen.model import stepping
from lstm_textgen.store.loading import load_trained_model

import tf_serving as serving
from conftest import built_once
from helpers import train_tiny_run
from tf_serving import signature_input_dtypes

REQUEST_FIELDS = {"prompt": "prompts"}  # signature input -> GenerationRequest field
SERVING_DIR = Path(__file__).parent / "serving"
GOLDEN = SERVING_DIR / "golden"
LAYERS, UNITS = 2, 4


def signature_names(version_dir) -> set[str]:
    """The signatures an export's saved_model.pb holds (what TF Serving can call)."""
    from tensorflow.core.protobuf import saved_model_pb2

    graph = saved_model_pb2.SavedModel()
    graph.ParseFromString((Path(version_dir) / "saved_model.pb").read_bytes())
    return {name for name in graph.meta_graphs[0].signature_def if not name.startswith("__")}


def make_served(tmp_path_factory, small_text):
    """A tiny run trained for 3 steps and exported (once per test session, `built_once`):
    the export every SavedModel test reads."""

    def build(root):
        model_config = ModelConfig(units=UNITS, num_layers=LAYERS, embedding_dim=3)
        run = train_tiny_run(root, small_text, model_config, max_steps=3)
        base = root / "saved_models" / "tiny"
        return {"run": run, "base": base, "version_dir": export_for_serving(str(run), str(base))}

    paths = built_once(tmp_path_factory, "served", build)
    model, vocab = load_trained_model(str(paths["run"]))
    return {
        **paths,
        "version_dir": str(paths["version_dir"]),
        "generator": TextGenerator(model, vocab),
        "model": model,
        "vocab": vocab,
    }


class TF1Server:
    """`tf1_predict.py --lines` in one fresh process for the whole test session (a process
    start and a TensorFlow import cost seconds each): one line of paths per call."""

    process = None

    @classmethod
    def ask(cls, line, timeout=300):
        if cls.process is None or cls.process.poll() is not None:
            cls.log = tempfile.TemporaryFile("w+")
            cls.process = subprocess.Popen(
                [sys.executable, str(SERVING_DIR / "tf1_predict.py"), "--lines"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=cls.log,
                text=True,
                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
            )
            atexit.register(cls.process.stdin.close)
        cls.process.stdin.write(line + "\n")
        cls.process.stdin.flush()
        ready, _, _ = select.select([cls.process.stdout], [], [], timeout)
        reply = cls.process.stdout.readline().strip() if ready else "no reply"
        if reply != "ok":
            cls.log.seek(0)
            raise AssertionError(f"tf1_predict.py: {reply}\n{cls.log.read()[-2000:]}")


def serve_tf1(version_dir, requests, workdir):
    """Replay PredictRequests through tf1_predict.py; a response or an error string each."""
    workdir.mkdir(exist_ok=True)
    paths = []
    for k, request in enumerate(requests):
        request_path = workdir / f"request{k}.pb"
        request_path.write_bytes(request.SerializeToString())
        paths += [str(request_path), str(workdir / f"response{k}.pb")]
    TF1Server.ask("\t".join([str(version_dir), *paths]))
    return [read_response(workdir / f"response{k}.pb") for k in range(len(requests))]


def read_response(path):
    error = Path(str(path) + ".error")
    if error.exists():
        return error.read_text(encoding="utf-8")
    return predict_pb2.PredictResponse.FromString(path.read_bytes())


def outputs_of(response):
    assert not isinstance(response, str), response
    return {alias: tf.make_ndarray(proto) for alias, proto in response.outputs.items()}


def texts(array):
    return [t.decode("utf-8") for t in array]


def golden(name):
    return json.loads((GOLDEN / name).read_text(encoding="utf-8"))


def request_from_rest(body, version_dir):
    """A REST body -> PredictRequest, with TF Serving's JSON rules and the model's dtypes."""
    dtypes = signature_input_dtypes(version_dir)[body["signature_name"]]
    inputs, row_format = serving.rest_to_inputs(body, dtypes)
    return predict_request(body["signature_name"], inputs), row_format


def used(stop_rows):
    """Each row's stop strings without the empty (unused) slots of a signature input."""
    return [[s for s in row if s] for row in stop_rows]


def expected_columns(generator, columns):
    """The library's texts for a columnar `serving_default` request."""
    settings = {name: value for name, value in columns.items() if name != "prompt"}
    return generator.generate(columns["prompt"], **{**settings, "stop": used(columns["stop"])})


def expected_generate_rows(generator, instances):
    out = []
    for row in instances:
        prompt = row["prompt"]
        if isinstance(prompt, dict):
            import base64

            prompt = base64.b64decode(prompt["b64"]).decode("utf-8")
        settings = {name: value for name, value in row.items() if name != "prompt"}
        settings["stop"] = used([row["stop"]])[0]
        out.append(generator.generate([prompt], **settings)[0])
    return out


def reference_score(model, vocab, text):
    """Log-likelihood by feeding characters one at a time (not the signature's code path)."""
    state = model.initial_state(1)
    logits = stepping.next_logits(model, state)
    total, count = 0.0, 0
    for char_id in vocab.encode(text):
        if char_id == 0:
            continue
        total += float(tf.nn.log_softmax(logits)[0, char_id])
        count += 1
        logits, state = stepping.step(model, tf.constant([char_id]), state)
    return total, count


def generate_request(request, model_name="lstm_textgen"):
    """The `serving_default` PredictRequest of a `GenerationRequest`, as a client sends it."""
    from lstm_textgen.export.warmup import generate_arrays

    # The whole prompts, as a client sends them: the graph keeps their tails.
    inputs = generate_arrays(request.prompts, request.checked().rows)
    return predict_request("serving_default", inputs, model_name)
