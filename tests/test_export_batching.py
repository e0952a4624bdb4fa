"""The SavedModel under load: batchable signatures, rows independent of each other, bounded
work per request."""

import numpy as np
import tensorflow as tf

from lstm_textgen.config import MAX_SCORE_CHARS
from lstm_textgen.generation.settings import MAX_PROMPT_CHARS, MAX_STOP_STRINGS

from saved_model import texts, used
from tf_serving import signature_input_shapes


def test_every_signature_input_has_one_batch_dimension(served):
    for name, inputs in signature_input_shapes(served["version_dir"]).items():
        for alias, dims in inputs.items():
            assert len(dims) >= 1 and dims[0] == -1, (name, alias, dims)
            assert all(d > 0 for d in dims[1:]), (name, alias, dims)


def mixed_rows(count, vocab):
    """`count` one-row requests with mixed prompts and settings."""
    rng = np.random.default_rng(11)
    characters = "".join(vocab.characters)
    return [
        {
            "prompt": "".join(rng.choice(list(characters), size=int(rng.integers(0, 12)))),
            "num_chars": int(rng.integers(0, 40)),
            "temperature": float(rng.choice([0.0, 0.5, 1.0, 1.7])),
            "top_k": int(rng.choice([0, 1, 3, 10])),
            "top_p": float(rng.choice([1.0, 0.9, 0.3])),
            "seed": int(rng.integers(0, 2**31)),
            "stop": list(rng.choice(["", "e", "o ", "the"], size=MAX_STOP_STRINGS)),
        }
        for _ in range(count)
    ]


def padded(stops):
    """Stop strings as a signature row: the used ones first, then empty slots."""
    return sorted(stops, key=lambda s: s == "") + [""] * (MAX_STOP_STRINGS - len(stops))


def call(signature, rows):
    specs = signature.structured_input_signature[1]
    inputs = {
        name: tf.constant(
            [padded(row[name]) if name == "stop" else row[name] for row in rows],
            specs[name].dtype,
            shape=[len(rows), MAX_STOP_STRINGS] if name == "stop" else [len(rows)],
        )
        for name in specs
    }
    return texts(signature(**inputs)["text"].numpy())


def test_a_row_gives_the_same_text_alone_and_merged_with_others(served):
    # TF Serving's batcher concatenates unrelated requests: 40 rows with mixed settings
    # give the same texts, bit for bit, one request at a time, merged, and merged in
    # another order and in two halves; and the library gives the same texts.
    signature = tf.saved_model.load(served["version_dir"]).signatures["serving_default"]
    rows = mixed_rows(40, served["vocab"])
    merged = call(signature, rows)
    alone = [call(signature, [row])[0] for row in rows]
    assert merged == alone
    assert call(signature, rows[::-1]) == merged[::-1]
    assert call(signature, rows[:17]) + call(signature, rows[17:]) == merged
    assert call(signature, []) == []
    assert all(len(t) <= row["num_chars"] for t, row in zip(merged, rows))
    settings = {name: [row[name] for row in rows] for name in rows[0] if name != "prompt"}
    settings["stop"] = used(settings["stop"])
    assert served["generator"].generate([row["prompt"] for row in rows], **settings) == merged


def test_only_the_last_characters_of_a_long_prompt_prime_the_state(served):
    signature = tf.saved_model.load(served["version_dir"]).signatures["serving_default"]
    known = "".join(served["vocab"].characters)
    tail = (known * (MAX_PROMPT_CHARS // len(known) + 1))[-MAX_PROMPT_CHARS:]
    # Multi-byte characters the model never saw, right before the kept window.
    long_prompt = "Ω€" * 150_000 + tail
    row = {"num_chars": 30, "temperature": 0.9, "top_k": 0, "top_p": 1.0, "seed": 5, "stop": []}
    capped = call(signature, [{**row, "prompt": long_prompt}])
    assert capped == call(signature, [{**row, "prompt": tail}])


def test_score_reads_at_most_its_limit(served):
    signature = tf.saved_model.load(served["version_dir"]).signatures["score"]
    text = "the lazy dog.\n" * (MAX_SCORE_CHARS // 14 + 50)
    long, limit = (
        signature(text=tf.constant([text, text[:MAX_SCORE_CHARS]]))[k].numpy()
        for k in ("num_chars", "log_likelihood")
    )
    assert long.tolist() == [MAX_SCORE_CHARS] * 2
    assert limit[0] == limit[1]
