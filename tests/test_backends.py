"""One request, four backends: a run, its SavedModel, TF Serving's REST API (the fake
endpoint of `tf_serving.py` serving the export) and its LiteRT file give the same text
and the same finish reasons; stop strings cut the text where the reference cut says."""

import numpy as np
import pytest

from lstm_textgen.errors import TextgenError
from lstm_textgen.generation.generator import first_stop
from lstm_textgen.generation.open_model import open_generator
from lstm_textgen.generation.request import GenerationRequest, GenerationState
from lstm_textgen.generation.settings import MAX_SEED
from lstm_textgen.model import stepping

import tf_serving
from litert_model import LAYERS, UNITS

STOP_CHOICES = ["e", "o ", "the", "k", "x!", "zq"]


@pytest.fixture(scope="module")
def backends(litert_exported):
    """The run of the LiteRT tests, its SavedModel and LiteRT file, and the fake server."""
    pytest.importorskip("ai_edge_litert")
    version_dir = litert_exported["saved_model"]
    with tf_serving.fake_tf_serving("tiny", version_dir) as server:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        yield {
            "run": open_generator(run=str(litert_exported["run"])),
            "saved_model": open_generator(saved_model=version_dir),
            "server": open_generator(server=url, model_name="tiny"),
            "litert": open_generator(litert=litert_exported["fp32"]),
        }


def mixed_request(count=24, seed=0, with_stops=True):
    """`count` rows mixing greedy and sampled rows, top-k, top-p, prompt lengths (with a
    character the model never saw) and stop strings."""
    rng = np.random.default_rng(seed)
    words = ["the ", "quick ", "fox", "pack my ", "jugs!\n", "Ω", "lazy dog."]
    return GenerationRequest(
        prompts=["".join(rng.choice(words, size=int(rng.integers(0, 4)))) for _ in range(count)],
        num_chars=[int(n) for n in rng.integers(0, 60, size=count)],
        temperature=[float(t) for t in rng.choice([0.0, 0.5, 1.0, 1.4], size=count)],
        top_k=[int(k) for k in rng.choice([0, 0, 2, 5], size=count)],
        top_p=[float(p) for p in rng.choice([1.0, 1.0, 0.9, 0.5], size=count)],
        seed=[int(s) for s in rng.integers(0, MAX_SEED, size=count)],
        stop=[
            list(rng.choice(STOP_CHOICES, size=int(rng.integers(0, 5)), replace=False))
            if with_stops
            else []
            for _ in range(count)
        ],
    )


def test_the_same_request_gives_the_same_text_from_every_backend(backends):
    request = mixed_request()
    results = {name: generator.complete(request) for name, generator in backends.items()}
    for name, completions in results.items():
        assert completions == results["run"], name
    reasons = [c.finish_reason for c in results["run"]]
    assert "stop" in reasons and "length" in reasons
    assert any(c.text for c in results["run"])


def test_stop_strings_cut_each_text_right_before_the_first_one(backends):
    with_stops = mixed_request(seed=1)
    without = mixed_request(seed=1, with_stops=False)
    for name, generator in backends.items():
        free = generator.complete(without)
        cut = generator.complete(with_stops)
        stopped = 0
        for row, (f, c) in enumerate(zip(free, cut)):
            stops = with_stops.checked().rows[row].stop
            found = first_stop(f.text, stops)
            expected = f.text if found is None else f.text[: found[0] - found[1]]
            assert c.text == expected, (name, row)
            assert c.finish_reason == ("length" if found is None else "stop"), (name, row)
            assert not any(s in c.text for s in stops), (name, row)
            stopped += found is not None
        assert stopped >= 3, name


def test_a_stop_string_that_never_occurs_ends_with_length(backends):
    request = GenerationRequest(["the ", ""], num_chars=25, temperature=1.0, seed=5, stop=["@@"])
    for name, generator in backends.items():
        completions = generator.complete(request)
        assert [c.finish_reason for c in completions] == ["length"] * 2, name
        assert [len(c.text) for c in completions] == [25, 25], name


