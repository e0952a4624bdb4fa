"""GateLSTM is keras.layers.LSTM, argument by argument: the same constructor, the same
numbers (forward and gradients) with the same weights, in every combination of the
arguments that change the loop, and in the places Keras layers go (Bidirectional,
keras.layers.RNN, Sequential, the functional API, regularizers, constraints)."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from lstm_textgen.model.layers import GateLSTM, GateLSTMCell

from helpers import assert_close

B, T, D, H = 3, 5, 4, 3
CONSTANTS = {
    "kernel_initializer": keras.initializers.Constant(0.01),
    "recurrent_initializer": keras.initializers.Constant(0.02),
    "bias_initializer": keras.initializers.Constant(0.03),
}
MASKS = {
    "none": None,
    "right-padded": [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]],
    "holes": [[1, 0, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 0, 0, 0]],
}
IMPLEMENTATIONS = ["gates", "keras"]


def inputs(seed=0, batch=B, time=T, dim=D):
    return tf.constant(np.random.default_rng(seed).normal(size=(batch, time, dim)), tf.float32)


def random_weights(layer, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.normal(scale=0.5, size=w.shape).astype("float32") for w in layer.get_weights()]


def paired(input_shape=(None, None, D), implementation="gates", **kwargs):
    """A GateLSTM and a keras.layers.LSTM with the same random weights."""
    ours = GateLSTM(H, implementation=implementation, **kwargs)
    ref = keras.layers.LSTM(H, **kwargs)
    ours.build(input_shape)
    ref.build(input_shape)
    ours.set_weights(random_weights(ours))
    ref.set_weights(ours.get_weights())
    return ours, ref


def outputs_and_gradients(layer, x, mask=None, initial_state=None):
    """The layer's outputs and the gradients of a weighted sum of them with respect to the
    inputs, the initial state and every weight."""
    watched = [x] + list(initial_state or [])
    with tf.GradientTape() as tape:
        tape.watch(watched)
        outputs = layer(x, mask=mask, initial_state=initial_state)
        outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        # A weight per output and unit, so that no two gradients are alike by symmetry.
        loss = sum(
            tf.reduce_sum(o * (k + 1.0 + tf.range(o.shape[-1], dtype=o.dtype) / 4.0))
            for k, o in enumerate(outputs)
        )
    grads = tape.gradient(loss, watched + layer.trainable_variables)
    return outputs, grads


def assert_same(ours, ref, x, mask=None, initial_state=None):
    got, got_grads = outputs_and_gradients(ours, x, mask, initial_state)
    expected, expected_grads = outputs_and_gradients(ref, x, mask, initial_state)
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert a.shape == b.shape
        assert_close(a, b)
    assert len(got_grads) == len(expected_grads)
    for a, b in zip(got_grads, expected_grads):
        assert_close(a, b)


# Keras's own LSTM tests (keras/src/layers/rnn/lstm_test.py) publish these outputs for
# constant initializers on np.arange(72).reshape(3, 6, 4); each row's three units agree.
PUBLISHED = [
    ({}, [0.6288687, 0.86899155, 0.9460773]),
    ({"go_backwards": True}, [0.35622165, 0.74789524, 0.8872726]),
    ({"unroll": True}, [0.6288687, 0.86899155, 0.9460773]),
    ({"unit_forget_bias": False}, [0.57019705, 0.8661914, 0.9459622]),
    ({"use_bias": False}, [0.54986924, 0.86226785, 0.9443936]),
]


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("kwargs, expected", PUBLISHED)
def test_keras_published_outputs_for_constant_initializers(implementation, kwargs, expected):
    sequence = np.arange(72).reshape((3, 6, 4)).astype("float32")
    layer = GateLSTM(3, implementation=implementation, **CONSTANTS, **kwargs)
    assert_close(layer(sequence), np.repeat(np.array(expected)[:, None], 3, axis=1))


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_keras_published_outputs_stateful_initial_state_and_masks(implementation):
    def layer(units, **kwargs):
        return GateLSTM(units, implementation=implementation, **CONSTANTS, **kwargs)

    sequence = np.arange(24).reshape((2, 3, 4)).astype("float32")
    stateful = layer(4, stateful=True)
    for _ in range(2):
        stateful(sequence)
        assert_close(stateful(sequence), np.repeat([[0.3124785], [0.6863672]], 4, axis=1))
        stateful.reset_state()

    sequence = np.arange(24).reshape((2, 4, 3)).astype("float32")
    state = [np.arange(4).reshape((2, 2)).astype("float32")] * 2
    assert_close(
        layer(2)(sequence, initial_state=state), [[0.20574439, 0.3558822], [0.64930826, 0.66276]]
    )
    assert_close(
        layer(2, go_backwards=True)(sequence, initial_state=state),
        [[0.13281618, 0.2790356], [0.5839337, 0.5992567]],
    )

    mask = np.array([[True, True, True, False], [True, True, False, False]])
    assert_close(
        layer(2, unroll=True)(sequence, mask=mask), np.repeat([[0.11755939], [0.28556206]], 2, 1)
    )
    rows = [
        [0.0158891, 0.05552048, 0.11755939, 0.11755939],
        [0.14185596, 0.28556206, 0.28556206, 0.28556206],
    ]
    assert_close(
        layer(2, return_sequences=True)(sequence, mask=mask),
        np.repeat(np.array(rows)[..., None], 2, 2),
    )
    rows[0][3] = rows[1][2] = rows[1][3] = 0.0
    zeroed = layer(2, return_sequences=True, zero_output_for_mask=True)(sequence, mask=mask)
    assert_close(zeroed, np.repeat(np.array(rows)[..., None], 2, 2))
    backwards_mask = np.array([[False, True, True, True], [False, False, True, True]])
    assert_close(
        layer(2, go_backwards=True)(sequence, mask=backwards_mask),
        np.repeat([[0.15341201], [0.3844719]], 2, 1),
    )


def test_forget_bias_starts_as_keras_starts_it():
    """unit_forget_bias replaces the forget quarter with ones, and the other quarters are
    drawn as Keras draws them (the input's quarter, then the candidate's and output's)."""
    for initializer in (
        "zeros",
        keras.initializers.Constant(0.03),
        keras.initializers.RandomNormal(seed=4),
    ):
        for unit_forget_bias in (True, False):
            kwargs = {"bias_initializer": initializer, "unit_forget_bias": unit_forget_bias}
            ours, ref = GateLSTM(H, **kwargs), keras.layers.LSTM(H, **kwargs)
            ours.build((None, None, D))
            ref.build((None, None, D))
            np.testing.assert_array_equal(ours.cell.bias.numpy(), ref.cell.bias.numpy())
    assert ours.cell.bias.numpy()[H : 2 * H].tolist() != [1.0] * H  # unit_forget_bias=False


@pytest.mark.slow  # 192 pairs of layers, forward and backward: about 30 s
@pytest.mark.parametrize("mask_kind", list(MASKS))
@pytest.mark.parametrize("go_backwards", [False, True])
def test_every_combination_matches_keras_lstm_forward_and_gradients(go_backwards, mask_kind):
    """go_backwards x mask here, and inside return_sequences x return_state x use_bias x
    initial_state x stateful (two calls, then reset_state and one more)."""
    x = [inputs(seed) for seed in range(3)]
    mask = None if MASKS[mask_kind] is None else tf.constant(np.array(MASKS[mask_kind], bool))
    state = [inputs(5, time=1, dim=H)[:, 0], inputs(6, time=1, dim=H)[:, 0]]
    flags = ("return_sequences", "return_state", "use_bias", "initial_state", "stateful")
    for values in itertools.product((False, True), repeat=len(flags)):
        setting = dict(zip(flags, values))
        initial = state if setting.pop("initial_state") else None
        shape = (B, None, D) if setting["stateful"] else (None, None, D)
        ours, ref = paired(shape, go_backwards=go_backwards, **setting)
        calls = [x[0], x[1]] + ([x[2]] if setting["stateful"] else [])
        for k, sequence in enumerate(calls):
            if setting["stateful"] and k == 2:
                ours.reset_state()
                ref.reset_state()
            try:
                assert_same(ours, ref, sequence, mask, initial)
            except AssertionError as e:
                raise AssertionError(
                    f"{setting}, initial_state={initial is not None}, call {k}"
                ) from e


@pytest.mark.parametrize(
    "kwargs",
    [
        {"activation": "relu"},
        {"recurrent_activation": "hard_sigmoid", "activation": "softsign"},
        {"activation": None, "use_bias": False},
        {"unroll": True, "return_sequences": True},
        {"unroll": True, "go_backwards": True, "activation": "relu"},
        {"zero_output_for_mask": True, "return_sequences": True},
        {"zero_output_for_mask": True, "go_backwards": True},
    ],
)
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_activations_unroll_and_zero_output_match_keras_lstm(kwargs, implementation):
    ours, ref = paired(implementation=implementation, return_state=True, **kwargs)
    x = inputs()
    for mask in (None, tf.constant(np.array(MASKS["holes"], bool))):
        assert_same(ours, ref, x, mask)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_a_keras_lstm_config_builds_the_same_layer(implementation):
    reference = keras.layers.LSTM(
        H,
        activation="relu",
        recurrent_activation="hard_sigmoid",
        use_bias=False,
        kernel_initializer="he_normal",
        unit_forget_bias=False,
        kernel_regularizer="l2",
        recurrent_regularizer=keras.regularizers.L1(0.02),
        activity_regularizer="l1",
        kernel_constraint="non_neg",
        recurrent_constraint=keras.constraints.MaxNorm(2.0),
        dropout=0.25,
        recurrent_dropout=0.125,
        seed=3,
        return_sequences=True,
        go_backwards=True,
        # Not unroll=True with these two: Keras's unrolled loop then zeroes the outputs at
        # the masked steps of the unreversed mask, its graph loop (and GateLSTM's, either
        # way) at the steps it skipped.
        zero_output_for_mask=True,
        name="from_keras",
    )
    config = reference.get_config()
    layer = GateLSTM.from_config({**config, "implementation": implementation})
    ours = layer.get_config()
    for key, value in config.items():
        assert ours[key] == value, key
    assert GateLSTM.from_config(ours).get_config() == ours
    for name in (
        "activation",
        "recurrent_activation",
        "kernel_constraint",
        "recurrent_regularizer",
    ):
        assert type(getattr(layer, name)) is type(getattr(reference, name)), name
    layer.build((None, T, D))
    reference.build((None, T, D))
    assert [w.shape for w in layer.weights] == [w.shape for w in reference.weights]
    reference.set_weights(random_weights(reference))
    layer.set_weights(reference.get_weights())
    assert_same(layer, reference, inputs(), tf.constant(np.array(MASKS["holes"], bool)))


def test_get_config_round_trips_every_argument():
    layer = GateLSTM(
        H,
        activation="relu",
        use_bias=False,
        bias_regularizer="l1",
        bias_constraint="non_neg",
        stateful=True,
        unroll=True,
        use_cudnn=False,
        time_major=True,
        matmul_dtype="bfloat16",
    )
    config = layer.get_config()
    assert GateLSTM.from_config(config).get_config() == config
    assert config["use_cudnn"] is False and config["matmul_dtype"] == "bfloat16"


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "ave", "mul", None])
def test_bidirectional_matches_keras_in_every_merge_mode_and_saves(merge_mode, tmp_path):
    x = inputs()
    mask = tf.constant(np.array(MASKS["right-padded"], bool))

    def model(layer):
        sequence = keras.Input((None, D))
        bidirectional = keras.layers.Bidirectional(layer, merge_mode=merge_mode)
        return keras.Model(sequence, bidirectional(keras.layers.Masking()(sequence)))

    ours = model(GateLSTM(H, return_sequences=True))
    ref = model(keras.layers.LSTM(H, return_sequences=True))
    ours.set_weights(random_weights(ours))
    ref.set_weights(ours.get_weights())
    masked_x = x * tf.cast(mask, tf.float32)[..., None]  # Masking reads the zero rows
    for a, b in zip(tf.nest.flatten(ours(masked_x)), tf.nest.flatten(ref(masked_x))):
        assert_close(a, b)
    layer = keras.layers.Bidirectional(GateLSTM(H, return_state=True), merge_mode=merge_mode)
    ref_layer = keras.layers.Bidirectional(
        keras.layers.LSTM(H, return_state=True), merge_mode=merge_mode
    )
    layer.build((None, None, D))
    ref_layer.build((None, None, D))
    layer.set_weights(random_weights(layer))
    ref_layer.set_weights(layer.get_weights())
    assert_same(layer, ref_layer, x, mask)
    path = tmp_path / "bidirectional.keras"
    ours.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.layers[-1].forward_layer, GateLSTM)
    assert loaded.layers[-1].backward_layer.go_backwards
    for a, b in zip(tf.nest.flatten(loaded(masked_x)), tf.nest.flatten(ours(masked_x))):
        assert_close(a, b)


