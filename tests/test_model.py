"""CharLanguageModel: step-by-step generation state equals the full-sequence pass."""

import keras
import numpy as np
import tensorflow as tf

from lstm_textgen.config import ModelConfig
from lstm_textgen.model import stepping
from lstm_textgen.model.language_model import CharLanguageModel

from helpers import assert_close

V, B, T = 7, 2, 6


def tiny_model(implementation="gates", layers=2):
    return CharLanguageModel.from_model_config(
        ModelConfig(
            vocab_size=V, embedding_dim=3, units=4, num_layers=layers, implementation=implementation
        )
    )


def ids(seed=0, batch=B, time=T):
    return tf.constant(np.random.default_rng(seed).integers(1, V, size=(batch, time)), tf.int32)


def test_logits_shape():
    assert tiny_model()(ids()).shape == (B, T, V)


def test_step_by_step_matches_the_sequence_pass():
    model = tiny_model()
    x = ids()
    full = model(x)
    state = model.initial_state(B)
    for t in range(T):
        logits, state = stepping.step(model, x[:, t], state)
        assert_close(logits, full[:, t])
    assert_close(stepping.next_logits(model, stepping.prime(model, x)), full[:, -1])


def test_weights_for_a_known_batch_give_the_same_step_bit_for_bit():
    model = tiny_model()
    state = stepping.prime(model, ids(2))
    plain = stepping.step_weights(model)
    for_batch = stepping.step_weights(model, batch=B)
    assert for_batch.head[1].shape == (B, V)
    assert [w[2].shape for w in for_batch.layers] == [(B, 16)] * 2

    @tf.function
    def step(weights):
        return stepping.step(model, ids(3)[:, 0], state, weights)

    for a, b in zip(tf.nest.flatten(step(plain)), tf.nest.flatten(step(for_batch))):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_prime_skips_masked_positions():
    model = tiny_model()
    short = ids(1, batch=1, time=3)
    padded = tf.concat([short, tf.zeros([1, 3], tf.int32)], axis=1)
    mask = tf.not_equal(padded, 0)
    for a, b in zip(
        tf.nest.flatten(stepping.prime(model, padded, mask=mask)),
        tf.nest.flatten(stepping.prime(model, short)),
    ):
        assert_close(a, b)


def test_keras_implementation_gives_the_same_logits():
    ours = tiny_model()
    delegate = tiny_model("keras")
    delegate.set_weights(ours.get_weights())
    assert_close(delegate(ids()), ours(ids()))


def test_keras_file_round_trip(tmp_path):
    model = tiny_model()
    model.compile(
        optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, CharLanguageModel)
    assert loaded.get_config() == model.get_config()
    assert_close(loaded(ids()), model(ids()))
