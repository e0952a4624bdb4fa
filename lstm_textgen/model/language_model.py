"""`CharLanguageModel`: Embedding -> stacked GateLSTM -> Dense logits over characters."""

from __future__ import annotations

import keras
import tensorflow as tf

from lstm_textgen.config import ModelConfig
from lstm_textgen.model.carried_state import CarriedState
from lstm_textgen.model.layers import GateLSTM


@keras.saving.register_keras_serializable(package="lstm_textgen")
class CharLanguageModel(keras.Model):
    """A character-level LSTM language model.

    Ids `[B, T]` -> Embedding -> `num_layers` x GateLSTM (dropout after each) -> Dense ->
    logits `[B, T, vocab_size]` for the next character at every position.

    The model is the network: `call` for training, and `logits_and_state` to run it from a
    given state (scoring). State is a tuple with one `(h, c)` pair per layer. Generation
    runs it one character at a time through `lstm_textgen.model.stepping` (`prime`, `step`,
    `next_logits`).

    With `carry_state(...)` set, every training call starts from the state the previous
    training call ended in (truncated backpropagation through time, as char-rnn trains);
    other calls start from zeros.

    For `fit` under a distribution strategy the model overrides one private Keras method,
    `_maybe_symbolic_build` (see there), and reshapes its logged losses for
    `MultiWorkerMirroredStrategy`; on one device both leave Keras's behaviour unchanged.

    Args:
        vocab_size: number of ids, the unknown id 0 included.
        embedding_dim: width of the character embedding.
        units: LSTM state size of every layer.
        num_layers: number of stacked LSTM layers.
        dropout: dropout rate applied to the output of each LSTM layer during training.
        implementation: `"gates"` or `"keras"`, see `GateLSTM`.

    Example:

    >>> model = CharLanguageModel(vocab_size=10, embedding_dim=4, units=3, num_layers=2)
    >>> model(tf.zeros([2, 5], tf.int32)).shape
    TensorShape([2, 5, 10])
    """

    def __init__(
        self,
        vocab_size,
        embedding_dim=64,
        units=256,
        num_layers=2,
        dropout=0.0,
        implementation="gates",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = int(vocab_size)
        self.embedding_dim = int(embedding_dim)
        self.units = int(units)
        self.num_layers = int(num_layers)
        self.dropout = float(dropout)
        self.implementation = implementation
        self.embedding = keras.layers.Embedding(
            self.vocab_size, self.embedding_dim, name="embedding"
        )
        # Under a mixed-precision policy the gate loop stays in float32: the cell state
        # adds up many small updates that bfloat16's 8-bit mantissa would lose. Keras's
        # own LSTM (cuDNN on a GPU) takes the policy. The logits, and so the softmax and
        # the loss, are float32 either way.
        self.lstm_layers = [
            GateLSTM(
                self.units,
                return_sequences=True,
                return_state=True,
                time_major=True,
                implementation=implementation,
                name=f"lstm_{k}",
                dtype="float32" if implementation == "gates" else None,
            )
            for k in range(self.num_layers)
        ]
        self.dropout_layer = keras.layers.Dropout(self.dropout, name="dropout")
        self.head = keras.layers.Dense(self.vocab_size, name="logits", dtype="float32")
        self.carried_state = None

    def carry_state(self, batch_size: int, batches_per_pass: int) -> CarriedState:
        """Carry the state from each training batch to the next (see `CarriedState`)."""
        self.carried_state = CarriedState(self.num_layers, batch_size, self.units, batches_per_pass)
        return self.carried_state

    @classmethod
    def from_model_config(cls, config: ModelConfig) -> CharLanguageModel:
        config.validate()
        model = cls(
            vocab_size=config.vocab_size,
            embedding_dim=config.embedding_dim,
            units=config.units,
            num_layers=config.num_layers,
            dropout=config.dropout,
            implementation=config.implementation,
        )
        model.build((None, None))
        return model

    def build(self, input_shape=None):
        self.embedding.build((None, None))
        width = self.embedding_dim
        for layer in self.lstm_layers:
            layer.build((None, None, width))
            width = self.units
        self.head.build((None, None, self.units))
        self.built = True

    def set_matmul_dtype(self, dtype: str | None) -> None:
        """Run the gate layers' matrix products on `dtype` operands (e.g. "bfloat16"; None:
        their compute dtype), for training on a CPU with bfloat16 instructions; see
        `GateLSTM`'s `matmul_dtype`. A setting of this process, not saved with the model:
        generation and evaluation of a loaded checkpoint stay in float32."""
        for layer in self.lstm_layers:
            layer.matmul_dtype = dtype

    def initial_state(self, batch_size):
        zeros = tf.zeros([batch_size, self.units], dtype=tf.float32)
        return tuple((zeros, zeros) for _ in range(self.num_layers))

    def run_layers(self, ids, state=None, mask=None, training=False):
        """The LSTM stack over ids `[B, T]`: the time-major sequence `[T, B, H]` of the
        last layer and the final state."""
        # Time-major from the embedding lookup to the head: transposing the int ids and
        # the V-wide logits is cheaper than transposing every layer's input and output.
        x = self.embedding(tf.transpose(ids))
        final_state = []
        for k, layer in enumerate(self.lstm_layers):
            initial = None
            if state is not None:
                initial = [tf.cast(part, layer.compute_dtype) for part in state[k]]
            x, h, c = layer(x, initial_state=initial, mask=mask, training=training)
            x = self.dropout_layer(x, training=training)
            # Generation carries the state in float32, whatever the layers compute in.
            final_state.append((tf.cast(h, tf.float32), tf.cast(c, tf.float32)))
        return x, tuple(final_state)

    def call(self, ids, training=False, padding_mask=None):
        """Logits `[B, T, V]`: at position t, the prediction of character t + 1.

        `padding_mask` (bool `[B, T]`) marks the positions to read; at False positions the
        state carries over and the logits repeat the previous position's.
        """
        carried = self.carried_state if training else None
        state = None if carried is None else carried.read(carried.batches)
        sequence, final_state = self.run_layers(
            ids, state=state, mask=padding_mask, training=training
        )
        if carried is not None:
            carried.write(final_state)
        return self._logits(sequence)

    def logits_and_state(self, ids, state=None):
        """Logits `[B, T, V]` for ids `[B, T]` starting from `state` (zeros if None), and
        the state after the last position: text can be scored piece by piece."""
        sequence, final_state = self.run_layers(ids, state=state)
        return self._logits(sequence), final_state

    def _logits(self, sequence):
        """Batch-major logits `[B, T, V]` of a time-major sequence `[T, B, H]`."""
        return tf.transpose(self.head(sequence), [1, 0, 2])

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Under a distribution strategy, Keras's `fit` learns the input shapes from one
        # batch averaged over the replicas (`strategy.reduce("MEAN", batch)`). Under
        # MultiWorkerMirroredStrategy that reduce fails ("Attempt to convert a value
        # (PerReplica...)"), with integer ids and with float ones alike, and no public
        # setting skips it. The shapes are known: build from a dummy batch instead.
        if iterator is not None and getattr(self, "_distribute_strategy", None) is not None:
            ids = tf.zeros([1, 1], tf.int32)
            iterator, data_batch = None, (ids, ids)
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def train_step(self, data):
        return self._per_worker_logs(super().train_step(data))

    def test_step(self, data):
        return self._per_worker_logs(super().test_step(data))

    def _per_worker_logs(self, logs):
        # Across several workers Keras averages each log value with
        # `strategy.reduce("MEAN", value, axis=0)`, which needs an axis: give the scalar
        # losses one of length 1 (the reduction returns scalars again).
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            return {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocab_size": self.vocab_size,
                "embedding_dim": self.embedding_dim,
                "units": self.units,
                "num_layers": self.num_layers,
                "dropout": self.dropout,
                "implementation": self.implementation,
            }
        )
        return config
