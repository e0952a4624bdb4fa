"""`lstm-textgen score` and `evaluate.score_text`: each character's log-probability, the
same from a run, its SavedModel (the `score` signature, and `SavedModelScorer` through
`step`) and its LiteRT file."""

import json

import numpy as np
import pytest
import tensorflow as tf

from lstm_textgen.evaluation.run import evaluate_run
from lstm_textgen.generation.backends.saved_model import SavedModelScorer
from lstm_textgen.generation.open_model import open_scorer
from lstm_textgen.generation.scoring import score_text

from helpers import cli_in_process

TEXT = "the quick Ωfox\njumps"  # Ω: a character the model never saw


def scores(result):
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_score_prints_one_json_line_per_character_the_same_from_run_and_litert(litert_exported):
    pytest.importorskip("ai_edge_litert")
    run = litert_exported["run"]
    from_run = scores(cli_in_process("score", "--run", run, "--text", TEXT))
    from_litert = scores(
        cli_in_process("score", "--litert", litert_exported["fp32"], "--text", TEXT)
    )
    assert "".join(s["char"] for s in from_run) == TEXT
    assert [s["char"] for s in from_litert] == [s["char"] for s in from_run]
    assert from_run[TEXT.index("Ω")]["logprob"] is None
    known = [s["logprob"] for s in from_run if s["logprob"] is not None]
    assert len(known) == len(TEXT) - 1 and all(x < 0 for x in known)
    np.testing.assert_allclose(
        [s["logprob"] for s in from_litert if s["logprob"] is not None], known, atol=1e-5
    )


def test_the_scores_equal_the_exports_score_signature(litert_exported):
    run = litert_exported["run"]
    scorer, vocab = open_scorer(str(run))
    # Scored in pieces of 3 characters, the state carried: the same as in one piece.
    pieces = [s.logprob for s in score_text(scorer, vocab, TEXT, piece=3)]
    loaded = tf.saved_model.load(litert_exported["saved_model"])
    out = loaded.signatures["score"](text=tf.constant([TEXT]))
    expected = out["log_probs"].numpy()[0]
    assert len(expected) == len(TEXT)
    for k, value in enumerate(pieces):
        if value is None:
            assert expected[k] == 0.0
        else:
            assert abs(value - expected[k]) < 1e-5, k
    known = sum(v for v in pieces if v is not None)
    assert abs(known - float(out["log_likelihood"].numpy()[0])) < 1e-4


def test_the_saved_model_scorer_runs_the_signatures_to_the_keras_scores(litert_exported):
    run, export = litert_exported["run"], litert_exported["saved_model"]
    keras_scorer, vocab = open_scorer(str(run))
    signatures, export_vocab = open_scorer(saved_model=export)
    assert isinstance(signatures, SavedModelScorer) and export_vocab == vocab
    ids = np.array([vocab.encode("the fox"), vocab.encode("jugs!\nq")], np.int32)
    # From a state that is not the initial one: each scorer carries its own form of it.
    _, keras_state = keras_scorer.char_log_probs(ids, keras_scorer.initial_state(2))
    _, export_state = signatures.char_log_probs(ids, signatures.initial_state(2))
    want, _ = keras_scorer.char_log_probs(ids[:, ::-1], keras_state)
    got, _ = signatures.char_log_probs(ids[:, ::-1], export_state)
    np.testing.assert_allclose(got, want, atol=1e-5)
    want_loss, _ = keras_scorer.summed_loss(ids[:, :-1], ids[:, 1:], keras_state)
    got_loss, _ = signatures.summed_loss(ids[:, :-1], ids[:, 1:], export_state)
    assert abs(got_loss - want_loss) < 1e-4
    through_export = scores(cli_in_process("score", "--saved-model", export, "--text", TEXT))
    from_run = scores(cli_in_process("score", "--run", run, "--text", TEXT))
    assert [s["char"] for s in through_export] == [s["char"] for s in from_run]
    np.testing.assert_allclose(
        [s["logprob"] or 0.0 for s in through_export], [s["logprob"] or 0.0 for s in from_run],
        atol=1e-5,
    )  # fmt: skip
    reference = evaluate_run(str(run), batch_size=8)
    evaluated = evaluate_run(str(run), batch_size=8, saved_model=export)
    assert evaluated.num_chars == reference.num_chars
    assert abs(evaluated.bits_per_char - reference.bits_per_char) < 1e-5


def test_score_errors_are_one_line(tmp_path, trained_text_run):
    trained_text_run, _ = trained_text_run
    missing = cli_in_process("score", "--run", trained_text_run, "--text-file", tmp_path / "no")
    assert missing.returncode != 0 and "cannot read" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    empty = cli_in_process("score", "--run", trained_text_run, "--text", "")
    assert empty.returncode != 0 and "empty" in empty.stderr


def test_bytes_that_are_not_utf8_and_carriage_returns_are_skipped_and_said(
    tmp_path, litert_exported
):
    pytest.importorskip("ai_edge_litert")
    model = litert_exported["fp32"]
    path = tmp_path / "crlf.txt"
    path.write_bytes(b"the fox\r\nju\xffmps")
    result = cli_in_process("score", "--litert", model, "--text-file", path)
    lines = scores(result)
    assert "".join(s["char"] for s in lines) == "the fox\r\nju\ufffdmps"
    assert lines[7]["logprob"] is None and lines[11]["logprob"] is None  # "\r", the byte
    assert "1 byte(s) of" in result.stderr and "not UTF-8" in result.stderr
    assert "2 the model never saw were skipped" in result.stderr
    clean = scores(cli_in_process("score", "--litert", model, "--text", "the fox\njumps"))
    assert [s["logprob"] for s in lines if s["logprob"] is not None] == pytest.approx(
        [s["logprob"] for s in clean], abs=1e-5
    )


def test_a_text_with_no_known_character_is_an_error_not_a_zero_score(litert_exported):
    pytest.importorskip("ai_edge_litert")
    result = cli_in_process("score", "--litert", litert_exported["fp32"], "--text", "ΩΩ")
    assert result.returncode == 2
    assert "none of the text's 2 characters is in the model's vocabulary" in result.stderr
    assert "-0.0000" not in result.stderr


def test_a_long_text_scored_in_xla_pieces_equals_the_graph_pieces(litert_exported):
    """Full pieces of `PIECE_CHARS` run under XLA, shorter ones in a graph: the same scores."""
    from lstm_textgen.generation.scoring import PIECE_CHARS

    scorer, vocab = open_scorer(str(litert_exported["run"]))
    text = ("the quick brown fox jumps over the lazy dog. " * 40)[: PIECE_CHARS + 100]
    in_pieces = [s.logprob for s in score_text(scorer, vocab, text)]  # XLA, then graph
    in_small_pieces = [s.logprob for s in score_text(scorer, vocab, text, piece=300)]
    assert None not in in_pieces and len(in_pieces) == len(text)
    np.testing.assert_allclose(in_pieces, in_small_pieces, atol=1e-5)
    assert scorer._piece_log_probs_xla.experimental_get_tracing_count() == 1
