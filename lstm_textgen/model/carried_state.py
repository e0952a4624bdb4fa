"""`CarriedState`: the LSTM state that training with `--carry-state` carries from one
batch to the next (truncated backpropagation through time, as char-rnn trains)."""

from __future__ import annotations

import tensorflow as tf


class CarriedState:
    """The state that training with `--carry-state` carries from one batch to the next.

    One `(h, c)` pair of `[batch, units]` float32 variables per layer. Row b of batch s
    continues row b of batch s - 1 (`data.windows.make_stream_dataset`); at the first batch of
    each pass over the streams (s a multiple of `batches_per_pass`) the state starts from
    zeros again. The variables are not the model's weights: a checkpoint keeps them
    beside the weights (`store.checkpoints.save_checkpoint`), and generation never reads them.

    `batches` counts the training batches: each `write` adds one, and the training loop
    sets it to the run's step when it starts or resumes (`start_at`), so the forward pass
    reads where a pass begins from the carried state itself, not from the optimizer.
    """

    def __init__(self, num_layers: int, batch_size: int, units: int, batches_per_pass: int):
        self.batches_per_pass = int(batches_per_pass)
        self.variables = [
            tf.Variable(tf.zeros([batch_size, units]), trainable=False, name=f"carried_{k}")
            for k in range(2 * num_layers)
        ]
        self.batches = tf.Variable(0, dtype=tf.int64, trainable=False, name="carried_batches")

    def start_at(self, step: int) -> None:
        """The next training batch is batch `step` of the run."""
        self.batches.assign(step)

    def read(self, step):
        """The state to start batch `step` from: the carried one, or zeros at a new pass."""
        step = tf.cast(step, tf.int64)
        keep = tf.cast(tf.math.floormod(step, self.batches_per_pass) != 0, tf.float32)
        v = [variable * keep for variable in self.variables]
        return tuple((v[k], v[k + 1]) for k in range(0, len(v), 2))

    def write(self, state) -> None:
        """Keep `state`, the state after a batch, for the next one (no gradient flows)."""
        values = [part for pair in state for part in pair]
        for variable, value in zip(self.variables, values, strict=True):
            variable.assign(tf.stop_gradient(tf.cast(value, tf.float32)))
        self.batches.assign_add(1)

    @property
    def shape(self) -> tuple:
        """`(2 * layers, batch, units)`: the shape of `numpy()`."""
        return (len(self.variables), *self.variables[0].shape)

    def numpy(self):
        """All of it as one array `[2 * layers, batch, units]`, for a checkpoint."""
        return tf.stack(self.variables).numpy()

    def assign(self, array) -> None:
        for variable, value in zip(self.variables, array, strict=True):
            variable.assign(value)
