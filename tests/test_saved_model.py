"""`SavedModelGenerator` on an export from before continuation: it still generates, and
what needs the newer signatures is refused in one line."""

import pytest
import tensorflow as tf

from lstm_textgen.errors import TextgenError
from lstm_textgen.generate import generate_spec
from lstm_textgen.request import GenerationRequest, GenerationState
from lstm_textgen.saved_model import SavedModelGenerator, SavedModelScorer
from lstm_textgen.vocab import CharVocabulary

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
