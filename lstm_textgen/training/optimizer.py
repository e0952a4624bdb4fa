"""The optimizer a run trains with: Adam with gradient clipping, and the learning rate or
schedule its `TrainConfig` asks for."""

from __future__ import annotations

import keras

from lstm_textgen.config import MIN_LR_FRACTION, TrainConfig


def learning_rate(config: TrainConfig, total_steps: int):
    """The learning rate, or schedule, that `config` asks for over `total_steps` steps."""
    if config.lr_schedule == "constant":
        return config.learning_rate
    warmup = min(config.warmup_steps, max(0, total_steps - 1))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else config.learning_rate,
        decay_steps=max(1, total_steps - warmup),
        alpha=MIN_LR_FRACTION,
        warmup_target=config.learning_rate if warmup else None,
        warmup_steps=warmup,
    )


def compile_model(
    model: keras.Model, config: TrainConfig, jit_compile: bool, *, total_steps: int
) -> None:
    """Compile `model` with Adam, gradient clipping and `config`'s schedule over
    `total_steps` (the length of the whole run: a cosine schedule decays over it)."""
    model.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate=learning_rate(config, total_steps), global_clipnorm=config.clip_norm
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )
