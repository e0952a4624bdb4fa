"""Every signature of the SavedModel through a TF1 loader, as TF Serving loads it: replies
in both REST formats, bad requests and rows refused in the graph."""

import json
import math

import numpy as np
import pytest
import tensorflow as tf

from lstm_textgen.generation.backends.server import STATE_OUTPUTS
from lstm_textgen.generation.request import GenerationRequest
from lstm_textgen.generation.settings import MAX_NUM_CHARS, MAX_STOP_STRINGS, SETTINGS, START_STEP
from lstm_textgen.model import stepping

import tf_serving as serving
from helpers import assert_close
from saved_model import (
    LAYERS,
    REQUEST_FIELDS,
    expected_columns,
    expected_generate_rows,
    golden,
    outputs_of,
    reference_score,
    request_from_rest,
    serve_tf1,
    texts,
    used,
)


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
    logits, new_state = stepping.step(served["model"], tf.constant(columns["ids"]), state)
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
    settings = {REQUEST_FIELDS.get(k, k): v for k, v in columnar["inputs"].items()}
    settings["stop"] = used(settings["stop"])
    completions = served["generator"].complete(GenerationRequest(**settings))
    outputs = replies[0]["outputs"]
    assert set(outputs) == {"text", "finish_reason", *STATE_OUTPUTS}
    assert outputs["text"] == [c.text for c in completions]
    assert outputs["finish_reason"] == [c.finish_reason for c in completions]
    assert outputs["next_step"] == [c.state.step for c in completions]
    for row, c in enumerate(completions):
        assert_close(outputs["model_logprobs"][row][: len(c.text)], c.model_logprobs)
        assert_close(outputs["h"][row], c.state.h)
    texts_of_rows = expected_generate_rows(served["generator"], rows["instances"])
    assert [p["text"] for p in replies[1]["predictions"]] == texts_of_rows
    assert set(replies[1]["predictions"][0]) == {"text", "finish_reason", *STATE_OUTPUTS}


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
        [SETTINGS[name].message for name in ("temperature", "top_p", "top_k")],
    ):
        assert response.startswith("InvalidArgumentError") and message in response, response
    assert [len(t) for t in texts(outputs_of(responses[3])["text"])] == [MAX_NUM_CHARS, 3]
    assert texts(outputs_of(responses[4])["text"]) == [""]
    assert "every input needs one value per prompt" in responses[5]
    assert "a stop string is empty" in responses[6]
    assert "a stop string has at most 16 characters" in responses[7]
    assert SETTINGS["seed"].message in responses[9]
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
    assert SETTINGS["temperature"].message in responses[0]
    assert SETTINGS["temperature"].message in responses[1]
    assert SETTINGS["top_p"].message in responses[2]
    assert SETTINGS["top_k"].message in responses[3]
    assert all(r.startswith("InvalidArgumentError") for r in responses[:4])
    assert len(texts(outputs_of(responses[4])["text"])) == 3


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


def test_continue_goes_on_from_a_reply_and_refuses_a_bad_state_in_the_graph(served, tmp_path):
    generator = served["generator"]
    settings = dict(num_chars=12, temperature=0.9, seed=5)
    first = generator.complete(GenerationRequest("a", **settings))[0]
    whole = generator.complete(GenerationRequest("a", **{**settings, "num_chars": 24}))[0]
    state = first.state

    def request(h=state.h.tolist(), c=state.c.tolist(), start_step=state.step):
        inputs = GenerationRequest("", **settings).checked().export_inputs()
        inputs.update(h=[h], c=[c], start_step=[start_step])
        body = {"signature_name": "continue", "inputs": inputs}
        return request_from_rest(body, served["version_dir"])[0]

    responses = serve_tf1(
        served["version_dir"],
        [
            request(),
            request(h=state.h[:1].tolist(), c=state.c[:1].tolist()),
            request(start_step=-1),
        ],
        tmp_path,
    )
    assert texts(outputs_of(responses[0])["text"]) == [whole.text[12:]]
    # The TF1 loader checks feed shapes first; a loader that does not meets the graph check
    # (tests/test_backends.py, through the fake REST server).
    assert "Cannot feed value of shape (1, 1, 4)" in responses[1], responses[1]
    assert START_STEP.message in responses[2], responses[2]
    assert responses[2].startswith("InvalidArgumentError"), responses[2]
