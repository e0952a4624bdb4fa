"""`SavedModelGenerator` on an export from before continuation: it still generates, and
what needs the newer signatures is refused in one line."""

import pytest
import tensorflow as tf

from lstm_textgen.data.vocab import CharVocabulary
from lstm_textgen.errors import TextgenError
from lstm_textgen.generation.backends.saved_model import SavedModelGenerator, SavedModelScorer
from lstm_textgen.generation.graph import generate_spec
from lstm_textgen.generation.request import GenerationRequest, GenerationState

from helpers import cli_in_process


@pytest.fixture(scope="module")
def old_export(tmp_path_factory):
    """A SavedModel whose `serving_default` answers as exports did before continuation:
    `text` and `finish_reason` only (every row "ab", ended by length)."""
    root = tmp_path_factory.mktemp("old_export") / "old"
    module = tf.Module()

    @tf.function(input_signature=generate_spec())
    def serve(prompt, *settings):
        rows = tf.shape(prompt)
        return {"text": tf.fill(rows, "ab"), "finish_reason": tf.fill(rows, "length")}

    version = root / "1"
    tf.saved_model.save(module, str(version), signatures={"serving_default": serve})
    (version / "assets.extra").mkdir()
    CharVocabulary("abc").save(str(version / "assets.extra"))
    return root


def test_an_old_export_generates_without_state_or_log_probabilities(old_export):
    generator = SavedModelGenerator(str(old_export))
    completion = generator.complete(GenerationRequest("a", num_chars=2, seed=1))[0]
    assert (completion.text, completion.finish_reason) == ("ab", "length")
    assert completion.state is None and completion.logprobs == ()


def test_what_needs_continuation_is_refused_in_one_line(old_export):
    generator = SavedModelGenerator(str(old_export))
    with pytest.raises(TextgenError, match="export the run again"):
        generator.stream(GenerationRequest("a", num_chars=2, seed=1))
    state = GenerationState(tf.zeros([2, 4]).numpy(), tf.zeros([2, 4]).numpy(), 2)
    with pytest.raises(TextgenError, match="without continuation; export the run again"):
        generator.complete(GenerationRequest("", num_chars=2, seed=1, state=state))
    for flag in ("--stream", "--show-logprobs"):
        result = cli_in_process("generate", "--saved-model", old_export, "--seed", "1", flag)
        assert result.returncode != 0 and "export the run again" in result.stderr, flag
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_an_export_without_the_weights_map_is_not_scored_through_signatures(old_export):
    with pytest.raises(TextgenError, match="export the run again"):
        SavedModelScorer(str(old_export))


def _copy_export(litert_exported, tmp_path):
    import shutil

    copy = tmp_path / "export" / "1"
    shutil.copytree(litert_exported["saved_model"], copy)
    return copy


def _one_line_error(open_export, path, *names):
    with pytest.raises(TextgenError) as error:
        open_export(str(path))
    message = str(error.value)
    assert "\n" not in message and all(name in message for name in names), message
    return message


def test_an_export_whose_files_changed_is_refused_naming_the_file(litert_exported, tmp_path):
    import json

    copy = _copy_export(litert_exported, tmp_path)
    metadata = json.loads((copy / "assets.extra" / "export.json").read_text())
    assert "variables/variables.index" in metadata["checksums"]
    assert SavedModelGenerator(str(copy)).generate(["the "], num_chars=3, seed=1)

    vocab_path, metadata_path = (
        copy / "assets.extra" / "vocab.json",
        copy / "assets.extra" / "export.json",
    )
    original = {path: path.read_bytes() for path in (vocab_path, metadata_path)}
    vocab = json.loads(vocab_path.read_text())
    vocab_path.write_text(json.dumps({**vocab, "characters": vocab["characters"][:-3]}))
    for open_export in (SavedModelGenerator, SavedModelScorer):
        _one_line_error(open_export, copy, "vocab.json", "changed since it was exported")
    # Without checksums (an export from before them), the graph still tells.
    (copy / "assets.extra" / "export.json").write_text(
        json.dumps({k: v for k, v in metadata.items() if k != "checksums"})
    )
    _one_line_error(SavedModelGenerator, copy, "vocab.json", "but the graph predicts")

    data = next((copy / "variables").glob("variables.data-*"))
    damaged = bytearray(data.read_bytes())
    damaged[10:210] = bytes(range(200))
    data.write_bytes(bytes(damaged))
    for path, content in original.items():
        path.write_bytes(content)
    _one_line_error(SavedModelGenerator, copy, data.name, "changed since it was exported")


def test_an_export_json_with_other_units_is_one_line_on_every_way_in(litert_exported, tmp_path):
    import json

    copy = _copy_export(litert_exported, tmp_path)
    path = copy / "assets.extra" / "export.json"
    metadata = json.loads(path.read_text())
    units = metadata["model"]["units"]
    path.write_text(json.dumps({**metadata, "model": {**metadata["model"], "units": units + 1}}))
    for open_export in (SavedModelGenerator, SavedModelScorer):
        _one_line_error(open_export, copy, "export.json", f"units={units + 1}")
    result = cli_in_process("score", "--saved-model", copy, "--text", "the fox")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert f"says units={units + 1}, but the graph has {units}" in result.stderr
