"""The SavedModel export, loaded and run the way TF Serving does it.

Each request goes through `tests/serving/tf1_predict.py`, a fresh process that never
imports lstm_textgen and serves PredictRequests from a TF1 Session after
`tf.compat.v1.saved_model.loader.load`. The slow test also replays them through a C++
program built against the pip wheel's `libtensorflow_cc` (`tests/serving/tf_predict.cc`).
Expected values come from the library in this process (the same checkpoint), or from an
independent step-by-step recomputation.
"""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from lstm_textgen.config import MAX_SCORE_CHARS, ModelConfig
from lstm_textgen.errors import TextgenError
from lstm_textgen.export import SIGNATURES, export_for_serving
from lstm_textgen.generate import TextGenerator
from lstm_textgen.request import (
    MAX_NUM_CHARS,
    MAX_PROMPT_CHARS,
    MAX_STOP_STRINGS,
    GenerationRequest,
)
from lstm_textgen.rundir import load_trained_model
from lstm_textgen.serving import predict_request

import tf_serving as serving
from helpers import assert_close, error_lines, run_cli, train_tiny, write_corpus
from tf_serving import (
    denied_ops,
    graph_op_types,
    signature_input_dtypes,
    signature_input_shapes,
)

SETTINGS = {"prompt": "prompts"}  # signature input -> GenerationRequest field
SERVING_DIR = Path(__file__).parent / "serving"
GOLDEN = SERVING_DIR / "golden"
LAYERS, UNITS = 2, 4


@pytest.fixture(scope="module")
def served(tmp_path_factory, small_text):
    root = tmp_path_factory.mktemp("export")
    run = root / "run"
    train_tiny(
        run,
        write_corpus(root, small_text),
        ModelConfig(units=UNITS, num_layers=LAYERS, embedding_dim=3),
        max_steps=3,
    )
    base = root / "saved_models" / "tiny"
    version_dir = export_for_serving(str(run), str(base))
    model, vocab = load_trained_model(str(run))
    return {
        "run": run,
        "base": base,
        "version_dir": version_dir,
        "generator": TextGenerator(model, vocab),
        "model": model,
        "vocab": vocab,
    }