@pytest.mark.parametrize(
    "kwargs", [{}, {"use_bias": False, "activation": "relu"}, {"unit_forget_bias": False}]
)
def test_the_cell_in_keras_rnn_equals_keras_lstm_cell(kwargs):
    settings = {"return_sequences": True, "return_state": True, "go_backwards": True}
    ours = keras.layers.RNN(GateLSTMCell(H, **kwargs), **settings)
    ref = keras.layers.RNN(keras.layers.LSTMCell(H, **kwargs), **settings)
    ours.build((None, None, D))
    ref.build((None, None, D))
    ours.set_weights(random_weights(ours))
    ref.set_weights(ours.get_weights())
    for mask in (None, tf.constant(np.array(MASKS["holes"], bool))):
        assert_same(ours, ref, inputs(), mask)
    config = ours.cell.get_config()
    assert {k: v for k, v in config.items() if k != "name"} == {
        k: v for k, v in ref.cell.get_config().items() if k not in ("name", "implementation")
    }


def test_the_cells_dropout_in_keras_rnn_keeps_one_mask_per_sequence():
    """In training, a zero input carries no signal either way, so a unit whose input mask
    drops it sees the same input at every step: one mask per sequence, as Keras draws it."""
    cell = GateLSTMCell(H, dropout=0.5, seed=1)
    rnn = keras.layers.RNN(cell, return_sequences=True)
    x = tf.ones([64, T, 1])
    rnn(x, training=True)  # builds
    kept = []
    original = cell.call

    def spy(step_input, states, training=False):
        kept.append(cell.get_dropout_mask(step_input))
        return original(step_input, states, training=training)

    cell.call = spy
    rnn(x, training=True)
    masks = np.stack([m.numpy() for m in kept])
    assert (masks == masks[0]).all() and 0 < (masks[0] == 0).mean() < 1
    cell.call = original
    assert_close(rnn(x, training=False), rnn(x))


