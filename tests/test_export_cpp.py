"""The SavedModel from C++: `tensorflow::LoadSavedModel` from the pip wheel's
`libtensorflow_cc` (`tests/serving/tf_predict.cc`) replays the warmup and golden requests."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

import tf_serving as serving
from helpers import assert_close
from saved_model import (
    SERVING_DIR,
    expected_columns,
    generate_request,
    golden,
    outputs_of,
    request_from_rest,
    serve_tf1,
    signature_names,
    texts,
)


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


@pytest.fixture(scope="module")
def cpp_runner(tmp_path_factory):
    return build_cpp_runner(tmp_path_factory.mktemp("cpp"))


def run_cpp(binary, version_dir, request, workdir, name):
    """One PredictRequest through `tf_predict.cc`: (exit status, stderr, response path)."""
    request_path = workdir / f"{name}_request.pb"
    response_path = workdir / f"{name}_response.pb"
    request_path.write_bytes(request.SerializeToString())
    result = subprocess.run(
        [str(binary), str(version_dir), str(request_path), str(response_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    return result.returncode, result.stderr, response_path


@pytest.mark.slow
def test_cpp_load_saved_model_serves_the_shipped_export(cpp_runner, tmp_path):
    """The shipped export as TF Serving's C++ loader runs it: the text of the library."""
    from lstm_textgen.generation.backends.litert import LiteRTModel
    from lstm_textgen.generation.request import GenerationRequest
    from lstm_textgen.store.shipped import shipped_model

    shipped = shipped_model()
    request = GenerationRequest(
        ["ROMEO:", "KING"], num_chars=[60, 30], temperature=[0.8, 0.0], seed=[1, 2], stop=["\n\n"]
    )
    status, stderr, response = run_cpp(
        cpp_runner, Path(shipped.saved_model) / "1", generate_request(request), tmp_path, "shipped"
    )
    assert status == 0, stderr[-2000:]
    got = outputs_of(predict_pb2.PredictResponse.FromString(response.read_bytes()))
    assert texts(got["text"]) == [c.text for c in LiteRTModel(shipped.litert).complete(request)]


@pytest.mark.slow
def test_cpp_load_saved_model_replays_warmup_and_golden_requests(served, cpp_runner, tmp_path):
    binary = cpp_runner
    version_dir = served["version_dir"]
    warmup = serving.read_warmup_requests(
        str(Path(version_dir) / "assets.extra" / "tf_serving_warmup_requests")
    )
    # Every signature at the smallest and the largest batch size (each C++ run loads the
    # export afresh; the TF1 test replays all of them).
    from lstm_textgen.export.warmup import ALLOWED_BATCH_SIZES

    def rows(request):
        return tf.make_ndarray(next(iter(request.inputs.values()))).shape[0]

    ends = (ALLOWED_BATCH_SIZES[0], ALLOWED_BATCH_SIZES[-1])
    warmup = [r for r in warmup if rows(r) in ends]
    assert len(warmup) == 2 * len(signature_names(version_dir))
    bodies = [
        "generate_columnar.json",
        "generate_rows_instances.json",
        "score_instances.json",
        "step_columnar.json",
    ]
    requests = list(warmup) + [request_from_rest(golden(b), version_dir)[0] for b in bodies]
    python_responses = serve_tf1(version_dir, requests, tmp_path / "tf1")
    cpp_responses = []
    for k, request in enumerate(requests):
        status, stderr, response_path = run_cpp(binary, version_dir, request, tmp_path, f"cpp{k}")
        assert status == 0, stderr[-2000:]
        cpp_responses.append(response_path)
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
    refused = request_from_rest(body, version_dir)[0]
    status, stderr, _ = run_cpp(binary, version_dir, refused, tmp_path, "too_many_stops")
    assert status == 4, stderr[-2000:]
    assert "INVALID_ARGUMENT" in stderr and "at most 4 stop strings" in stderr
    # The C++ text for the golden generate request equals the library's.
    golden_generate = outputs_of(
        predict_pb2.PredictResponse.FromString(cpp_responses[len(warmup)].read_bytes())
    )
    c = golden("generate_columnar.json")["inputs"]
    assert texts(golden_generate["text"]) == expected_columns(served["generator"], c)
