"""A trained model from wherever it lies: a run directory, a SavedModel export, or the
name of a shipped model (`lstm_textgen.store.shipped`).

`describe_source` and `source_configs` read only JSON (no TensorFlow), so a command can
check its flags against a source before TensorFlow starts; `load_source` rebuilds the
Keras `CharLanguageModel` with the source's weights, which fine-tuning, evaluation,
inspection and the LiteRT export start from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from lstm_textgen.config import ModelConfig, TrainConfig
from lstm_textgen.data.vocab import VOCAB_FILE, CharVocabulary
from lstm_textgen.errors import TextgenError, first_line
from lstm_textgen.store import loading
from lstm_textgen.store import run_dir as rundir
from lstm_textgen.store.export_layout import EXPORT_EXTRA_DIR, ExportMetadata, latest_version
from lstm_textgen.store.shipped import is_shipped_name, shipped_model


@dataclass(frozen=True)
class Source:
    """Where a trained model lies.

    Attributes:
        kind: "run" (a training run directory) or "export" (a SavedModel version folder).
        path: the run directory, or the version folder of the export.
        label: how to name it to the user, e.g. "the shipped model shakespeare".
    """

    kind: str
    path: str
    label: str


@dataclass
class TrainedModel:
    """A trained model rebuilt in Keras, with what describes it.

    Attributes:
        model: the `CharLanguageModel`, weights loaded.
        vocab: its vocabulary.
        model_config: its architecture (`vocab_size` set).
        train_config: the settings it was trained with (None for an export that did not
            record them).
        source: where it came from.
    """

    model: object
    vocab: CharVocabulary
    model_config: ModelConfig
    train_config: TrainConfig | None
    source: Source


def _export_version(path: str) -> str | None:
    """The version folder of an export at `path` (a version or its base), or None."""
    try:
        return latest_version(path)
    except TextgenError:
        return None


def describe_source(source: str) -> Source:
    """What `source` is: a run directory, an export, or a shipped model's name.

    A path that exists wins over a shipped model of the same name.
    """
    if os.path.exists(source):
        if os.path.isfile(rundir.RunDir(source).config_file):
            return Source("run", source, f"run {source}")
        version = _export_version(source)
        if version is not None:
            return Source("export", version, f"export {version}")
        raise TextgenError(
            f"{source} is not a training run directory (no {rundir.CONFIG_FILE}) nor a "
            "SavedModel export (no saved_model.pb); give a run directory, an export folder, or "
            "a shipped model's name such as 'shakespeare'"
        )
    if os.sep not in source and is_shipped_name(source):
        version = _export_version(shipped_model(source).saved_model)
        return Source("export", version, f"the shipped model {source}")
    raise TextgenError(
        f"{source} does not exist; give a run directory, an export folder, or a shipped "
        "model's name such as 'shakespeare'"
    )


def source_configs(source: Source) -> tuple[ModelConfig, TrainConfig | None, CharVocabulary]:
    """The model config, training config (None if unrecorded) and vocabulary of a source,
    read from its JSON files alone."""
    if source.kind == "run":
        model_config, train_config = rundir.load_run_config(source.path)
        vocab = CharVocabulary.load(source.path)
        model_config.vocab_size = vocab.size
        return model_config, train_config, vocab
    metadata = ExportMetadata.read(source.path)
    extra = os.path.join(source.path, EXPORT_EXTRA_DIR)
    if not os.path.isfile(os.path.join(extra, VOCAB_FILE)):
        raise TextgenError(f"{source.path} holds no {EXPORT_EXTRA_DIR}/{VOCAB_FILE}")
    vocab = CharVocabulary.load(extra)
    return metadata.model_config(source.path), metadata.train_config(source.path), vocab


def load_source(source: str | Source, checkpoint: str = "best") -> TrainedModel:
    """The trained model of `source` (a path, a shipped model's name, or a `Source`) in
    Keras: a run's `checkpoint` (best or last), or an export's variables."""
    if isinstance(source, str):
        source = describe_source(source)
    if source.kind == "run":
        model_config, train_config = rundir.load_run_config(source.path)
        model, vocab = loading.load_trained_model(source.path, checkpoint)
        model_config.vocab_size = model.vocab_size
        return TrainedModel(model, vocab, model_config, train_config, source)
    model_config, train_config, vocab = source_configs(source)
    metadata = ExportMetadata.read(source.path)
    metadata.verify(source.path)
    model = _model_from_export(source.path, model_config, metadata)
    if model.vocab_size != vocab.size:
        raise TextgenError(
            f"{source.path} predicts {model.vocab_size} ids but its vocabulary has {vocab.size}"
        )
    return TrainedModel(model, vocab, model_config, train_config, source)


def _model_from_export(version_dir: str, model_config: ModelConfig, metadata: ExportMetadata):
    """A `CharLanguageModel` of `model_config` holding an export's weights.

    The export's metadata maps each checkpoint key to a weight's path (`weights`, see
    `export.weight_paths`); exports written before it tracked the model's variables in
    `model.variables` order as `variables/<k>`.
    """
    import tensorflow as tf

    from lstm_textgen.model.language_model import CharLanguageModel

    model = CharLanguageModel.from_model_config(model_config)
    by_path = {v.path.split("/", 1)[1]: v for v in model.variables}
    if metadata.weights is not None:
        pairs = [(key, by_path.get(path)) for key, path in metadata.weights.items()]
        if any(v is None for _, v in pairs) or len(pairs) != len(model.trainable_variables):
            raise TextgenError(f"{version_dir}: its weights do not fit its config; export again")
    else:
        pairs = [
            (f"variables/{k}/.ATTRIBUTES/VARIABLE_VALUE", v) for k, v in enumerate(model.variables)
        ]
    try:
        reader = tf.train.load_checkpoint(os.path.join(version_dir, "variables", "variables"))
        values = [reader.get_tensor(key) for key, _ in pairs]
    except (tf.errors.OpError, ValueError) as e:
        raise TextgenError(
            f"cannot read the weights of {version_dir} ({first_line(e)}); export it again"
        ) from None
    for (_, variable), value in zip(pairs, values):
        if tuple(variable.shape) != tuple(value.shape):
            raise TextgenError(
                f"{version_dir}: weight {variable.path} has shape {tuple(value.shape)}, "
                f"its config says {tuple(variable.shape)}; the export is inconsistent"
            )
        variable.assign(value)
    return model
