"""Running a LiteRT export: parity with the SavedModel, generation, sampling, errors.

Every LiteRT model here is loaded by `ai_edge_litert`'s interpreter, which has no Flex
(select TensorFlow) ops: a model that needed one would fail to load.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from lstm_textgen.generation.backends.litert import LiteRTModel
from lstm_textgen.generation.random_stream import hash_uniforms

from conftest import REPO
from helpers import assert_close, cli_in_process, error_lines, run_cli
from litert_model import LAYERS, PARITY_ATOL, UNITS


def test_litert_step_matches_the_saved_model_step_over_a_chained_sequence(litert_exported, rng):
    litert = LiteRTModel(litert_exported["fp32"])
    step = tf.saved_model.load(litert_exported["saved_model"]).signatures["step"]
    batch, vocab_size = 3, litert_exported["vocab"].size
    h = c = np.zeros((batch, LAYERS, UNITS), np.float32)
    lh, lc = litert.initial_state(batch)
    for _ in range(40):
        ids = rng.integers(1, vocab_size, size=batch).astype(np.int32)
        expected = step(ids=tf.constant(ids), h=tf.constant(h), c=tf.constant(c))
        logits, lh, lc = litert.step(ids, lh, lc)
        h, c = expected["h"].numpy(), expected["c"].numpy()
        assert_close(logits, expected["logits"], atol=PARITY_ATOL, rtol=0)
        assert_close(lh, h, atol=PARITY_ATOL, rtol=0)
        assert_close(lc, c, atol=PARITY_ATOL, rtol=0)


def test_prime_is_the_chain_of_steps(litert_exported, rng):
    litert = LiteRTModel(litert_exported["fp32"])
    ids = rng.integers(1, litert_exported["vocab"].size, size=(2, 6)).astype(np.int32)
    logits, h, c = litert.prime(ids)
    step_logits, step_h, step_c = litert.logits_and_state(ids, *litert.initial_state(2))
    assert_close(logits, step_logits[:, -1])
    assert_close(h, step_h)
    assert_close(c, step_c)
    # An empty prompt leaves the zero state.
    logits, h, c = litert.prime(np.zeros((1, 0), np.int32))
    assert not h.any() and not c.any()
    assert_close(logits[0], litert_exported["model"].head.bias.numpy())


def test_greedy_litert_text_equals_generate_run(litert_exported):
    # "€" is outside the vocabulary: both skip it (and warn alike).
    args = ("--prompt", "the q€uick", "--num-chars", "120", "--temperature", "0")
    from_run = cli_in_process("generate", "--run", litert_exported["run"], *args)
    from_litert = run_cli("generate", "--litert", litert_exported["fp32"], *args)
    assert from_run.returncode == 0, from_run.stderr
    assert from_litert.returncode == 0, from_litert.stderr
    assert from_litert.stdout == from_run.stdout
    assert len(set(from_run.stdout.strip())) > 3  # the tiny model writes more than one letter
    assert error_lines(from_litert) == error_lines(from_run)
    assert len(error_lines(from_litert)) == 1 and "'€'" in error_lines(from_litert)[0]


@pytest.mark.parametrize("weights", ["fp32", "int8"])
def test_seeded_litert_sampling_is_reproducible_and_a_row_does_not_depend_on_its_batch(
    litert_exported, weights
):
    litert = LiteRTModel(litert_exported[weights])
    # Rows of one prompt length run as one batch of the generate signature.
    prompts = ["the ", "fox ", "dog ", "box ", "jugs", "", "pack my"]
    settings = dict(
        num_chars=[40, 25, 40, 1, 30, 20, 0],
        temperature=[0.9, 0.0, 1.3, 1.0, 0.7, 1.0, 1.0],
        top_k=[0, 0, 5, 0, 3, 0, 0],
        top_p=[1.0, 1.0, 0.8, 1.0, 0.9, 1.0, 1.0],
        seed=[3, 4, 5, 6, 7, 8, 9],
    )
    texts = litert.generate(prompts, **settings)
    assert texts == litert.generate(prompts, **settings)
    assert [len(t) for t in texts] == settings["num_chars"]
    for r in range(len(prompts)):
        alone = litert.generate([prompts[r]], **{k: [v[r]] for k, v in settings.items()})
        assert alone == [texts[r]], r
    other_seed = litert.generate(["the "], num_chars=40, temperature=0.9, seed=7)
    assert other_seed != texts[:1]


def generate_ids(litert, prompts, num_chars, temperature, top_k, top_p, seed):
    """The picks of the `generate` signature, every row `num_chars` long, no stop strings."""
    rows = len(prompts)
    stop_ids, stop_lengths = litert.encode_stops([[]] * rows)
    settings = dict(
        num_chars=[num_chars] * rows, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed
    )
    out = litert.generate_ids(prompts, settings, stop_ids, stop_lengths)
    assert (out["length"] == num_chars).all()
    return out["ids"]


def test_litert_top_k_keeps_the_k_likeliest_characters(litert_exported):
    litert = LiteRTModel(litert_exported["fp32"])
    prompt = [litert_exported["vocab"].encode("the lazy")]
    logits = litert.prime(prompt)[0][0]
    logits[0] = -np.inf  # the unknown id is never sampled
    rows = 500

    def first_picks(top_k):
        return generate_ids(litert, prompt * rows, 3, [1.5] * rows, [top_k] * rows,
                            [1.0] * rows, list(range(rows)))  # fmt: skip

    top5 = set(np.argsort(logits)[-5:])
    assert set(first_picks(5)[:, 0]) <= top5 and len(set(first_picks(5)[:, 0])) > 1
    greedy = generate_ids(litert, prompt, 3, [0.0], [0], [1.0], [0])
    assert (first_picks(1) == greedy).all()


def test_litert_samples_follow_the_model_distribution(litert_exported):
    """One character from each of 4,000 rows (seeds 0..3999): its frequencies match the
    softmax of the prompt's logits."""
    litert = LiteRTModel(litert_exported["fp32"])
    vocab = litert_exported["vocab"]
    prompt = [vocab.encode("the lazy")]
    logits = litert.prime(prompt)[0][0].astype(np.float64)
    probs = np.exp(logits - logits.max())
    probs[0] = 0.0  # the unknown id is never sampled
    probs /= probs.sum()
    rows = 4000
    picks = generate_ids(litert, prompt * rows, 1, [1.0] * rows, [0] * rows, [1.0] * rows,
                         list(range(rows)))[:, 0]  # fmt: skip
    counts = np.bincount(picks, minlength=vocab.size)
    assert counts[0] == 0
    # Each frequency within 4 standard deviations of its probability.
    sd = np.sqrt(probs * (1 - probs) / rows)
    assert np.all(np.abs(counts / rows - probs) <= 4 * sd + 1e-3)


