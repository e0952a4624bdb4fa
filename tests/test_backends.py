"""One request, four backends: a run, its SavedModel, TF Serving's REST API (the fake
endpoint of `tf_serving.py` serving the export) and its LiteRT file give the same text
and the same finish reasons; stop strings cut the text where the reference cut says."""

import numpy as np
import pytest

from lstm_textgen.backends import open_generator
from lstm_textgen.config import ModelConfig
from lstm_textgen.errors import TextgenError
from lstm_textgen.export import export_for_serving
from lstm_textgen.litert_export import export_litert
from lstm_textgen.request import GenerationRequest, stop_at_first
from lstm_textgen.settings import MAX_SEED

import tf_serving
from helpers import train_tiny, write_corpus

STOP_CHOICES = ["e", "o ", "the", "k", "x!", "zq"]


@pytest.fixture(scope="module")
def backends(tmp_path_factory, small_text):
    pytest.importorskip("ai_edge_litert")
    root = tmp_path_factory.mktemp("backends")
    run = root / "run"
    train_tiny(
        run,
        write_corpus(root, small_text),
        ModelConfig(units=16, num_layers=2, embedding_dim=4),
        max_steps=20,
        checkpoint_every=20,
    )
    version_dir = export_for_serving(str(run), str(root / "saved_models" / "tiny"), warmup=False)
    litert = export_litert(str(run), str(root / "tiny.tflite"))
    with tf_serving.fake_tf_serving("tiny", version_dir) as server:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        yield {
            "run": open_generator(run=str(run)),
            "saved_model": open_generator(saved_model=str(root / "saved_models" / "tiny")),
            "server": open_generator(server=url, model_name="tiny"),
            "litert": open_generator(litert=litert),
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
            expected, found = stop_at_first(f.text, stops)
            assert c.text == expected, (name, row)
            assert c.finish_reason == ("stop" if found else "length"), (name, row)
            assert not any(s in c.text for s in stops), (name, row)
            stopped += found
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