def test_stacked_in_sequential_and_functional_models_train_as_keras_does():
    def sequential(lstm):
        return keras.Sequential(
            [keras.Input((T, D)), lstm(H, return_sequences=True), lstm(H), keras.layers.Dense(2)]
        )

    def functional(lstm):
        sequence = keras.Input((T, D))
        first, h, c = lstm(H, return_sequences=True, return_state=True)(sequence)
        second = lstm(H)(first, initial_state=[h, c])
        return keras.Model(sequence, keras.layers.Dense(2)(second))

    x, y = inputs(), inputs(7, time=1, dim=2)[:, 0]
    for build in (sequential, functional):
        ours, ref = build(GateLSTM), build(keras.layers.LSTM)
        ours.set_weights(random_weights(ours))
        ref.set_weights(ours.get_weights())
        for model in (ours, ref):
            model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=False)
        losses = [[float(m.train_on_batch(x, y)) for _ in range(2)] for m in (ours, ref)]
        assert_close(losses[0], losses[1])
        for a, b in zip(ours.get_weights(), ref.get_weights()):
            assert_close(a, b)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_the_mask_of_an_embedding_with_mask_zero_reaches_the_layer(implementation):
    def model(lstm):
        return keras.Sequential(
            [
                keras.Input((T,), dtype="int32"),
                keras.layers.Embedding(7, D, mask_zero=True),
                lstm(H, return_sequences=True),
            ]
        )

    ours = model(lambda *a, **k: GateLSTM(*a, implementation=implementation, **k))
    ref = model(keras.layers.LSTM)
    ours.set_weights(random_weights(ours))
    ref.set_weights(ours.get_weights())
    ids = np.array([[1, 2, 3, 0, 0], [0, 4, 0, 5, 6], [0, 0, 0, 0, 0]])
    got, expected = ours(ids), ref(ids)
    assert_close(got, expected)
    assert_close(got[0, 3:], np.repeat(got[0, 2:3], 2, axis=0))  # padding repeats the output