def test_hash_uniforms_are_the_same_in_litert_and_spread_evenly(tmp_path):
    class Uniforms(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.int32)])
        def draw(self, seeds, step):
            return {"u": hash_uniforms(seeds, step)}

    module = Uniforms()
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.draw.get_concrete_function()], module
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=converter.convert()).get_signature_runner()
    seeds = np.arange(-500, 1500, dtype=np.int32)
    draws = []
    for step in range(50):
        expected = hash_uniforms(seeds, step).numpy()
        got = runner(seeds=seeds, step=np.array(step, np.int32))["u"]
        np.testing.assert_array_equal(got, expected)
        draws.append(got)
    draws = np.concatenate(draws)
    assert draws.min() >= 0.0 and draws.max() < 1.0
    counts = np.histogram(draws, bins=20, range=(0, 1))[0]
    expected_count = draws.size / 20
    chi2 = ((counts - expected_count) ** 2 / expected_count).sum()
    assert chi2 < 45  # 19 degrees of freedom: p < 0.001 beyond 43.8
    assert len(np.unique(draws)) > 0.99 * draws.size


def test_litert_errors_are_one_line(litert_exported, tmp_path):
    run = litert_exported["run"]
    cases = [
        (("export", "--run", run, "--litert", tmp_path / "m.tfl"), "ends in .tflite"),
        (("export", "--run", run, "--litert", tmp_path / "no" / "m.tflite"), "does not exist"),
        (
            ("export", "--run", run, "--export-base", tmp_path, "--quantize", "dynamic"),
            "--litert exports only",
        ),  # fmt: skip
        (("generate", "--litert", tmp_path / "missing.tflite"), "does not exist"),
        (
            ("generate", "--litert", os.path.dirname(litert_exported["fp32"])),
            "is a folder (it holds model-int8.tflite, model.tflite); give the .tflite file",
        ),
        (("generate", "--litert", litert_exported["fp32"], "--seed", 2**31), "seed must be 0 to"),
        (("evaluate", "--run", run, "--litert", run / "vocab.json"), "not a LiteRT model"),
        (
            ("evaluate", "--run", run, "--litert", litert_exported["fp32"], "--checkpoint", "last"),
            "leave out --checkpoint",
        ),  # fmt: skip
    ]
    for args, message in cases:
        result = cli_in_process(*args)
        assert result.returncode == 2, (args, result.stderr)
        lines = error_lines(result)
        assert len(lines) == 1 and message in lines[0], (args, lines)


def test_litert_generation_runs_without_tensorflow(litert_exported):
    code = (
        "import sys; from lstm_textgen.generation.backends.litert import LiteRTModel; "
        f"m = LiteRTModel({litert_exported['fp32']!r}); "
        "print(len(m.generate(['the'], num_chars=30, seed=1)[0]), "
        "sorted({'tensorflow', 'keras'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["30", "[]"]


def test_scoring_with_litert_runs_without_tensorflow(litert_exported):
    args = ["score", "--litert", str(litert_exported["fp32"]), "--text", "the fox"]
    code = (
        f"import sys; from lstm_textgen.cli import main; code = main({args!r}); "
        "print(code, sorted({'tensorflow', 'keras'} & set(sys.modules)), file=sys.stderr)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert result.stderr.splitlines()[-1] == "0 []", result.stderr
    assert len(result.stdout.splitlines()) == len("the fox")


def test_a_litert_file_with_bytes_overwritten_is_refused(litert_exported, tmp_path):
    from lstm_textgen.errors import TextgenError
    from lstm_textgen.generation.backends.litert import LiteRTModel, read_metadata

    assert len(read_metadata(litert_exported["fp32"])["checksum"]) == 64
    content = bytearray(open(litert_exported["fp32"], "rb").read())
    middle = len(content) // 2
    content[middle : middle + 200] = bytes(range(200))
    damaged = tmp_path / "damaged.tflite"
    damaged.write_bytes(bytes(content))
    with pytest.raises(TextgenError, match="changed since it was exported"):
        LiteRTModel(str(damaged))
