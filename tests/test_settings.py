"""The settings table: each path takes its flags, checks, specs and inputs from it."""

import copy
import dataclasses
import math
import pickle

import numpy as np
import pytest
import tensorflow as tf

from lstm_textgen.errors import TextgenError
from lstm_textgen.generation.request import GenerationRequest
from lstm_textgen.generation.settings import SETTINGS, SamplingSettings, export_inputs


def test_a_row_takes_the_defaults_checks_each_value_and_stays_frozen():
    row = SamplingSettings(temperature=0.5, stop="\n")
    assert dict(row) == {
        name: ({"temperature": 0.5, "stop": ("\n",)}).get(name, spec.default)
        for name, spec in SETTINGS.items()
    }
    assert row.temperature == 0.5 and row.replace(top_k=3).top_k == 3 and row.top_k == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.top_k = 3
    assert pickle.loads(pickle.dumps(row)) == row == copy.deepcopy(row)
    assert hash(row) == hash(copy.copy(row)) and not hasattr(row, "missing")
    with pytest.raises(TextgenError, match="unknown generation setting 'temprature'"):
        SamplingSettings(temprature=1.0)
    for name, bad in [("num_chars", 2.5), ("num_chars", True), ("temperature", math.inf)]:
        with pytest.raises(TextgenError, match=f"^{name} must be"):
            SamplingSettings(**{name: bad})


def test_the_generate_flags_come_from_the_table():
    from lstm_textgen.cli import build_parser, command_parsers

    parser = command_parsers(build_parser())["generate"]
    actions = {a.dest: a for a in parser._actions}
    for name, spec in SETTINGS.items():
        action = actions[name]
        assert action.option_strings == [spec.flag]
        assert action.default == (None if name == "stop" else spec.default)
        assert action.help.startswith(spec.help)


def test_the_generation_page_lists_the_table_as_it_is():
    from conftest import REPO

    page = (REPO / "docs" / "generation.md").read_text()
    shown = {None: "random", (): "none"}
    for name, spec in SETTINGS.items():
        default = shown.get(spec.default, spec.default)
        row = f"| {name} | `{spec.flag}` | {default} | {spec.limits} |"
        assert row in page, row


def test_the_export_inputs_are_every_setting_in_the_table_order():
    rows = [SamplingSettings(seed=4, stop=["a"]), SamplingSettings(seed=9, num_chars=3)]
    inputs = export_inputs(["x", "y"], rows)
    assert list(inputs) == ["prompt", *SETTINGS]
    assert inputs["seed"] == [4, 9] and inputs["num_chars"] == [500, 3]
    assert inputs["stop"] == [["a", "", "", ""], ["", "", "", ""]]
    with pytest.raises(TextgenError, match="every row needs its seed"):
        export_inputs(["x"], [SamplingSettings()])


def test_a_limit_changed_in_the_table_is_followed_by_every_path(monkeypatch, capsys):
    from lstm_textgen.cli import main
    from lstm_textgen.export.saved_model import check_request
    from lstm_textgen.export.warmup import generate_arrays
    from lstm_textgen.generation.graph import generate_spec
    from lstm_textgen.generation.samplers import sampling_batch

    top_k = dataclasses.replace(SETTINGS["top_k"], maximum=5, limits="0 to 5")
    num_chars = dataclasses.replace(SETTINGS["num_chars"], maximum=700, limits="0 to 700")
    monkeypatch.setitem(SETTINGS, "top_k", top_k)
    monkeypatch.setitem(SETTINGS, "num_chars", num_chars)

    # The library's check.
    assert GenerationRequest("a", top_k=5, num_chars=700).checked().rows[0].top_k == 5
    with pytest.raises(TextgenError, match=r"^top_k must be 0 to 5, got 6$"):
        GenerationRequest("a", top_k=6).checked()
    # The command line's, before any model is loaded.
    assert main(["generate", "--top-k", "6"]) == 2
    assert "error: --top-k must be 0 to 5, got 6" in capsys.readouterr().err
    # The export's graph: INVALID_ARGUMENT with the same words.
    inputs = generate_arrays(["a"], [SamplingSettings(seed=1)])
    inputs["top_k"][:] = 6
    tensors = {spec.name: tf.constant(inputs[spec.name], spec.dtype) for spec in generate_spec()}
    prompt = tensors.pop("prompt")
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"top_k must be 0 to 5"):
        check_request(prompt, tensors)
    # A limit the graph clamps: the sampling loop of every export.
    batch = sampling_batch(tf.zeros([2, 3]), {"num_chars": [1000, -4], "seed": 0})
    np.testing.assert_array_equal(batch.num_chars.numpy(), [700, 0])
