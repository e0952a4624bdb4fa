"""`store.sources`: a model's source parsed once where the user names it."""

import pytest

from lstm_textgen.errors import TextgenError
from lstm_textgen.store.shipped import DEFAULT_MODEL, shipped_model
from lstm_textgen.store.sources import (
    check_one_checkpoint,
    describe_source,
    parse_source,
    shipped_source,
)


def test_no_source_is_the_shipped_model_run_as_exported_or_rebuilt():
    parsed = parse_source()
    assert parsed.shipped == DEFAULT_MODEL and parsed.kind == "saved_model"
    described = describe_source(None)
    assert described == shipped_source(DEFAULT_MODEL)
    assert described.kind == "export"
    assert described.path.startswith(shipped_model().saved_model)
    assert described.label == f"the shipped model {DEFAULT_MODEL}"


@pytest.mark.parametrize(
    "given, kind",
    [
        ({"run": "runs/a", "checkpoint": "last"}, "run"),
        ({"saved_model": "exports/a"}, "saved_model"),
        ({"server": "http://127.0.0.1:8501", "model_name": "m"}, "server"),
        ({"litert": "a.tflite"}, "litert"),
    ],
)
def test_one_named_source_keeps_what_opens_it(given, kind):
    source = parse_source(**given)
    assert source.kind == kind
    assert source.path == given[kind]
    assert source.checkpoint == given.get("checkpoint", "best")
    assert source.model_name == given.get("model_name")
    assert source.shipped is None


def test_two_sources_or_a_model_name_without_a_server_are_refused_in_one_line():
    with pytest.raises(TextgenError, match="at most one of run, saved_model, server and litert"):
        parse_source(run="a", litert="b.tflite")
    with pytest.raises(TextgenError, match="model_name .* give server too"):
        parse_source(run="a", model_name="m")
    with pytest.raises(TextgenError, match="an export holds one checkpoint"):
        check_one_checkpoint("last")


def test_a_path_that_is_neither_a_run_nor_an_export_says_what_it_takes(tmp_path):
    with pytest.raises(TextgenError, match="not a training run directory .* nor a SavedModel"):
        describe_source(str(tmp_path))
    with pytest.raises(TextgenError, match="does not exist; give a run directory"):
        describe_source(str(tmp_path / "missing"))
