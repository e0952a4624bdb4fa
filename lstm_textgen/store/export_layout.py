"""The layout of a SavedModel written by `lstm-textgen export`: its versions, the
vocabulary and `ExportMetadata` under `assets.extra/`, the checksums of its files, and the
check of that metadata against the graph.

The writer is `lstm_textgen.export.saved_model`; the readers that run it are
`lstm_textgen.generation.backends.saved_model`. Reading the layout and metadata needs no
TensorFlow; `load` starts it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re

from lstm_textgen.config import ModelConfig, TrainConfig, model_config_of
from lstm_textgen.data.vocab import VOCAB_FILE, CharVocabulary
from lstm_textgen.errors import TextgenError, first_line

EXPORT_EXTRA_DIR = "assets.extra"  # where an export keeps its vocabulary and metadata
EXPORT_METADATA_FILE = "export.json"  # `ExportMetadata`
EXPORT_FORMAT = "lstm-textgen SavedModel"
# Exports written before export.json kept the same facts, limits at the top, in config.json.
_EARLIER_METADATA_FILE = "config.json"


def export_versions(export_base: str) -> list[int]:
    """The numbered version folders under `export_base`, as TF Serving sees them."""
    return [int(n) for n in os.listdir(export_base) if re.fullmatch(r"\d+", n)]


def latest_version(export_base: str) -> str:
    """Path of the highest version under `export_base` (or `export_base` itself if it
    is a version folder)."""
    if os.path.isfile(os.path.join(export_base, "saved_model.pb")):
        return export_base
    if not os.path.isdir(export_base):
        raise TextgenError(f"saved model folder {export_base} does not exist")
    versions = export_versions(export_base)
    if not versions:
        raise TextgenError(
            f"{export_base} holds no numbered SavedModel version; "
            "export one with `lstm-textgen export`"
        )
    return os.path.join(export_base, str(max(versions)))


@dataclasses.dataclass(frozen=True)
class ExportMetadata:
    """What an export keeps beside its graph, in `assets.extra/export.json`.

    Attributes:
        model: the `ModelConfig` fields of the exported model.
        train: the `TrainConfig` fields it was trained with (None if not recorded); a
            fine-tune or an evaluation of the export reads its corpus and windows here.
        weights: `{checkpoint key: weight path}` (`export.weight_paths`), from which a
            reader rebuilds the Keras model; None in exports written before it.
        limits: the request limits the graph enforces, e.g. `max_num_chars`.
        format: `EXPORT_FORMAT`.
        checksums: `{path in the version folder: sha256}` of every other file of the
            export (`file_checksums`), checked on opening it; None in exports written
            before it.
    """

    model: dict
    train: dict | None
    weights: dict | None
    limits: dict
    format: str = EXPORT_FORMAT
    checksums: dict | None = None

    def to_json(self) -> str:
        fields = dataclasses.asdict(self)
        ordered = {"format": fields.pop("format"), **fields}
        return json.dumps({k: v for k, v in ordered.items() if v is not None}, indent=2) + "\n"

    @classmethod
    def read(cls, version_dir: str) -> ExportMetadata:
        """The metadata of the export in `version_dir` (or the `config.json` of an export
        written before `export.json`)."""
        path = os.path.join(version_dir, EXPORT_EXTRA_DIR, EXPORT_METADATA_FILE)
        earlier = os.path.join(version_dir, EXPORT_EXTRA_DIR, _EARLIER_METADATA_FILE)
        if not os.path.isfile(path) and os.path.isfile(earlier):
            path = earlier
        try:
            with open(path, encoding="utf-8") as f:
                fields = json.load(f)
        except FileNotFoundError:
            raise TextgenError(
                f"{version_dir} holds no {EXPORT_EXTRA_DIR}/{EXPORT_METADATA_FILE}: it is not "
                "an lstm-textgen export; export the run again"
            ) from None
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
            raise TextgenError(f"{path} is not valid export metadata ({e})") from None
        if not isinstance(fields, dict) or not isinstance(fields.get("model"), dict):
            raise TextgenError(f"{path}: export metadata without a model; export the run again")
        limits = fields.get("limits", {k: v for k, v in fields.items() if k.startswith("max_")})
        return cls(
            model=fields["model"],
            train=fields.get("train"),
            weights=fields.get("weights"),
            limits=limits,
            format=fields.get("format", EXPORT_FORMAT),
            checksums=fields.get("checksums"),
        )

    def verify(self, version_dir: str) -> None:
        """Fail in one line, naming the file, if a file of the export changed since it
        was written (an export without checksums passes)."""
        if not self.checksums:
            return
        found = file_checksums(version_dir)
        for name, digest in sorted(self.checksums.items()):
            if found.get(name) != digest:
                what = "is missing" if name not in found else "changed since it was exported"
                raise TextgenError(
                    f"{os.path.join(version_dir, name)} {what} (its checksum in "
                    f"{EXPORT_EXTRA_DIR}/{EXPORT_METADATA_FILE} differs); the export is "
                    "damaged: export the run again"
                )

    def model_config(self, where: str) -> ModelConfig:
        return model_config_of(self.model, where)

    def train_config(self, where: str) -> TrainConfig | None:
        try:
            return TrainConfig(**self.train) if self.train is not None else None
        except TypeError as e:
            raise TextgenError(
                f"{where}: export metadata with invalid training settings ({e})"
            ) from None


def export_vocabulary(saved_model: str) -> CharVocabulary | None:
    """The vocabulary stored beside an export, or None if it has none."""
    extra = os.path.join(latest_version(saved_model), EXPORT_EXTRA_DIR)
    if not os.path.isfile(os.path.join(extra, VOCAB_FILE)):
        return None
    return CharVocabulary.load(extra)


def file_checksums(version_dir: str) -> dict[str, str]:
    """`{path: sha256}` of every file of an export's version folder but its metadata."""
    sums = {}
    for folder, _, names in os.walk(version_dir):
        for name in names:
            path = os.path.join(folder, name)
            relative = os.path.relpath(path, version_dir).replace(os.sep, "/")
            if relative == f"{EXPORT_EXTRA_DIR}/{EXPORT_METADATA_FILE}":
                continue
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            sums[relative] = digest.hexdigest()
    return sums


