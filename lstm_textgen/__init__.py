"""lstm-textgen: character-level text generation with a gate-level LSTM (Keras 3 / TF).

The public API is listed in `__all__`. Names load on first use, so `import lstm_textgen`
(and the CLI's argument parsing) stays fast and does not start TensorFlow.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "TextgenError": "lstm_textgen.errors",
    "ModelConfig": "lstm_textgen.config",
    "TrainConfig": "lstm_textgen.config",
    "PRESETS": "lstm_textgen.config",
    "preset_configs": "lstm_textgen.config",
    "make_configs": "lstm_textgen.config",
    "load_run_config": "lstm_textgen.store.run_dir",
    "save_run_config": "lstm_textgen.store.run_dir",
    "load_trained_model": "lstm_textgen.store.loading",
    "GateLSTM": "lstm_textgen.model.layers",
    "GateLSTMCell": "lstm_textgen.model.cell",
    "lstm_cell": "lstm_textgen.model.recurrence",
    "CharVocabulary": "lstm_textgen.data.vocab",
    "sample_next": "lstm_textgen.generation.samplers",
    "sample_loop": "lstm_textgen.generation.sample_loop",
    "sampling_batch": "lstm_textgen.generation.samplers",
    "SamplingBatch": "lstm_textgen.generation.samplers",
    "Generated": "lstm_textgen.generation.sample_loop",
    "filter_logits": "lstm_textgen.generation.samplers",
    "CharLanguageModel": "lstm_textgen.model.language_model",
    "Corpus": "lstm_textgen.data.corpus",
    "load_corpus": "lstm_textgen.data.corpus",
    "make_dataset": "lstm_textgen.data.windows",
    "make_train_dataset": "lstm_textgen.data.windows",
    "encode_text_files": "lstm_textgen.data.id_file",
    "IdFile": "lstm_textgen.data.id_file",
    "make_strategy": "lstm_textgen.training.distribute",
    "train": "lstm_textgen.training.train",
    "TrainResult": "lstm_textgen.training.train",
    "GenerationRequest": "lstm_textgen.generation.request",
    "Completion": "lstm_textgen.generation.request",
    "GenerationState": "lstm_textgen.generation.request",
    "TextStream": "lstm_textgen.generation.generator",
    "Generator": "lstm_textgen.generation.generator",
    "CheckedRequest": "lstm_textgen.generation.request",
    "SETTINGS": "lstm_textgen.generation.settings",
    "Setting": "lstm_textgen.generation.settings",
    "SamplingSettings": "lstm_textgen.generation.settings",
    "open_generator": "lstm_textgen.generation.open_model",
    "open_shipped_generator": "lstm_textgen.generation.open_model",
    "shipped_model": "lstm_textgen.store.shipped",
    "load_source": "lstm_textgen.store.sources",
    "describe_source": "lstm_textgen.store.sources",
    "TrainedModel": "lstm_textgen.store.sources",
    "TextGenerator": "lstm_textgen.generation.backends.keras",
    "generate_ids": "lstm_textgen.generation.graph",
    "Evaluation": "lstm_textgen.evaluation.evaluate",
    "evaluate_text": "lstm_textgen.evaluation.evaluate",
    "evaluate_ids": "lstm_textgen.evaluation.evaluate",
    "evaluate_run": "lstm_textgen.evaluation.run",
    "KerasScorer": "lstm_textgen.generation.backends.keras_scorer",
    "score_text": "lstm_textgen.generation.scoring",
    "open_scorer": "lstm_textgen.generation.open_model",
    "Scorer": "lstm_textgen.generation.scoring",
    "export_for_serving": "lstm_textgen.export.saved_model",
    "SavedModelGenerator": "lstm_textgen.generation.backends.saved_model",
    "ServerGenerator": "lstm_textgen.generation.backends.server",
    "export_litert": "lstm_textgen.export.litert",
    "LiteRTModel": "lstm_textgen.generation.backends.litert",
    "plot_run": "lstm_textgen.reports.plot",
    "inspect_run": "lstm_textgen.reports.inspect_gates",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lstm_textgen' has no attribute {name!r}")


def __dir__():
    return __all__
