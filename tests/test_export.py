"""The SavedModel export: versioned layout, the op set a CPU TF Serving runs, Keras runs."""

import os
import shutil
from pathlib import Path

import pytest
import tensorflow as tf

from lstm_textgen.config import ModelConfig
from lstm_textgen.errors import TextgenError
from lstm_textgen.export.saved_model import export_for_serving
from lstm_textgen.generation.backends.keras import TextGenerator
from lstm_textgen.store.loading import load_trained_model

from helpers import train_tiny, write_corpus
from saved_model import (
    UNITS,
    expected_columns,
    golden,
    outputs_of,
    request_from_rest,
    serve_tf1,
    texts,
)
from tf_serving import denied_ops, graph_op_types


def test_versioned_layout_and_next_free_version(served, tmp_path):
    version_dir = Path(served["version_dir"])
    assert version_dir.name == "1"
    for name in (
        "saved_model.pb",
        "variables",
        "assets.extra/vocab.json",
        "assets.extra/export.json",
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


@pytest.mark.slow
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


def test_the_metadata_is_export_json_and_an_earlier_config_json_still_reads(served, tmp_path):
    from lstm_textgen.store.export_layout import ExportMetadata
    from lstm_textgen.store.sources import describe_source, source_configs

    version_dir = Path(served["version_dir"])
    metadata = ExportMetadata.read(str(version_dir))
    assert metadata.format == "lstm-textgen SavedModel"
    assert metadata.limits["max_num_chars"] == 10_000 and metadata.model["units"] == UNITS
    earlier = tmp_path / "earlier" / "1"
    shutil.copytree(version_dir, earlier)
    (earlier / "assets.extra" / "export.json").rename(earlier / "assets.extra" / "config.json")
    model_config, _, vocab = source_configs(describe_source(str(earlier)))
    assert model_config.units == UNITS and vocab == served["vocab"]
