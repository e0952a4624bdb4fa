"""GateLSTM against keras.layers.LSTM with copied weights: forward, states, gradients."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from lstm_textgen.model.layers import GateLSTM, GateLSTMCell

from helpers import assert_close

B, T, D, H = 3, 5, 4, 3


def inputs(seed=0, batch=B, time=T, dim=D):
    return tf.constant(np.random.default_rng(seed).normal(size=(batch, time, dim)), tf.float32)


def paired(units=H, input_dim=D, **kwargs):
    """A GateLSTM and a keras LSTM with the same (random, non-default) weights."""
    ours = GateLSTM(units, **kwargs)
    ours.build((None, None, input_dim))
    rng = np.random.default_rng(1)
    ours.set_weights(
        [rng.normal(scale=0.5, size=w.shape).astype("float32") for w in ours.get_weights()]
    )
    ref = keras.layers.LSTM(units, **kwargs)
    ref.build((None, None, input_dim))
    ref.set_weights(ours.get_weights())
    return ours, ref


def keras_delegate_for(layer):
    """The same layer on implementation="keras", with `layer`'s weights."""
    delegate = GateLSTM(H, return_sequences=True, return_state=True, implementation="keras")
    delegate.build((None, None, D))
    delegate.set_weights(layer.get_weights())
    return delegate


@pytest.mark.parametrize("return_sequences", [True, False])
def test_forward_and_states_match_keras_lstm(return_sequences):
    ours, ref = paired(return_sequences=return_sequences, return_state=True)
    x = inputs()
    for a, b in zip(ours(x), ref(x)):
        assert a.shape == b.shape
        assert_close(a, b)


def test_two_stacked_layers_match_keras_lstm_forward_and_states():
    first, first_ref = paired(return_sequences=True, return_state=True)
    second, second_ref = paired(input_dim=H, return_sequences=True, return_state=True)
    x = inputs()
    ours_1, ref_1 = first(x), first_ref(x)
    ours_2, ref_2 = second(ours_1[0]), second_ref(ref_1[0])
    for a, b in zip(ours_1 + ours_2, ref_1 + ref_2):
        assert_close(a, b)


def test_keras_implementation_with_a_mask_takes_the_gate_loop():
    ours, ref = paired(return_sequences=True, return_state=True)
    delegate = keras_delegate_for(ours)
    # Left padding and a fully masked row: cuDNN would reject these masks on a GPU.
    mask = tf.constant(
        [[False, False, True, True, True], [False] * T, [True, False, True, False, True]]
    )
    x = inputs()
    for a, b, c in zip(delegate(x, mask=mask), ours(x, mask=mask), ref(x, mask=mask)):
        assert_close(a, b)
        assert_close(a, c)


def test_initial_state_and_mask_match_keras_lstm():
    ours, ref = paired(return_sequences=True, return_state=True)
    x = inputs()
    h0 = tf.constant(np.random.default_rng(2).normal(size=(B, H)), tf.float32)
    c0 = tf.constant(np.random.default_rng(3).normal(size=(B, H)), tf.float32)
    mask = tf.constant(
        [[True] * T, [True, True, False, False, False], [False, True, True, False, True]]
    )
    for a, b in zip(
        ours(x, initial_state=[h0, c0], mask=mask), ref(x, initial_state=[h0, c0], mask=mask)
    ):
        assert_close(a, b)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_gradients_match_keras_lstm(num_layers):
    pairs = [paired(input_dim=D if k == 0 else H, return_sequences=True) for k in range(num_layers)]
    x = inputs()
    weights = tf.constant(np.random.default_rng(4).normal(size=(B, T, H)), tf.float32)

    def loss_and_grads(layers):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = x
            for layer in layers:
                y = layer(y)
            loss = tf.reduce_sum(y * weights)
        variables = [v for layer in layers for v in layer.trainable_variables]
        return loss, tape.gradient(loss, [x] + variables)

    loss_ours, grads_ours = loss_and_grads([p[0] for p in pairs])
    loss_ref, grads_ref = loss_and_grads([p[1] for p in pairs])
    assert_close(loss_ours, loss_ref)
    assert len(grads_ours) == 1 + 3 * num_layers
    for a, b in zip(grads_ours, grads_ref):
        assert_close(a, b)


