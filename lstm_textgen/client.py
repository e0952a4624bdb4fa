"""A client for TF Serving's REST API (`:predict`); it needs no TensorFlow.

The JSON follows TF Serving's REST rules: the columnar format `{"inputs": {...}}` is
answered with `{"outputs": ...}`.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request

from lstm_textgen.errors import TextgenError, first_line_of, setting
from lstm_textgen.request import CheckedRequest, Completion, Generator, completion_from_row


def rest_predict(server: str, model_name: str, body: dict, timeout: float = 60.0) -> dict:
    """POST `body` to `server/v1/models/MODEL:predict` and return the JSON reply."""
    url = f"{server.rstrip('/')}/v1/models/{model_name}:predict"
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            data = reply.read()
    except (ValueError, http.client.InvalidURL) as e:  # a malformed URL
        raise TextgenError(f"bad TF Serving URL {url}: {e}") from None
    except urllib.error.HTTPError as e:
        detail = e.read().decode("utf-8", "replace").strip()
        try:
            detail = json.loads(detail).get("error", detail)
        except (json.JSONDecodeError, AttributeError):
            pass
        detail = first_line_of(str(detail)) or detail
        raise TextgenError(f"TF Serving at {url} answered {e.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise TextgenError(f"cannot reach TF Serving at {url}: {reason}") from None
    except http.client.HTTPException as e:
        raise TextgenError(
            f"{url} did not answer like TF Serving's REST API ({type(e).__name__}); "
            "is that the REST port (8501), not gRPC (8500)?"
        ) from None
    try:
        return json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise TextgenError(f"TF Serving at {url} did not answer with JSON") from None


# The outputs of a generation reply beyond text and finish_reason; an export that
# predates continuation and log-probabilities answers without them.
STATE_OUTPUTS = ("h", "c", "next_step", "logprobs", "model_logprobs")


def generate_body(request: CheckedRequest) -> dict:
    """The columnar request of a checked request to its signature (`serving_default`, or
    `continue` with each row's state), every input filled in (`settings.export_inputs`)."""
    return {"signature_name": request.signature, "inputs": request.export_inputs()}


def completions_from_reply(reply: dict, rows: int) -> list[Completion]:
    """The `Completion`s of a generation reply in the columnar format."""
    outputs = reply.get("outputs")
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
    """

    source = "TF Serving"

    def __init__(self, server: str, model_name: str | None):
        if not model_name:
            raise TextgenError(
                f"{setting('server')} needs {setting('model_name')}, the model's name on the server"
            )
        if not server.startswith(("http://", "https://")):
            raise TextgenError(
                f"{setting('server')} must be an http:// or https:// URL, got {server!r}"
            )
        self.server = server
        self.model_name = model_name

    def _complete(self, request: CheckedRequest) -> list[Completion]:
        try:
            reply = rest_predict(self.server, self.model_name, generate_body(request))
        except TextgenError as e:
            if request.states is not None and "continue" in str(e) and "not found" in str(e):
                raise TextgenError(
                    f"the model {self.model_name} on {self.server} is an export from an "
                    "earlier lstm-textgen, without continuation; export the run again"
                ) from None
            raise
        return completions_from_reply(reply, len(request))
