"""What the SavedModel export and the LiteRT export share: the model they convert (the
layout of its state in a signature is `generation.signature_state`)."""

from __future__ import annotations

from lstm_textgen.config import ModelConfig
from lstm_textgen.model.language_model import CharLanguageModel


def export_model(source: str | None, checkpoint: str):
    """The `TrainedModel` of a run, an export or a shipped model (`sources.load_source`;
    None: the shipped model), to export: its model on the gates implementation."""
    from lstm_textgen.store.sources import load_source

    trained = load_source(source, checkpoint)
    trained.model = serving_model(trained.model, trained.model_config)
    return trained


def serving_model(model: CharLanguageModel, config: ModelConfig) -> CharLanguageModel:
    """A copy of `model` on the "gates" implementation, so no cuDNN op is exported."""
    if model.implementation == "gates":
        return model
    copy = CharLanguageModel.from_model_config(
        ModelConfig(**{**config.__dict__, "implementation": "gates"})
    )
    copy.set_weights(model.get_weights())
    return copy