def test_the_cell_is_a_keras_rnn_cell_and_one_step_of_the_layer():
    ours, ref = paired(return_sequences=True, return_state=True)
    stepped = keras.layers.RNN(GateLSTMCell(H), return_sequences=True, return_state=True)
    stepped.build((None, None, D))
    stepped.set_weights(ours.get_weights())
    x = inputs()
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        outs = {name: layer(x) for name, layer in (("ours", ours), ("cell", stepped))}
        losses = {name: sum(tf.reduce_sum(o * o) for o in v) for name, v in outs.items()}
    for a, b, c in zip(outs["ours"], outs["cell"], ref(x)):
        assert_close(a, b)
        assert_close(b, c)
    for a, b in zip(
        tape.gradient(losses["ours"], [x] + ours.trainable_variables),
        tape.gradient(losses["cell"], [x] + stepped.trainable_variables),
    ):
        assert_close(a, b)
    config = stepped.cell.get_config()
    assert GateLSTMCell.from_config(config).get_config() == config


def test_the_cell_owns_the_weights_in_either_implementation():
    for implementation in ("gates", "keras"):
        layer = GateLSTM(H, implementation=implementation)
        layer.build((None, None, D))
        assert [w.path for w in layer.weights] == [
            f"{layer.name}/cell/{name}" for name in ("kernel", "recurrent_kernel", "bias")
        ]


def test_keras_implementation_uses_the_same_weights():
    ours, _ = paired(return_sequences=True, return_state=True)
    delegate = keras_delegate_for(ours)
    assert [w.shape for w in delegate.weights] == [w.shape for w in ours.weights]
    x = inputs()
    for a, b in zip(delegate(x), ours(x)):
        assert_close(a, b)
    # The step used by generation reads the delegate's weights too.
    h = c = tf.zeros([B, H])
    out_a, _ = delegate.step(x[:, 0], (h, c))
    out_b, _ = ours.step(x[:, 0], (h, c))
    assert_close(out_a, out_b)


def test_weights_use_keras_layout_and_forget_bias_starts_at_one():
    layer = GateLSTM(H)
    layer.build((None, None, D))
    names = [w.path.split("/")[-1] for w in layer.weights]
    assert names == ["kernel", "recurrent_kernel", "bias"]
    assert [tuple(w.shape) for w in layer.weights] == [(D, 4 * H), (H, 4 * H), (4 * H,)]
    bias = layer.cell.bias.numpy()
    np.testing.assert_array_equal(bias[H : 2 * H], np.ones(H))
    np.testing.assert_array_equal(np.delete(bias, np.s_[H : 2 * H]), np.zeros(3 * H))


def test_step_equals_one_step_of_the_sequence():
    layer, _ = paired(return_sequences=True, return_state=True)
    x = inputs()
    sequence, h, c = layer(x)
    state = (tf.zeros([B, H]), tf.zeros([B, H]))
    for t in range(T):
        out, state = layer.step(x[:, t], state)
        assert_close(out, sequence[:, t])
    assert_close(state[0], h)
    assert_close(state[1], c)


def test_xla_compiled_call_matches_eager():
    layer, _ = paired(return_sequences=True)
    x = inputs()
    compiled = tf.function(lambda x: layer(x), jit_compile=True)
    assert_close(compiled(x), layer(x))


def test_dropout_acts_only_in_training():
    layer, _ = paired(return_sequences=True, dropout=0.5, recurrent_dropout=0.5, seed=3)
    plain, _ = paired(return_sequences=True)
    x = inputs()
    assert_close(layer(x, training=False), plain(x))
    trained = layer(x, training=True).numpy()
    assert np.abs(trained - plain(x).numpy()).max() > 1e-3


