"""TF Serving's warmup file: every signature at every allowed batch size, replayed."""

from pathlib import Path

import tensorflow as tf

import tf_serving as serving
from saved_model import serve_tf1, signature_names


def test_warmup_file_covers_every_signature_and_allowed_batch_size_and_replays(served, tmp_path):
    from lstm_textgen.export.warmup import ALLOWED_BATCH_SIZES

    path = Path(served["version_dir"]) / "assets.extra" / "tf_serving_warmup_requests"
    requests = serving.read_warmup_requests(str(path))
    covered = {
        (r.model_spec.signature_name, tf.make_ndarray(r.inputs[k]).shape[0])
        for r in requests
        for k in list(r.inputs)[:1]
    }
    assert covered == {
        (name, size)
        for name in signature_names(served["version_dir"])
        for size in ALLOWED_BATCH_SIZES
    }
    for response in serve_tf1(served["version_dir"], requests, tmp_path):
        assert not isinstance(response, str), response
        assert len(response.outputs) >= 1
