"""The TF Serving REST client: request bodies with every input filled, replies read back,
and one-line errors, against a tiny local HTTP server (no TensorFlow needed)."""

import http.server
import json
import threading
import time

import pytest

from lstm_textgen.errors import TextgenError
from lstm_textgen.generation.backends.server import (
    ServerGenerator,
    completions_from_reply,
    generate_body,
)
from lstm_textgen.generation.request import Completion, GenerationRequest


class Echo(http.server.BaseHTTPRequestHandler):
    """Answers every predict with one `x` per prompt, or the status the path asks for."""

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.bodies.append(body)
        if "broken" in self.path:
            payload, code = b"<html>oops</html>", 200
        elif "missing" in self.path:
            payload, code = json.dumps({"error": "Servable not found"}).encode(), 404
        else:
            rows = len(body["inputs"]["prompt"])
            outputs = {"text": ["x"] * rows, "finish_reason": ["length"] * rows}
            payload, code = json.dumps({"outputs": outputs}).encode(), 200
        self.send_response(code)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    httpd.bodies = []
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_the_body_fills_every_input_and_pads_the_stop_slots():
    rows = GenerationRequest(["a", "b"], num_chars=3, seed=7, stop=[["\n"], []]).checked()
    inputs = generate_body(rows)["inputs"]
    assert inputs["seed"] == [7, 8] and inputs["num_chars"] == [3, 3]
    assert inputs["stop"] == [["\n", "", "", ""], ["", "", "", ""]]
    assert set(inputs) == {"prompt", "num_chars", "temperature", "top_k", "top_p", "seed", "stop"}


def test_a_server_generator_sends_one_request_and_reads_the_completions(server):
    url = f"http://127.0.0.1:{server.server_address[1]}"
    completions = ServerGenerator(url, "m").complete(GenerationRequest(["a", "b"], seed=1))
    assert completions == [Completion("x", "length")] * 2
    assert len(server.bodies) == 1


def test_bad_replies_and_urls_are_one_line_errors(server):
    url = f"http://127.0.0.1:{server.server_address[1]}"
    request = GenerationRequest("a", seed=1)
    for name, message in (("missing", "answered 404: Servable not found"),
                          ("broken", "did not answer with JSON")):  # fmt: skip
        with pytest.raises(TextgenError, match=message):
            ServerGenerator(url, name).complete(request)
    with pytest.raises(TextgenError, match="model_name"):
        ServerGenerator(url, None)
    with pytest.raises(TextgenError, match="http://"):
        ServerGenerator("localhost:8501", "m")
    with pytest.raises(TextgenError, match="unexpected reply"):
        completions_from_reply({"outputs": {"text": ["x"]}}, 1)


class Recorder(http.server.BaseHTTPRequestHandler):
    """Records the path it was asked for and answers as `server.answer` says: "list" (a
    JSON list), "drip" (headers, then a byte a second), or a generation reply."""

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.server.paths.append(self.path)
        self.rfile.read(int(self.headers["Content-Length"]))
        answer = self.server.answer
        if answer == "drip":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            for _ in range(20):  # bounded: at most 20 s, long past the deadline
                try:
                    self.wfile.write(b" ")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(1.0)
            return
        payload = json.dumps(
            ["text"]
            if answer == "list"
            else {"outputs": {"text": ["x"], "finish_reason": ["length"]}}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def recorder():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    httpd.paths, httpd.answer, httpd.daemon_threads = [], "reply", True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("name", ["../../etc", "a/b?x=1#f", "m:predict", "..", ".", ""])
def test_a_model_name_the_rest_api_cannot_address_is_refused_before_any_request(recorder, name):
    httpd, url = recorder
    with pytest.raises(
        TextgenError,
        match="is not a name TF Serving's REST API can address" if name else "model_name",
    ):
        ServerGenerator(url, name)
    assert httpd.paths == []


def test_a_model_name_is_escaped_into_the_path_it_names(recorder):
    httpd, url = recorder
    request = GenerationRequest("a", seed=1)
    for name, path in (("shakespeare", "shakespeare"), ("my model?#", "my%20model%3F%23")):
        assert ServerGenerator(url, name).complete(request) == [Completion("x", "length")]
        assert httpd.paths[-1] == f"/v1/models/{path}:predict"


def test_a_reply_that_is_not_a_json_object_is_one_line(recorder):
    httpd, url = recorder
    httpd.answer = "list"
    with pytest.raises(
        TextgenError, match=r"answered with a JSON list, not an object: \[\"text\"\]"
    ):
        ServerGenerator(url, "m").complete(GenerationRequest("a", seed=1))
    with pytest.raises(TextgenError, match="unexpected reply"):
        completions_from_reply(["text"], 1)


def test_a_server_that_drips_its_reply_is_cut_off_at_the_deadline(recorder):
    httpd, url = recorder
    httpd.answer = "drip"
    started = time.monotonic()
    with pytest.raises(TextgenError, match=r"did not answer within 1.5 s; .*deadline"):
        ServerGenerator(url, "m", deadline=1.5).complete(GenerationRequest("a", seed=1))
    # A byte a second keeps every read alive: only the deadline over the whole request ends it.
    assert time.monotonic() - started < 10
    for bad in (0, -1, float("nan"), float("inf"), "10"):
        with pytest.raises(TextgenError, match="deadline"):
            ServerGenerator(url, "m", deadline=bad)