def test_config_round_trip_and_keras_file(tmp_path):
    layer = GateLSTM(
        H,
        return_sequences=True,
        dropout=0.25,
        recurrent_dropout=0.1,
        implementation="keras",
        seed=7,
    )
    config = layer.get_config()
    clone = GateLSTM.from_config(config)
    assert clone.get_config() == config

    for implementation in ("gates", "keras"):
        model = keras.Sequential(
            [
                keras.Input((None, D)),
                GateLSTM(H, return_sequences=True, implementation=implementation),
            ]
        )
        path = tmp_path / f"{implementation}.keras"
        model.save(path)
        loaded = keras.models.load_model(path)
        assert isinstance(loaded.layers[0], GateLSTM)
        assert loaded.layers[0].implementation == implementation
        assert_close(loaded(inputs()), model(inputs()))


@pytest.mark.parametrize(
    "kwargs",
    [{"units": 0}, {"units": 3, "implementation": "cudnn"}, {"units": 3, "dropout": 1.0}],
)
def test_bad_arguments_are_rejected(kwargs):
    with pytest.raises(ValueError):
        GateLSTM(**kwargs)


def test_empty_sequence_returns_the_initial_state():
    layer, _ = paired(return_sequences=True, return_state=True)
    sequence, h, c = layer(tf.zeros([B, 0, D]))
    assert sequence.shape == (B, 0, H)
    assert_close(h, tf.zeros([B, H]))
    assert_close(c, tf.zeros([B, H]))
    # The hand-written gradient handles zero steps too: nothing flows to the kernels.
    h0 = tf.ones([B, H])
    with tf.GradientTape() as tape:
        tape.watch(h0)
        _, h, _ = layer(tf.zeros([B, 0, D]), initial_state=[h0, tf.zeros([B, H])])
        loss = tf.reduce_sum(h)
    d_h0, d_kernel = tape.gradient(loss, [h0, layer.cell.recurrent_kernel])
    assert_close(d_h0, tf.ones([B, H]))
    assert_close(d_kernel, tf.zeros_like(d_kernel))


def test_hand_written_gradient_matches_autodiff_for_states_and_under_xla():
    ours, ref = paired(return_sequences=True, return_state=True)
    x = inputs()
    h0 = tf.constant(np.random.default_rng(5).normal(size=(B, H)), tf.float32)
    c0 = tf.constant(np.random.default_rng(6).normal(size=(B, H)), tf.float32)
    w = [
        tf.constant(np.random.default_rng(k).normal(size=s), tf.float32)
        for k, s in ((7, (B, T, H)), (8, (B, H)), (9, (B, H)))
    ]

    def grads(layer):
        with tf.GradientTape() as tape:
            tape.watch([x, h0, c0])
            outs = layer(x, initial_state=[h0, c0])
            loss = sum(tf.reduce_sum(o * k) for o, k in zip(outs, w))
        return tape.gradient(loss, [x, h0, c0] + layer.trainable_variables)

    expected = grads(ref)
    for a, b in zip(grads(ours), expected):
        assert_close(a, b)
    for a, b in zip(tf.function(grads, jit_compile=True)(ours), expected):
        assert_close(a, b)


@pytest.mark.parametrize("implementation", ["gates", "keras"])
@pytest.mark.parametrize("masked", [False, True])
def test_time_major_layer_is_the_batch_major_layer_transposed(implementation, masked):
    batch_major, _ = paired(return_sequences=True, return_state=True)
    time_major = GateLSTM(
        H, return_sequences=True, return_state=True, time_major=True, implementation=implementation
    )
    time_major.build((None, None, D))
    time_major.set_weights(batch_major.get_weights())
    assert GateLSTM.from_config(time_major.get_config()).time_major
    x = inputs()
    # The mask is [batch, time] in either layout.
    mask = (
        tf.constant([[True] * T, [True, False, True, True, False], [False] * T]) if masked else None
    )
    swap = lambda t: tf.transpose(t, [1, 0, 2])  # noqa: E731

    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        expected = batch_major(x, mask=mask)
        got = time_major(swap(x), mask=mask)
        weights = inputs(9, dim=H)
        loss_expected = tf.reduce_sum(expected[0] * weights) + tf.reduce_sum(expected[2])
        loss_got = tf.reduce_sum(swap(got[0]) * weights) + tf.reduce_sum(got[2])
    assert got[0].shape == (T, B, H)
    assert_close(swap(got[0]), expected[0])
    for a, b in zip(got[1:], expected[1:]):
        assert_close(a, b)
    grads_got = tape.gradient(loss_got, [x] + time_major.trainable_variables)
    grads_expected = tape.gradient(loss_expected, [x] + batch_major.trainable_variables)
    for a, b in zip(grads_got, grads_expected):
        assert_close(a, b)


