"""A client for TF Serving's REST API (`:predict`); it needs no TensorFlow.

The JSON follows TF Serving's REST rules: the columnar format `{"inputs": {...}}` is
answered with `{"outputs": ...}`.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request

from lstm_textgen.errors import TextgenError


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


def generate_body(prompts, num_chars, temperature, top_k, top_p, seed) -> dict:
    """The columnar `serving_default` request: each setting a list, one value per prompt
    (see `rows.row_settings`)."""
    return {
        "signature_name": "serving_default",
        "inputs": {
            "prompt": list(prompts),
            "num_chars": [int(v) for v in num_chars],
            "temperature": [float(v) for v in temperature],
            "top_k": [int(v) for v in top_k],
            "top_p": [float(v) for v in top_p],
            "seed": [int(v) for v in seed],
        },
    }


def texts_from_reply(reply: dict) -> list[str]:
    outputs = reply.get("outputs")
    if isinstance(outputs, dict):
        outputs = outputs.get("text")
    if not isinstance(outputs, list):
        raise TextgenError(f"unexpected reply from TF Serving: {json.dumps(reply)[:200]}")
    return [str(t) for t in outputs]
