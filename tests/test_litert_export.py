"""The LiteRT export: builtin ops only, its metadata, int8 weights, written whole or not at
all, and the export command."""

import json
import os

import numpy as np
import pytest

from lstm_textgen.data.vocab import CharVocabulary
from lstm_textgen.errors import TextgenError
from lstm_textgen.evaluation.run import evaluate_run
from lstm_textgen.export.litert import LITERT_SIGNATURES, export_litert
from lstm_textgen.generation.backends.litert import LiteRTModel, read_metadata

from helpers import cli_in_process
from litert_model import LAYERS, UNITS


def test_the_litert_model_loads_with_builtin_ops_only_and_embeds_its_vocabulary(litert_exported):
    for path in (litert_exported["fp32"], litert_exported["int8"]):
        model = LiteRTModel(path)
        ops = {op["op_name"] for op in model.interpreter._get_ops_details()}
        assert ops and not [op for op in ops if op.startswith("Flex") or op == "CUSTOM"]
        assert {"WHILE", "FULLY_CONNECTED"} <= ops
        signatures = model.interpreter.get_signature_list()
        assert set(signatures) == set(LITERT_SIGNATURES)
        assert sorted(signatures["step"]["inputs"]) == ["c", "h", "ids"]
        assert sorted(signatures["step"]["outputs"]) == ["c", "h", "logits"]
        assert sorted(signatures["prime"]["inputs"]) == ["c", "h", "ids"]
        assert sorted(signatures["generate"]["outputs"]) == sorted(
            ["finish", "ids", "length", "h", "c", "steps", "logprobs", "model_logprobs"]
        )
        assert {"h", "c", "start_step", "stop_ids", "seed"} <= set(signatures["generate"]["inputs"])
        metadata = read_metadata(path)
        assert CharVocabulary(metadata["vocabulary"]["characters"]) == litert_exported["vocab"]
        assert metadata["model"]["units"] == UNITS
        assert metadata["model"]["num_layers"] == LAYERS
    assert read_metadata(litert_exported["int8"])["quantize"] == "dynamic"


def weight_types(path):
    """The element types of a model's constant tensors of 1,024 values or more."""
    return set(weights(path))


def weights(path):
    """`{element type: bytes}` of a model's constant tensors of 1,024 values or more (a
    buffer the signatures share counted once)."""
    from ai_edge_litert import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    with open(path, "rb") as f:
        model = schema.Model.GetRootAs(f.read(), 0)
    types, seen = {}, set()
    for g in range(model.SubgraphsLength()):
        graph = model.Subgraphs(g)
        for t in range(graph.TensorsLength()):
            tensor = graph.Tensors(t)
            size = model.Buffers(tensor.Buffer()).DataLength()
            if tensor.Buffer() in seen:
                continue
            seen.add(tensor.Buffer())
            if size > 0 and np.prod(tensor.ShapeAsNumpy()) >= 1024:
                name = names[tensor.Type()]
                types[name] = types.get(name, 0) + size
    return types


def test_int8_weights_shrink_the_file_and_keep_bits_per_char_within_tolerance(litert_exported):
    assert weight_types(litert_exported["fp32"]) == {"FLOAT32"}
    assert weight_types(litert_exported["int8"]) == {"INT8"}
    # The weights take a quarter of the bytes, and the file shrinks by a good part of what
    # that saves (in a model this tiny, the quantized file adds scales and dequantize ops).
    fp32_bytes, int8_bytes = weights(litert_exported["fp32"]), weights(litert_exported["int8"])
    assert int8_bytes["INT8"] <= 0.26 * fp32_bytes["FLOAT32"]
    saved = os.path.getsize(litert_exported["fp32"]) - os.path.getsize(litert_exported["int8"])
    assert saved > 0.4 * fp32_bytes["FLOAT32"]
    run = str(litert_exported["run"])
    reference = evaluate_run(run)
    fp32 = evaluate_run(run, litert=litert_exported["fp32"])
    int8 = evaluate_run(run, litert=litert_exported["int8"])
    assert fp32.num_chars == int8.num_chars == reference.num_chars
    assert abs(fp32.bits_per_char - reference.bits_per_char) < 1e-4
    # The stated tolerance for int8 weights (README "On devices"): 2% of fp32's bits/char.
    assert abs(int8.bits_per_char - fp32.bits_per_char) < 0.02 * fp32.bits_per_char
    carried = evaluate_run(run, litert=litert_exported["fp32"], carry_state=True)
    assert abs(carried.bits_per_char - evaluate_run(run, carry_state=True).bits_per_char) < 1e-4


def test_litert_export_is_whole_or_absent(litert_exported, tmp_path, monkeypatch):
    target = tmp_path / "model.tflite"
    target.write_bytes(b"the previous model")

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    # The disk fills up after the whole file is written, before it is synced and renamed.
    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(TextgenError, match="could not write .*No space left"):
        export_litert(str(litert_exported["run"]), str(target))
    monkeypatch.undo()
    assert target.read_bytes() == b"the previous model"
    assert os.listdir(tmp_path) == ["model.tflite"]


def test_export_cli_writes_the_model_and_reports_its_size(litert_exported, tmp_path):
    path = tmp_path / "cli.tflite"
    result = cli_in_process("export", "--run", litert_exported["run"], "--litert", path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{path} ({path.stat().st_size:,} bytes)"
    metadata = read_metadata(str(path))
    assert json.loads(json.dumps(metadata))["signatures"] == list(LITERT_SIGNATURES)