def test_regularizers_give_keras_losses_and_constraints_hold_after_a_step():
    kwargs = {
        "kernel_regularizer": keras.regularizers.L2(0.1),
        "recurrent_regularizer": "l1",
        "bias_regularizer": keras.regularizers.L1L2(0.01, 0.02),
        "activity_regularizer": keras.regularizers.L2(0.5),
        "kernel_constraint": "non_neg",
        "recurrent_constraint": keras.constraints.MaxNorm(0.5),
        "bias_constraint": keras.constraints.MinMaxNorm(0.1, 0.2, axis=0),
    }
    x = inputs()
    models = []
    for lstm in (GateLSTM, keras.layers.LSTM):
        model = keras.Sequential([keras.Input((T, D)), lstm(H, **kwargs)])
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse", jit_compile=False)
        models.append(model)
    ours, ref = models
    ours.set_weights(random_weights(ours))
    ref.set_weights(ours.get_weights())
    ours(x), ref(x)
    assert len(ours.losses) == len(ref.losses) == 4
    assert_close(sorted(float(v) for v in ours.losses), sorted(float(v) for v in ref.losses))
    y = tf.zeros([B, H])
    assert_close(ours.train_on_batch(x, y), ref.train_on_batch(x, y))
    for a, b in zip(ours.get_weights(), ref.get_weights()):
        assert_close(a, b)
    kernel, recurrent, bias = ours.get_weights()
    assert (kernel >= 0).all() and kernel.min() == 0.0  # the step pushed some below zero
    assert (np.linalg.norm(recurrent, axis=0) <= 0.5 + 1e-6).all()
    assert 0.1 - 1e-6 <= np.linalg.norm(bias) <= 0.2 + 1e-6


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"units": 0}, "units"),
        ({"units": -2}, "units"),
        ({"units": 2.5}, "units"),
        ({"units": "3"}, "units"),
        ({"units": 3, "activation": "relux"}, "activation='relux'"),
        ({"units": 3, "recurrent_activation": "sigmoidal"}, "recurrent_activation="),
        ({"units": 3, "kernel_regularizer": "l7"}, "kernel_regularizer="),
        ({"units": 3, "bias_constraint": "positive"}, "bias_constraint="),
        ({"units": 3, "recurrent_initializer": "ortho"}, "recurrent_initializer="),
        ({"units": 3, "use_cudnn": "yes"}, "use_cudnn"),
        ({"units": 3, "use_cudnn": True}, "implementation='keras'"),
        ({"units": 3, "dropout": 1.0}, "dropout"),
        ({"units": 3, "recurrent_dropout": -0.1}, "recurrent_dropout"),
        ({"units": 3, "implementation": "cudnn"}, "implementation"),
    ],
)
def test_bad_arguments_are_one_line_naming_the_argument(kwargs, words):
    with pytest.raises(ValueError, match=".*".join(map(str, [words]))) as error:
        GateLSTM(**kwargs)
    assert "\n" not in str(error.value)


