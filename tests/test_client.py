"""The TF Serving REST client: request bodies with every input filled, replies read back,
and one-line errors, against a tiny local HTTP server (no TensorFlow needed)."""

import http.server
import json
import threading

import pytest

from lstm_textgen.client import ServerGenerator, completions_from_reply, generate_body
from lstm_textgen.errors import TextgenError
from lstm_textgen.request import Completion, GenerationRequest


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
