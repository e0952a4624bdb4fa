"""A `CharLanguageModel` one character at a time: what generation, the exports and
inspection run besides the network's training call.

`prime` reads (padded) prompts and returns the state after them, `next_logits` reads the
prediction off a state, and `step` advances every layer by one character from weights
read once (`step_weights`), so a graph loop of steps reads no variable. State is a tuple
with one `(h, c)` pair per layer, as `CharLanguageModel.initial_state` gives it.

Example:

>>> weights = step_weights(model)
>>> state = prime(model, prompt_ids)                 # [B, T] ids -> state
>>> logits = next_logits(model, state)               # [B, V]
>>> logits, state = step(model, ids, state, weights) # ids [B]
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf


class StepWeights(NamedTuple):
    """Every weight `step` reads, as tensors (a NamedTuple, so `tf.nest` maps over it).

    Attributes:
        input_table: `[V, 4H]`, the first layer's input projection of every id.
        layers: per LSTM layer, `(kernel, recurrent_kernel, bias)`.
        head: the output layer's `(kernel, bias)`.
    """

    input_table: tf.Tensor
    layers: tuple
    head: tuple


def prime(model, ids, mask=None, state=None):
    """Run prompts through the LSTM layers; return the state after their last character.

    Args:
        model: the `CharLanguageModel`.
        ids: int `[B, T]`, the prompts right-padded to one length (T may be 0).
        mask: optional bool `[B, T]`; False positions (padding, unknown characters)
            leave the state untouched.
        state: optional state to start from; zeros otherwise.
    """
    _, final_state = model.run_layers(ids, state=state, mask=mask)
    return final_state


def next_logits(model, state, head_weights=None):
    """Logits `[B, V]` of the character that follows `state`.

    `head_weights`: optional `(kernel, bias)`, as in `step_weights(model).head`.
    """
    kernel, bias = _head_weights(model) if head_weights is None else head_weights
    return tf.matmul(state[-1][0], kernel) + bias


def _head_weights(model):
    return tf.convert_to_tensor(model.head.kernel), tf.convert_to_tensor(model.head.bias)


def step_weights(model, batch=None) -> StepWeights:
    """Every weight `step` reads, as tensors. In a graph loop each variable read is an op
    run at every character: read them once before the loop and pass them to
    `step(..., weights=)`.

    The first layer's input projection depends on the character id alone, so it is
    computed here for every id at once (`input_table`, `[V, 4H]`): a step looks it up
    instead of running the embedding and a matrix product.

    `batch`: the batch size of the loop the weights are for, if it is known. The biases
    then come broadcast to `[batch, N]`. TensorFlow's CPU graph optimizer fuses a product
    and the add of a bias that broadcasts into one oneDNN op, which in a loop costs more
    than the product and an add of equal shapes; the sums are the same, bit for bit.
    """
    layers = tuple(layer.step_weights() for layer in model.lstm_layers)
    # The same rounding as the embedding layer under a mixed-precision policy.
    embeddings = tf.cast(model.embedding.embeddings, model.embedding.compute_dtype)
    kernel, _, bias = layers[0]
    weights = StepWeights(
        input_table=tf.matmul(tf.cast(embeddings, tf.float32), kernel) + bias,
        layers=layers,
        head=_head_weights(model),
    )
    if batch is None:
        return weights

    def rows(bias):
        return tf.broadcast_to(bias, [batch, bias.shape[-1]])

    return weights._replace(
        layers=tuple((kernel, recurrent, rows(bias)) for kernel, recurrent, bias in layers),
        head=(weights.head[0], rows(weights.head[1])),
    )


def step(model, ids, state, weights=None):
    """Feed one id per row: `ids [B]`, state -> (logits `[B, V]`, new state).

    `weights`: optional `step_weights(model)`, read once for a loop of steps.
    """
    weights = step_weights(model) if weights is None else weights
    x, projected = None, tf.gather(weights.input_table, ids)
    new_state = []
    for layer, layer_state, layer_weights in zip(model.lstm_layers, state, weights.layers):
        x, (h, c) = layer.step(x, layer_state, layer_weights, projected)
        projected = None
        new_state.append((h, c))
    new_state = tuple(new_state)
    return next_logits(model, new_state, weights.head), new_state