def _error_of(run):
    with pytest.raises(ValueError) as error:
        run()
    return str(error.value)


def test_bad_calls_name_the_problem():
    message = _error_of(
        lambda: keras.Sequential([keras.Input((None, D)), GateLSTM(H, stateful=True)])
    )
    assert "stateful=True needs a fixed batch size" in message
    message = _error_of(lambda: GateLSTM(H)(inputs(), mask=tf.ones([B, T + 1], tf.bool)))
    assert (
        f"mask must be boolean [batch, time] = [{B}x{T}]" in message
        and f"({B}, {T + 1})" in message
    )
    message = _error_of(lambda: GateLSTM(H)(inputs(), mask=tf.ones([T], tf.bool)))
    assert "mask must be boolean" in message
    unrolled = GateLSTM(H, unroll=True)
    unknown_length = [tf.TensorSpec([None, None, D], tf.float32)]
    message = _error_of(
        lambda: tf.function(unrolled, input_signature=unknown_length).get_concrete_function()
    )
    assert "unroll=True needs a fixed number of time steps" in message
    stateful = GateLSTM(H, stateful=True)
    stateful.build((B, None, D))
    message = _error_of(lambda: stateful(inputs(batch=B + 1)))
    assert f"built for batches of {B} got a batch of {B + 1}" in message
    message = _error_of(lambda: GateLSTM(H)(inputs(), initial_state=[tf.zeros([B, H])]))
    assert "initial_state must be [h0, c0]" in message
    message = _error_of(lambda: GateLSTM(H)(tf.zeros([B, D])))
    assert "expected ndim=3" in message