@pytest.mark.parametrize(
    "stop,message",
    [
        ([""], "stop string is empty"),
        (["a", "b", "c", "d", "e"], "at most 4 stop strings"),
        (["x" * 17], "at most 16"),
    ],
)
def test_bad_stop_strings_fail_the_request_before_any_backend_runs(backends, stop, message):
    for generator in backends.values():
        with pytest.raises(TextgenError, match=message):
            generator.complete(GenerationRequest("the ", num_chars=5, stop=stop))


def continued_texts(generator, request_of, parts):
    """The texts of `parts` requests, each continuing every row of the last."""
    texts, completions = None, None
    for k in range(parts):
        state = None if completions is None else [c.state for c in completions]
        completions = generator.complete(request_of(k, state))
        pieces = [c.text for c in completions]
        texts = pieces if texts is None else [t + p for t, p in zip(texts, pieces)]
    return texts, completions


def test_one_request_gives_the_text_of_four_that_each_continue_the_last(backends):
    prompts = ["the ", "", "fox"]
    settings = dict(temperature=[1.0, 0.0, 0.8], top_k=[0, 0, 5], seed=[11, 12, 13])
    whole = GenerationRequest(prompts, num_chars=40, **settings)

    def part(k, state):
        return GenerationRequest(
            prompts if k == 0 else [""] * 3, num_chars=10, state=state, **settings
        )

    for name, generator in backends.items():
        one = generator.complete(whole)
        four, last = continued_texts(generator, part, 4)
        assert four == [c.text for c in one], name
        assert [c.state.step for c in last] == [40] * 3, name
        np.testing.assert_allclose(last[0].state.h, one[0].state.h, atol=1e-5, err_msg=name)


def test_a_state_continues_on_another_backend_of_the_same_model(backends):
    request = GenerationRequest("the ", num_chars=20, seed=4)
    first = backends["run"].complete(request)[0]
    following = GenerationRequest("", num_chars=15, seed=4, state=first.state)
    texts = {name: g.complete(following)[0].text for name, g in backends.items()}
    assert set(texts.values()) == {backends["run"].complete(
        GenerationRequest("the ", num_chars=35, seed=4))[0].text[20:]}  # fmt: skip


def test_the_streamed_text_is_the_text_from_every_backend(backends):
    request = mixed_request(count=6, seed=3)
    rows = request.checked().rows
    for name, generator in backends.items():
        whole = generator.complete(request)
        for row, prompt in enumerate(request.prompts):
            one = GenerationRequest(prompt, settings=rows[row])
            stream = generator.stream(one, chunk_chars=3)
            pieces = list(stream)
            assert "".join(pieces) == whole[row].text, (name, row)
            assert stream.completion == whole[row], (name, row)
            assert len(pieces) >= len(whole[row].text) // 3 - 5, (name, row)


def test_log_probs_agree_across_backends_and_with_the_model_outside_the_loop(backends):
    import tensorflow as tf

    request = mixed_request(count=8, seed=5, with_stops=False)
    results = {name: generator.complete(request) for name, generator in backends.items()}
    run = backends["run"]
    for row, completion in enumerate(results["run"]):
        assert len(completion.logprobs) == len(completion.text)
        for name, completions in results.items():
            other = completions[row]
            np.testing.assert_allclose(other.logprobs, completion.logprobs, atol=1e-5)
            np.testing.assert_allclose(other.model_logprobs, completion.model_logprobs, atol=1e-5)
            assert abs(other.model_logprob_sum - completion.model_logprob_sum) < 1e-4, name
        # The model's own log-softmax, over the prompt's known characters and the text.
        prompt_ids = [i for i in run.vocab.encode(request.prompts[row]) if i]
        text_ids = run.vocab.encode(completion.text)
        if not text_ids:
            continue
        ids = tf.constant([prompt_ids + text_ids], tf.int32)
        first = stepping.next_logits(run.model, run.model.initial_state(1))[:, None]
        logits = tf.concat([first, run.model(ids)[:, :-1]], axis=1)
        log_softmax = tf.nn.log_softmax(logits, axis=-1).numpy()[0]
        expected = [log_softmax[len(prompt_ids) + t, i] for t, i in enumerate(text_ids)]
        np.testing.assert_allclose(completion.model_logprobs, expected, atol=1e-5)
        temperature = request.checked().rows[row].temperature
        if temperature == 0:
            assert completion.logprob_sum == 0.0
        elif request.checked().rows[row].top_k == 0 and request.checked().rows[row].top_p == 1:
            scaled = np.where(
                np.arange(logits.shape[-1]) == 0, -np.inf, logits.numpy()[0] / temperature
            )
            scaled = scaled - scaled.max(-1, keepdims=True)
            lsm = scaled - np.log(np.exp(scaled).sum(-1, keepdims=True))
            sampled = [lsm[len(prompt_ids) + t, i] for t, i in enumerate(text_ids)]
            np.testing.assert_allclose(completion.logprobs, sampled, atol=1e-5)