def serve_tf1(version_dir, requests, workdir):
    """Replay PredictRequests through tf1_predict.py; a response or an error string each."""
    workdir.mkdir(exist_ok=True)
    args = []
    for k, request in enumerate(requests):
        request_path = workdir / f"request{k}.pb"
        request_path.write_bytes(request.SerializeToString())
        args += [str(request_path), str(workdir / f"response{k}.pb")]
    result = subprocess.run(
        [sys.executable, str(SERVING_DIR / "tf1_predict.py"), str(version_dir), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr
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
    return generator.generate(
        columns["prompt"],
        columns["num_chars"],
        columns["temperature"],
        columns["top_k"],
        columns["top_p"],
        columns["seed"],
        used(columns["stop"]),
    )


def expected_generate_rows(generator, instances):
    out = []
    for row in instances:
        prompt = row["prompt"]
        if isinstance(prompt, dict):
            import base64

            prompt = base64.b64decode(prompt["b64"]).decode("utf-8")
        out.append(
            generator.generate(
                [prompt],
                row["num_chars"],
                row["temperature"],
                row["top_k"],
                row["top_p"],
                row["seed"],
                used([row["stop"]])[0],
            )[0]
        )
    return out


def reference_score(model, vocab, text):
    """Log-likelihood by feeding characters one at a time (not the signature's code path)."""
    state = model.initial_state(1)
    logits = model.next_logits(state)
    total, count = 0.0, 0
    for char_id in vocab.encode(text):
        if char_id == 0:
            continue
        total += float(tf.nn.log_softmax(logits)[0, char_id])
        count += 1
        logits, state = model.step(tf.constant([char_id]), state)
    return total, count


# --- layout, versions, op set ------------------------------------------------------------


def test_versioned_layout_and_next_free_version(served, tmp_path):
    version_dir = Path(served["version_dir"])
    assert version_dir.name == "1"
    for name in (
        "saved_model.pb",
        "variables",
        "assets.extra/vocab.json",
        "assets.extra/config.json",
    ):
        assert (version_dir / name).exists(), name
    base = tmp_path / "models" / "m"
    shutil.copytree(served["base"], base)
    second = export_for_serving(str(served["run"]), str(base))
    assert Path(second).name == "2"
    assert sorted(os.listdir(base)) == ["1", "2"]  # no temporary folder is left behind
    with pytest.raises(TextgenError, match="already exists"):
        export_for_serving(str(served["run"]), str(base), version=2)


def test_no_op_a_cpu_tf_serving_lacks(served, tmp_path):
    assert denied_ops(served["version_dir"]) == []

    class Bad(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def f(self, x):
            return tf.py_function(lambda v: v * 2, [x], tf.float32)

    tf.saved_model.save(Bad(), str(tmp_path / "bad"))
    assert denied_ops(str(tmp_path / "bad")) == ["EagerPyFunc"]

    class Compiled(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)], jit_compile=True)
        def f(self, x):
            return x * 2

    tf.saved_model.save(Compiled(), str(tmp_path / "compiled"))
    flagged = denied_ops(str(tmp_path / "compiled"))
    assert len(flagged) == 1 and flagged[0].startswith("jit_compile:")


def test_keras_implementation_exports_the_gate_loop(served, tmp_path):
    from lstm_textgen.exporting import serving_model
    from lstm_textgen.model import CharLanguageModel

    config = ModelConfig(
        vocab_size=served["vocab"].size,
        embedding_dim=3,
        units=UNITS,
        num_layers=LAYERS,
        implementation="keras",
    )
    keras_model = CharLanguageModel.from_model_config(config)
    keras_model.set_weights(served["model"].get_weights())
    exported = serving_model(keras_model, config)
    assert all(layer.implementation == "gates" for layer in exported.lstm_layers)
    ids = tf.constant([[1, 2, 3]])
    assert_close(exported(ids), keras_model(ids))


# --- every signature through the TF1 loader ----------------------------------------------


def test_signatures_through_the_tf1_loader(served, tmp_path):
    version_dir = served["version_dir"]
    generator = served["generator"]
    bodies = [
        golden("generate_columnar.json"),
        golden("generate_rows_instances.json"),
        golden("score_instances.json"),
        golden("step_columnar.json"),
        golden("score_b64_instances.json"),
    ]
    requests = [request_from_rest(body, version_dir)[0] for body in bodies]
    generate, rows, score, step, score_b64 = serve_tf1(version_dir, requests, tmp_path)
    # The b64 instance is the same text as the first plain one.
    assert_close(outputs_of(score_b64)["log_likelihood"][0], outputs_of(score)["log_likelihood"][0])

    columns = bodies[0]["inputs"]
    assert texts(outputs_of(generate)["text"]) == expected_columns(generator, columns)
    assert texts(outputs_of(rows)["text"]) == expected_generate_rows(
        generator, bodies[1]["instances"]
    )

    scores = outputs_of(score)
    for k, text in enumerate(bodies[2]["instances"]):
        total, count = reference_score(served["model"], served["vocab"], text)
        assert_close(scores["log_likelihood"][k], total, atol=1e-4)
        assert scores["num_chars"][k] == count
        assert_close(scores["bits_per_char"][k], -total / max(count, 1) / math.log(2), atol=1e-4)

    columns = bodies[3]["inputs"]
    h, c = np.array(columns["h"], np.float32), np.array(columns["c"], np.float32)
    state = tuple((h[:, k], c[:, k]) for k in range(LAYERS))
    logits, new_state = served["model"].step(tf.constant(columns["ids"]), state)
    got = outputs_of(step)
    assert_close(got["logits"], logits)
    assert_close(got["h"], np.stack([s[0] for s in new_state], axis=1))
    assert_close(got["c"], np.stack([s[1] for s in new_state], axis=1))


def test_rest_replies_in_both_formats(served, tmp_path):
    version_dir = served["version_dir"]
    columnar = golden("generate_columnar.json")
    rows = golden("generate_rows_instances.json")
    requests, formats = zip(*(request_from_rest(b, version_dir) for b in (columnar, rows)))
    responses = serve_tf1(version_dir, list(requests), tmp_path)
    replies = [serving.outputs_to_rest(outputs_of(r), f) for r, f in zip(responses, formats)]
    settings = {SETTINGS.get(k, k): v for k, v in columnar["inputs"].items()}
    settings["stop"] = used(settings["stop"])
    completions = served["generator"].complete(GenerationRequest(**settings))
    columns = {"text": [c.text for c in completions]}
    columns["finish_reason"] = [c.finish_reason for c in completions]
    assert replies[0] == {"outputs": columns}
    texts_of_rows = expected_generate_rows(served["generator"], rows["instances"])
    assert [p["text"] for p in replies[1]["predictions"]] == texts_of_rows
    assert set(replies[1]["predictions"][0]) == {"text", "finish_reason"}


def test_bad_requests_fail_or_are_clamped_in_the_graph(served, tmp_path):
    base = golden("generate_columnar.json")

    def request(**changes):
        body = json.loads(json.dumps(base))
        body["inputs"] = {name: value[:1] for name, value in body["inputs"].items()}
        body["inputs"].update(changes)
        body["inputs"]["prompt"] = ["a"] * len(body["inputs"]["num_chars"])
        return request_from_rest(body, served["version_dir"])[0]

    responses = serve_tf1(
        served["version_dir"],
        [
            request(temperature=[-1.0]),
            request(top_p=[0.0]),
            request(top_k=[-3]),
            request(
                num_chars=[10**9, 3],
                temperature=[0.0, 0.0],
                top_k=[0, 0],
                top_p=[1.0] * 2,
                seed=[1, 2],
                stop=[[""] * MAX_STOP_STRINGS] * 2,
            ),
            request(num_chars=[-5]),
            request(seed=[1, 2]),  # two seeds for one prompt
            request(stop=[["", "x", "", ""]]),  # an empty stop string
            request(stop=[["x" * 17, "", "", ""]]),  # too long
            request(stop=[["a", "b", "c", "d", "e"]]),  # too many: the loader's shape check
            request(seed=[2**31]),
            request(),  # the process that refused the others still serves
        ],
        tmp_path,
    )
    for response, message in zip(
        responses[:3],
        ["temperature must be finite and >= 0", "top_p must be in (0, 1]", "top_k must be >= 0"],
    ):
        assert response.startswith("InvalidArgumentError") and message in response, response
    assert [len(t) for t in texts(outputs_of(responses[3])["text"])] == [MAX_NUM_CHARS, 3]
    assert texts(outputs_of(responses[4])["text"]) == [""]
    assert "every input needs one value per prompt" in responses[5]
    assert "a stop string is empty" in responses[6]
    assert "a stop string has at most 16 characters" in responses[7]
    assert "seed must be in [0, 2147483647]" in responses[9]
    assert "Cannot feed value of shape (1, 5)" in responses[8]
    assert all(r.startswith("InvalidArgumentError") for r in responses[6:10:3]), responses[6:10]
    assert len(texts(outputs_of(responses[10])["text"])) == 1


def test_bad_rows_fail_the_request(served, tmp_path):
    base = golden("generate_rows_instances.json")

    def request(**changes):
        body = json.loads(json.dumps(base))
        body["instances"][1].update(changes)
        return request_from_rest(body, served["version_dir"])[0]

    good = request_from_rest(base, served["version_dir"])[0]
    responses = serve_tf1(
        served["version_dir"],
        [
            request(temperature=-0.5),
            request(temperature=float("nan")),
            request(top_p=2.0),
            request(top_k=-1),
            good,  # the process that refused the others still serves
        ],
        tmp_path,
    )
    assert "temperature must be finite and >= 0" in responses[0]
    assert "temperature must be finite and >= 0" in responses[1]
    assert "top_p must be in (0, 1]" in responses[2]
    assert "top_k must be >= 0" in responses[3]
    assert all(r.startswith("InvalidArgumentError") for r in responses[:4])
    assert len(texts(outputs_of(responses[4])["text"])) == 3


# --- serving under load: batchable signatures, rows independent, bounded work -------------


def test_every_signature_input_has_one_batch_dimension(served):
    for name, inputs in signature_input_shapes(served["version_dir"]).items():
        for alias, dims in inputs.items():
            assert len(dims) >= 1 and dims[0] == -1, (name, alias, dims)
            assert all(d > 0 for d in dims[1:]), (name, alias, dims)


def mixed_rows(count, vocab):
    """`count` one-row requests with mixed prompts and settings."""
    rng = np.random.default_rng(11)
    characters = "".join(vocab.characters)
    return [
        {
            "prompt": "".join(rng.choice(list(characters), size=int(rng.integers(0, 12)))),
            "num_chars": int(rng.integers(0, 40)),
            "temperature": float(rng.choice([0.0, 0.5, 1.0, 1.7])),
            "top_k": int(rng.choice([0, 1, 3, 10])),
            "top_p": float(rng.choice([1.0, 0.9, 0.3])),
            "seed": int(rng.integers(0, 2**31)),
            "stop": list(rng.choice(["", "e", "o ", "the"], size=MAX_STOP_STRINGS)),
        }
        for _ in range(count)
    ]


def padded(stops):
    """Stop strings as a signature row: the used ones first, then empty slots."""
    return sorted(stops, key=lambda s: s == "") + [""] * (MAX_STOP_STRINGS - len(stops))


def call(signature, rows):
    specs = signature.structured_input_signature[1]
    inputs = {
        name: tf.constant(
            [padded(row[name]) if name == "stop" else row[name] for row in rows],
            specs[name].dtype,
            shape=[len(rows), MAX_STOP_STRINGS] if name == "stop" else [len(rows)],
        )
        for name in specs
    }
    return texts(signature(**inputs)["text"].numpy())


def test_a_row_gives_the_same_text_alone_and_merged_with_others(served):
    # TF Serving's batcher concatenates unrelated requests: 40 rows with mixed settings
    # give the same texts, bit for bit, one request at a time, merged, and merged in
    # another order and in two halves; and the library gives the same texts.
    signature = tf.saved_model.load(served["version_dir"]).signatures["serving_default"]
    rows = mixed_rows(40, served["vocab"])
    merged = call(signature, rows)
    alone = [call(signature, [row])[0] for row in rows]
    assert merged == alone
    assert call(signature, rows[::-1]) == merged[::-1]
    assert call(signature, rows[:17]) + call(signature, rows[17:]) == merged
    assert call(signature, []) == []
    assert all(len(t) <= row["num_chars"] for t, row in zip(merged, rows))
    settings = {name: [row[name] for row in rows] for name in rows[0] if name != "prompt"}
    settings["stop"] = used(settings["stop"])
    assert served["generator"].generate([row["prompt"] for row in rows], **settings) == merged


def test_only_the_last_characters_of_a_long_prompt_prime_the_state(served):
    signature = tf.saved_model.load(served["version_dir"]).signatures["serving_default"]
    known = "".join(served["vocab"].characters)
    tail = (known * (MAX_PROMPT_CHARS // len(known) + 1))[-MAX_PROMPT_CHARS:]
    # Multi-byte characters the model never saw, right before the kept window.
    long_prompt = "Ω€" * 150_000 + tail
    row = {"num_chars": 30, "temperature": 0.9, "top_k": 0, "top_p": 1.0, "seed": 5, "stop": []}
    capped = call(signature, [{**row, "prompt": long_prompt}])
    assert capped == call(signature, [{**row, "prompt": tail}])


def test_score_reads_at_most_its_limit(served):
    signature = tf.saved_model.load(served["version_dir"]).signatures["score"]
    text = "the lazy dog.\n" * (MAX_SCORE_CHARS // 14 + 50)
    long, limit = (
        signature(text=tf.constant([text, text[:MAX_SCORE_CHARS]]))[k].numpy()
        for k in ("num_chars", "log_likelihood")
    )
    assert long.tolist() == [MAX_SCORE_CHARS] * 2
    assert limit[0] == limit[1]


def test_rest_json_rules():
    dtypes = {"text": tf.string}
    inputs, row_format = serving.rest_to_inputs(golden("score_b64_instances.json"), dtypes)
    assert row_format and inputs["text"].tolist() == [b"the lazy dog.\n", b"pack my box"]
    inputs, row_format = serving.rest_to_inputs({"inputs": {"b64": "YWI="}}, dtypes)
    assert not row_format and inputs["text"].tolist() == b"ab"
    ints = {"n": tf.int32, "t": tf.float32}
    inputs, _ = serving.rest_to_inputs({"inputs": {"n": 3, "t": 1}}, ints)
    assert inputs["n"].dtype == np.int32 and inputs["t"].dtype == np.float32
    for bad in ({"n": 2.7, "t": 1.0}, {"n": True, "t": 1.0}, {"n": 1, "t": False}, {"n": 1}):
        with pytest.raises(serving.RestError):
            serving.rest_to_inputs({"inputs": bad}, ints)
    with pytest.raises(serving.RestError, match="exactly one"):
        serving.rest_to_inputs({"inputs": {}, "instances": []}, ints)
    assert serving.outputs_to_rest(
        {"a": np.array([1, 2]), "b": np.array([b"x", b"y"], object)}, True
    ) == {"predictions": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]}


def test_a_keras_implementation_run_exports_without_cudnn(tmp_path, small_text):
    run = tmp_path / "run"
    train_tiny(
        run,
        write_corpus(tmp_path, small_text),
        ModelConfig(units=UNITS, num_layers=1, embedding_dim=3, implementation="keras"),
        max_steps=2,
    )
    version_dir = export_for_serving(str(run), str(tmp_path / "sm"), warmup=False)
    assert denied_ops(version_dir) == []
    assert not any(op.startswith("Cudnn") for op in graph_op_types(version_dir))
    model, vocab = load_trained_model(str(run))
    body = golden("generate_columnar.json")
    (response,) = serve_tf1(
        version_dir, [request_from_rest(body, version_dir)[0]], tmp_path / "serve"
    )
    assert texts(outputs_of(response)["text"]) == expected_columns(
        TextGenerator(model, vocab), body["inputs"]
    )


def test_warmup_file_covers_every_signature_and_allowed_batch_size_and_replays(served, tmp_path):
    from lstm_textgen.serving import ALLOWED_BATCH_SIZES

    path = Path(served["version_dir"]) / "assets.extra" / "tf_serving_warmup_requests"
    requests = serving.read_warmup_requests(str(path))
    covered = {
        (r.model_spec.signature_name, tf.make_ndarray(r.inputs[k]).shape[0])
        for r in requests
        for k in list(r.inputs)[:1]
    }
    assert covered == {(name, size) for name in SIGNATURES for size in ALLOWED_BATCH_SIZES}
    for response in serve_tf1(served["version_dir"], requests, tmp_path):
        assert not isinstance(response, str), response
        assert len(response.outputs) >= 1


# --- C++: tensorflow::LoadSavedModel from libtensorflow_cc ----------------------------------


def build_cpp_runner(out_dir):
    compiler = shutil.which("g++")
    if compiler is None:
        pytest.skip("no C++ compiler")
    tf_dir = Path(tf.__file__).parent
    assert (tf_dir / "libtensorflow_cc.so.2").exists(), (
        "the TensorFlow wheel lacks libtensorflow_cc"
    )
    binary = out_dir / "tf_predict"
    command = [
        compiler,
        "-std=c++17",
        "-O1",
        "-w",
        *[flag for flag in tf.sysconfig.get_compile_flags() if not flag.startswith("-I")],
        f"-I{tf.sysconfig.get_include()}",
        str(SERVING_DIR / "tf_predict.cc"),
        "-o",
        str(binary),
        # The session factory lives in libtensorflow_cc: keep it linked although no
        # symbol of it is referenced directly.
        "-Wl,--no-as-needed",
        str(tf_dir / "libtensorflow_cc.so.2"),
        str(tf_dir / "libtensorflow_framework.so.2"),
        f"-Wl,-rpath,{tf_dir}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return binary


@pytest.mark.slow
def test_cpp_load_saved_model_replays_warmup_and_golden_requests(served, tmp_path):
    binary = build_cpp_runner(tmp_path)
    version_dir = served["version_dir"]
    warmup = serving.read_warmup_requests(
        str(Path(version_dir) / "assets.extra" / "tf_serving_warmup_requests")
    )
    # Every signature at the smallest and the largest batch size (each C++ run loads the
    # export afresh; the TF1 test replays all of them).
    from lstm_textgen.serving import ALLOWED_BATCH_SIZES

    def rows(request):
        return tf.make_ndarray(next(iter(request.inputs.values()))).shape[0]

    ends = (ALLOWED_BATCH_SIZES[0], ALLOWED_BATCH_SIZES[-1])
    warmup = [r for r in warmup if rows(r) in ends]
    assert len(warmup) == 2 * len(SIGNATURES)
    bodies = [
        "generate_columnar.json",
        "generate_rows_instances.json",
        "score_instances.json",
        "step_columnar.json",
    ]
    requests = list(warmup) + [request_from_rest(golden(b), version_dir)[0] for b in bodies]
    python_responses = serve_tf1(version_dir, requests, tmp_path / "tf1")
    for k, request in enumerate(requests):
        request_path = tmp_path / f"cpp_request{k}.pb"
        response_path = tmp_path / f"cpp_response{k}.pb"
        request_path.write_bytes(request.SerializeToString())
        result = subprocess.run(
            [str(binary), str(version_dir), str(request_path), str(response_path)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
        assert result.returncode == 0, result.stderr[-2000:]
        cpp = outputs_of(predict_pb2.PredictResponse.FromString(response_path.read_bytes()))
        python = outputs_of(python_responses[k])
        assert sorted(cpp) == sorted(python)
        for alias in cpp:
            if cpp[alias].dtype == object:
                assert cpp[alias].tolist() == python[alias].tolist(), alias
            else:
                assert_close(cpp[alias], python[alias])
    # A request the graph refuses: C++ does not check feed shapes, the graph does.
    body = golden("generate_columnar.json")
    body["inputs"]["stop"] = [["a", "b", "c", "d", "e"]] * 3
    request_path = tmp_path / "cpp_too_many_stops.pb"
    request_path.write_bytes(request_from_rest(body, version_dir)[0].SerializeToString())
    result = subprocess.run(
        [str(binary), str(version_dir), str(request_path), str(tmp_path / "refused.pb")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 4, result.stderr[-2000:]
    assert "INVALID_ARGUMENT" in result.stderr and "at most 4 stop strings" in result.stderr
    # The C++ text for the golden generate request equals the library's.
    golden_generate = outputs_of(
        predict_pb2.PredictResponse.FromString(
            (tmp_path / f"cpp_response{len(warmup)}.pb").read_bytes()
        )
    )
    c = golden("generate_columnar.json")["inputs"]
    assert texts(golden_generate["text"]) == expected_columns(served["generator"], c)


# --- the CLI against the export and against a TF Serving REST endpoint ---------------------


@pytest.fixture
def fake_tf_serving(served):
    with serving.fake_tf_serving("tiny", served["version_dir"]) as server:
        yield server


def test_cli_export_and_generate_from_saved_model_and_server(served, fake_tf_serving, tmp_path):
    run = served["run"]
    result = run_cli("export", "--run", run, "--export-base", tmp_path / "sm" / "tiny")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "sm" / "tiny" / "1")

    args = [
        "--prompt",
        "the ",
        "--num-chars",
        "30",
        "--temperature",
        "0.9",
        "--top-k",
        "8",
        "--seed",
        "11",
        "--batch",
        "2",
    ]
    from_run = run_cli("generate", "--run", run, *args)
    from_export = run_cli("generate", "--saved-model", tmp_path / "sm" / "tiny", *args)
    port = fake_tf_serving.server_address[1]
    from_server = run_cli(
        "generate", "--server", f"http://127.0.0.1:{port}", "--model-name", "tiny", *args
    )
    for result in (from_run, from_export, from_server):
        assert result.returncode == 0, result.stderr
    assert from_export.stdout == from_run.stdout
    assert from_server.stdout == from_run.stdout
    assert fake_tf_serving.bodies[-1]["inputs"]["seed"] == [11, 12]

    wrong_name = run_cli(
        "generate", "--server", f"http://127.0.0.1:{port}", "--model-name", "other"
    )
    assert wrong_name.returncode == 2
    assert len(error_lines(wrong_name)) == 1 and "answered 404" in wrong_name.stderr
    no_name = run_cli("generate", "--server", f"http://127.0.0.1:{port}")
    assert no_name.returncode == 2 and "--model-name" in no_name.stderr