def _product_dtypes(concrete_function):
    """The operand dtype of every matrix product in a function and the functions it calls
    (loop bodies, gradients)."""
    graph_def = concrete_function.graph.as_graph_def()
    nodes = list(graph_def.node)
    for function in graph_def.library.function:
        nodes.extend(function.node_def)
    products = ("MatMul", "BatchMatMulV2", "BatchMatMulV3", "Einsum")
    return {tf.dtypes.as_dtype(n.attr["T"].type).name for n in nodes if n.op in products}


@pytest.mark.parametrize("masked", [False, True])
def test_bfloat16_products_keep_state_in_float32_and_track_float32(masked):
    """Stated tolerance: outputs and states within 2e-2, gradients within 5% of their
    largest value (bfloat16 keeps 8 bits of mantissa; the products round once)."""
    rng = np.random.default_rng(3)
    x = tf.constant(rng.normal(size=(B, T, D)), tf.float32)
    mask = tf.constant(rng.random((B, T)) > 0.3) if masked else None
    f32 = GateLSTM(H, return_sequences=True, return_state=True)
    bf16 = GateLSTM(H, return_sequences=True, return_state=True, matmul_dtype="bfloat16")
    f32.build(x.shape)
    bf16.build(x.shape)
    bf16.set_weights(f32.get_weights())

    def loss_and_grads(layer):
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = layer(x, mask=mask)
            loss = sum(tf.reduce_sum(o * o) for o in outputs)
        return outputs, tape.gradient(loss, [x, *layer.trainable_variables])

    traced = tf.function(lambda: loss_and_grads(bf16)).get_concrete_function()
    # With a mask the recurrent product stays float32 (see GateLSTM's matmul_dtype).
    assert _product_dtypes(traced) == ({"bfloat16", "float32"} if masked else {"bfloat16"})
    assert _product_dtypes(tf.function(lambda: loss_and_grads(f32)).get_concrete_function()) == {
        "float32"
    }
    (expected, expected_grads), (got, got_grads) = loss_and_grads(f32), loss_and_grads(bf16)
    for e, g in zip(expected, got):
        assert g.dtype == tf.float32
        assert_close(g, e, atol=2e-2, rtol=0)
    for e, g in zip(expected_grads, got_grads):
        assert g.dtype == tf.float32
        assert_close(g, e, atol=0.05 * float(tf.reduce_max(tf.abs(e))), rtol=0)
    assert bf16.get_config()["matmul_dtype"] == "bfloat16"
    assert GateLSTM.from_config(bf16.get_config()).matmul_dtype == "bfloat16"


def test_bfloat16_training_steps_track_float32_losses():
    """Stated tolerance: over 8 Adam steps of a small model, each loss within 1% of the
    float32 run's."""
    from lstm_textgen.config import ModelConfig, TrainConfig
    from lstm_textgen.model.language_model import CharLanguageModel
    from lstm_textgen.training.optimizer import compile_model

    config = ModelConfig(vocab_size=12, embedding_dim=8, units=16, num_layers=2)
    models = [CharLanguageModel.from_model_config(config) for _ in range(2)]
    models[1].set_weights(models[0].get_weights())
    models[1].set_matmul_dtype("bfloat16")
    for model in models:
        compile_model(model, TrainConfig(learning_rate=0.01), jit_compile=False, total_steps=8)
    rng = np.random.default_rng(0)
    for _ in range(8):
        x = rng.integers(1, 12, size=(4, 10)).astype("int32")
        f32_loss, bf16_loss = (float(m.train_on_batch(x, np.roll(x, -1, axis=1))) for m in models)
        assert abs(bf16_loss - f32_loss) < 0.01 * f32_loss
