"""Where a model lies (`Source`: a run directory, a SavedModel export, a TF Serving
server, a LiteRT file, or a shipped model, `lstm_textgen.store.shipped`), and the trained
model rebuilt in Keras from a run or an export.

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
from lstm_textgen.errors import TextgenError, first_line, setting
from lstm_textgen.store import loading
from lstm_textgen.store import run_dir as rundir
from lstm_textgen.store.export_layout import EXPORT_EXTRA_DIR, ExportMetadata, latest_version
from lstm_textgen.store.shipped import DEFAULT_MODEL, is_shipped_name, shipped_model


@dataclass(frozen=True)
class Source:
    """Where a model lies, parsed once where the user names it (`describe_source`,
    `parse_source`) and opened in one place (`generation.open_model`).

    Attributes:
        kind: "run" (a training run directory), "export" (a SavedModel version folder,
            rebuilt in Keras), "saved_model" (a SavedModel run by its signatures),
            "server" (a TF Serving REST endpoint) or "litert" (a LiteRT file).
        path: the run directory, the version folder, the endpoint's URL or the file.
        label: how to name it to the user, e.g. "the shipped model shakespeare".
        checkpoint: a run's checkpoint, "best" or "last".
        model_name: the model's name on a TF Serving server.
        shipped: the shipped model's name, where the source is one.
    """

    kind: str
    path: str
    label: str
    checkpoint: str = "best"
    model_name: str | None = None
    shipped: str | None = None


def shipped_source(name: str = DEFAULT_MODEL, kind: str = "export") -> Source:
    """The shipped model `name`: rebuilt in Keras ("export") or by its signatures."""
    version = latest_version(shipped_model(name).saved_model)
    return Source(kind, version, f"the shipped model {name}", shipped=name)


def parse_source(checkpoint: str = "best", model_name: str | None = None, **named) -> Source:
    """The one source a command names, as `run=`, `saved_model=`, `server=` or `litert=`
    (the shipped model when it names none), run as it lies: a run in Keras, an export by
    its signatures, a server over REST, a LiteRT file by its interpreter."""
    unknown = sorted(set(named) - {"run", "saved_model", "server", "litert"})
    if unknown:
        raise TypeError(f"parse_source() got unexpected sources {unknown}")
    given = {kind: path for kind, path in named.items() if path}
    if len(given) > 1:
        raise TextgenError("give at most one of run, saved_model, server and litert")
    if model_name and "server" not in given:
        raise TextgenError("model_name names a model on a TF Serving server; give server too")
    if not given:
        return shipped_source(kind="saved_model")
    ((kind, path),) = given.items()
    return Source(kind, path, f"{kind.replace('_', ' ')} {path}", checkpoint, model_name)


def check_one_checkpoint(checkpoint: str) -> None:
    """An export holds one checkpoint: asking for another is an error."""
    if checkpoint != "best":
        raise TextgenError(f"an export holds one checkpoint; leave out {setting('checkpoint')}")


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


def describe_source(source: str | None, checkpoint: str = "best") -> Source:
    """What `source` is, to rebuild in Keras: a run directory, an export, or a shipped
    model's name (None: the shipped model). A path that exists wins over a shipped model
    of the same name."""
    if source is None:
        return shipped_source()
    if os.path.exists(source):
        if os.path.isfile(rundir.RunDir(source).config_file):
            return Source("run", source, f"run {source}", checkpoint)
        version = _export_version(source)
        if version is not None:
            return Source("export", version, f"export {version}")
        raise TextgenError(
            f"{source} is not a training run directory (no {rundir.CONFIG_FILE}) nor a "
            "SavedModel export (no saved_model.pb); give a run directory, an export folder, or "
            f"a shipped model's name such as {DEFAULT_MODEL!r}"
        )
    if os.sep not in source and is_shipped_name(source):
        return shipped_source(source)
    raise TextgenError(
        f"{source} does not exist; give a run directory, an export folder, or a shipped "
        f"model's name such as {DEFAULT_MODEL!r}"
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


def load_source(source: str | Source | None, checkpoint: str = "best") -> TrainedModel:
    """The trained model of `source` (a path, a shipped model's name, a `Source`, or None
    for the shipped model) in Keras: a run's `checkpoint` (best or last), or an export's
    variables."""
    if not isinstance(source, Source):
        source = describe_source(source, checkpoint)
    if source.kind == "run":
        model_config, train_config = rundir.load_run_config(source.path)
        model, vocab = loading.load_trained_model(source.path, source.checkpoint)
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