def load(path: str, metadata: ExportMetadata | None = None):
    """The SavedModel in `path`, its files checked against its metadata's checksums."""
    import tensorflow as tf

    if metadata is not None:
        metadata.verify(path)
    try:
        return tf.saved_model.load(path)
    except Exception as e:  # a damaged export fails in many ways inside TensorFlow
        raise TextgenError(f"cannot load SavedModel {path}: {first_line(e)}") from None


def check_graph(path: str, loaded, metadata: ExportMetadata | None, vocab) -> None:
    """The export's metadata and vocabulary against its graph (the `h` and `logits` of its
    `step` signature): a file edited after the export is one line naming it."""
    if "step" not in loaded.signatures:
        return  # an export from before the step signature
    outputs = loaded.signatures["step"].structured_outputs
    _, layers, units = outputs["h"].shape
    graph = {"num_layers": layers, "units": units, "vocab_size": outputs["logits"].shape[-1]}
    extra = os.path.join(path, EXPORT_EXTRA_DIR)
    for name, value in graph.items():
        said = (metadata.model if metadata else {}).get(name)
        if said is not None and said != value:
            raise TextgenError(
                f"{os.path.join(extra, EXPORT_METADATA_FILE)} says {name}={said}, but the "
                f"graph has {value}: the file was changed after the export; export the run again"
            )
    if vocab is not None and vocab.size != graph["vocab_size"]:
        raise TextgenError(
            f"{os.path.join(extra, VOCAB_FILE)} has {vocab.size} ids, but the graph predicts "
            f"{graph['vocab_size']}: the file was changed after the export; export the run again"
        )


def metadata_if_any(path: str) -> ExportMetadata | None:
    """The export's metadata, or None for an export written before it had any."""
    extra = os.path.join(path, EXPORT_EXTRA_DIR)
    names = (EXPORT_METADATA_FILE, _EARLIER_METADATA_FILE)
    return (
        ExportMetadata.read(path)
        if any(os.path.isfile(os.path.join(extra, n)) for n in names)
        else None
    )
