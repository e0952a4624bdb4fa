"""A client for TF Serving's REST API (`:predict`); it needs no TensorFlow.

The JSON follows TF Serving's REST rules: the columnar format `{"inputs": {...}}` is
answered with `{"outputs": ...}`.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request

from lstm_textgen.errors import TextgenError, first_line_of, setting
from lstm_textgen.generation.generator import Generator
from lstm_textgen.generation.request import (
    CheckedRequest,
    Completion,
    completion_from_row,
)
from lstm_textgen.generation.settings import SERVER_DEADLINE


def check_model_name(name) -> str:
    """`name` if TF Serving's REST API can address it (`/v1/models/NAME:predict`): not
    empty, no `/` or `:` (its URL pattern's separators), not `.` or `..`; else an error."""
    if not isinstance(name, str) or not name or name in (".", "..") or any(c in name for c in "/:"):
        raise TextgenError(
            f"{setting('model_name', name)} is not a name TF Serving's REST API can "
            "address: give the name in the server's model config (no '/' or ':')"
        )
    return name


def predict_url(server: str, model_name: str) -> str:
    """`server/v1/models/MODEL:predict`, the name checked and escaped for the URL."""
    escaped = urllib.parse.quote(check_model_name(model_name), safe="")
    return f"{server.rstrip('/')}/v1/models/{escaped}:predict"


class _Deadline:
    """A watch over one request: when `seconds` pass it shuts the request's sockets, so
    a blocked read returns at once, and `passed` tells why it returned."""

    def __init__(self, seconds: float):
        self.seconds = float(seconds)
        self.sockets: list[socket.socket] = []
        self.passed = False
        self._timer = threading.Timer(self.seconds, self._expire)
        self._timer.daemon = True

    def _expire(self):
        self.passed = True
        for sock in self.sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def opener(self) -> urllib.request.OpenerDirector:
        """urllib's opener (proxies and all), with connections whose sockets it watches."""
        watched = self.sockets

        class Connection(http.client.HTTPConnection):
            def connect(self):
                super().connect()
                watched.append(self.sock)

        class SecureConnection(http.client.HTTPSConnection):
            def connect(self):
                super().connect()
                watched.append(self.sock)

        class Handler(urllib.request.HTTPHandler):
            def http_open(self, req):
                return self.do_open(Connection, req)

        class SecureHandler(urllib.request.HTTPSHandler):
            def https_open(self, req):
                return self.do_open(SecureConnection, req, context=ssl.create_default_context())

        return urllib.request.build_opener(Handler, SecureHandler)

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.cancel()


def rest_predict(
    server: str, model_name: str, body: dict, deadline: float = SERVER_DEADLINE
) -> dict:
    """POST `body` to `server/v1/models/MODEL:predict` and return the JSON reply (an
    object); the whole request, from connecting to the reply's last byte, has `deadline`
    seconds."""
    url = predict_url(server, model_name)
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with _Deadline(deadline) as watch:
        try:
            with watch.opener().open(request, timeout=watch.seconds) as reply:
                data = reply.read()
        except (ValueError, http.client.InvalidURL) as e:  # a malformed URL
            raise TextgenError(f"bad TF Serving URL {url}: {e}") from None
        except Exception as e:
            if watch.passed or isinstance(e, TimeoutError | socket.timeout):
                raise TextgenError(
                    f"TF Serving at {url} did not answer within {watch.seconds:g} s; check "
                    f"the server, or allow more time with {setting('deadline')}"
                ) from None
            raise _transport_error(url, e) from None
    try:
        reply = json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise TextgenError(f"TF Serving at {url} did not answer with JSON") from None
    if not isinstance(reply, dict):
        raise TextgenError(
            f"TF Serving at {url} answered with a JSON {type(reply).__name__}, not an object: "
            f"{json.dumps(reply)[:200]}"
        )
    return reply


def _transport_error(url: str, e: Exception) -> Exception:
    """The one-line error of a failed request (`e` itself if it is none of these)."""
    if isinstance(e, urllib.error.HTTPError):
        detail = e.read().decode("utf-8", "replace").strip()
        try:
            detail = json.loads(detail).get("error", detail)
        except (json.JSONDecodeError, AttributeError):
            pass
        detail = first_line_of(str(detail)) or detail
        return TextgenError(f"TF Serving at {url} answered {e.code}: {detail}")
    if isinstance(e, urllib.error.URLError | OSError):
        reason = getattr(e, "reason", e)
        return TextgenError(f"cannot reach TF Serving at {url}: {reason}")
    if isinstance(e, http.client.HTTPException):
        return TextgenError(
            f"{url} did not answer like TF Serving's REST API ({type(e).__name__}); "
            "is that the REST port (8501), not gRPC (8500)?"
        )
    return e


# The outputs of a generation reply beyond text and finish_reason; an export that
# predates continuation and log-probabilities answers without them.
STATE_OUTPUTS = ("h", "c", "next_step", "logprobs", "model_logprobs")


def generate_body(request: CheckedRequest) -> dict:
    """The columnar request of a checked request to its signature (`serving_default`, or
    `continue` with each row's state), every input filled in (`settings.export_inputs`)."""
    return {"signature_name": request.signature, "inputs": request.export_inputs()}


def completions_from_reply(reply: dict, rows: int) -> list[Completion]:
    """The `Completion`s of a generation reply in the columnar format."""
    outputs = reply.get("outputs") if isinstance(reply, dict) else None
    texts = outputs.get("text") if isinstance(outputs, dict) else None
    reasons = outputs.get("finish_reason") if isinstance(outputs, dict) else None
    if not isinstance(texts, list) or not isinstance(reasons, list) or len(texts) != rows:
        raise TextgenError(f"unexpected reply from TF Serving: {json.dumps(reply)[:200]}")
    full = outputs if all(name in outputs for name in STATE_OUTPUTS) else None
    try:
        return [
            completion_from_row(str(t), str(r), full, row, None)
            for row, (t, r) in enumerate(zip(texts, reasons))
        ]
    except (TypeError, ValueError, IndexError):
        raise TextgenError(f"unexpected reply from TF Serving: {json.dumps(reply)[:200]}") from None


class ServerGenerator(Generator):
    """Generation from a model served by TF Serving, through its REST API.

    Args:
        server: the REST endpoint, e.g. `http://localhost:8501`.
        model_name: the model's name on the server.
        deadline: seconds a whole request may take, the reply included.
    """

    source = "TF Serving"

    def __init__(self, server: str, model_name: str | None, deadline: float = SERVER_DEADLINE):
        if not model_name:
            raise TextgenError(
                f"{setting('server')} needs {setting('model_name')}, the model's name on the server"
            )
        if not server.startswith(("http://", "https://")):
            raise TextgenError(
                f"{setting('server')} must be an http:// or https:// URL, got {server!r}"
            )
        if not isinstance(deadline, int | float) or not 0 < deadline < float("inf"):
            raise TextgenError(
                f"{setting('deadline', deadline)} must be a positive number of seconds"
            )
        self.server = server
        self.model_name = check_model_name(model_name)
        self.deadline = float(deadline)

    def _complete(self, request: CheckedRequest) -> list[Completion]:
        try:
            reply = rest_predict(
                self.server, self.model_name, generate_body(request), self.deadline
            )
        except TextgenError as e:
            if request.states is not None and "continue" in str(e) and "not found" in str(e):
                raise TextgenError(
                    f"the model {self.model_name} on {self.server} is an export from an "
                    "earlier lstm-textgen, without continuation; export the run again"
                ) from None
            raise
        return completions_from_reply(reply, len(request))