@pytest.mark.parametrize(
    "state,message",
    [
        (
            lambda s: GenerationState(s.h[:1], s.c[:1], s.step),
            rf"state of \[1, {UNITS}\]|h and c must be \[rows, {LAYERS}, {UNITS}\]",
        ),
        (lambda s: GenerationState(s.h, s.c, -1), "start_step must be 0 to"),
        (lambda s: GenerationState(s.h, s.c, s.step, "2x16:0123456789ab"), "another model"),
        (lambda s: "state", "must be a GenerationState"),
        (lambda s: GenerationState(s.h * np.nan, s.c, s.step), "must be finite numbers"),
        (
            lambda s: GenerationState(s.h, np.where(s.c > 0, np.inf, s.c), s.step),
            "must be finite numbers",
        ),
    ],
)
def test_a_bad_state_is_one_line_before_any_backend_runs(backends, state, message):
    good = backends["run"].complete(GenerationRequest("the ", num_chars=3, seed=1))[0].state
    for name, generator in backends.items():
        if name == "server" and "another model" in message:
            continue  # a server's model is not known to the client
        with pytest.raises(TextgenError, match=message):
            generator.complete(GenerationRequest("", num_chars=3, state=state(good)))


def test_a_stop_string_across_two_chunks_cuts_and_leaves_the_state_as_unstreamed(backends):
    free = GenerationRequest("the ", num_chars=40, temperature=1.0, seed=21)
    text = backends["run"].complete(free)[0].text
    # A two-character stop whose last character is itself a stop, first completed where a
    # chunk ends between its two characters: the longer one must win there.
    i = next(k for k in range(3, 30) if text[k + 1] not in text[: k + 1])
    stops = [text[i : i + 2], text[i + 1]]
    request = GenerationRequest("the ", num_chars=40, temperature=1.0, seed=21, stop=stops)
    for name, generator in backends.items():
        whole = generator.complete(request)[0]
        assert (whole.text, whole.finish_reason) == (text[:i], "stop"), name
        stream = generator.stream(request, chunk_chars=i + 1)
        assert "".join(stream) == whole.text, name
        assert stream.completion == whole, name
        assert stream.completion.state.step == whole.state.step == i + 2, name
        np.testing.assert_allclose(stream.completion.state.h, whole.state.h, atol=1e-5)


def test_an_export_refuses_a_state_that_is_not_finite_in_its_graph(litert_exported):
    """A request that reaches the export directly (TF Serving) is checked by the graph."""
    import tensorflow as tf

    signature = tf.saved_model.load(litert_exported["saved_model"]).signatures["continue"]
    state = GenerationState(np.zeros([LAYERS, UNITS]), np.zeros([LAYERS, UNITS]), 0)
    inputs = GenerationRequest("", num_chars=3, seed=1, state=state).checked().export_inputs()
    specs = signature.structured_input_signature[1]
    feeds = {name: tf.constant(value, specs[name].dtype) for name, value in inputs.items()}
    assert signature(**feeds)["text"].shape == (1,)
    feeds["h"] = tf.fill(tf.shape(feeds["h"]), np.nan)
    with pytest.raises(tf.errors.InvalidArgumentError, match="must be finite numbers"):
        signature(**feeds)


def test_a_prompt_with_bytes_that_are_not_utf8_skips_them_on_every_backend(backends):
    """Python reads such bytes off a command line as lone surrogates (surrogateescape)."""
    expected = backends["run"].complete(GenerationRequest("the ", num_chars=12, seed=3))
    for name, generator in backends.items():
        got = generator.complete(GenerationRequest("th\udcffe \ud800", num_chars=12, seed=3))
        assert got == expected, name
