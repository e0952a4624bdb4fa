"""The format of a checkpoint: a `.keras` file with its `CheckpointInfo` (step, losses,
the dropout generators' states) and any arrays (the carried state) inside the same zip,
written atomically, and read back in the current weights layout.

Keeping the metadata inside the checkpoint means a checkpoint and its numbers can never
disagree, whenever training is killed. Keras is imported only to load a checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
import zipfile

from lstm_textgen.errors import TextgenError, first_line
from lstm_textgen.files import atomic_copy, atomic_path

CHECKPOINT_INFO = "lstm_textgen.json"  # inside each .keras zip: its CheckpointInfo
CARRIED_STATE = "carried_state"  # and, with --carry-state, carried_state.npy


@dataclasses.dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint says of itself (all None in a file that holds no info).

    Attributes:
        step: the training step it was saved at.
        train_loss, val_loss: the losses of the evaluation it was saved after.
        val_loss_carried: the validation loss with a carried state (`--carry-state`).
        seed_states: the dropout generators' states, which a `.keras` file leaves out.
        xla: whether the run compiles its train step with XLA.
        precision: the Keras dtype policy the run trains in.
    """

    step: int | None = None
    train_loss: float | None = None
    val_loss: float | None = None
    val_loss_carried: float | None = None
    seed_states: list | None = None
    xla: bool | None = None
    precision: str | None = None

    @classmethod
    def from_json(cls, values: dict) -> CheckpointInfo:
        return cls(**{f.name: values.get(f.name) for f in dataclasses.fields(cls)})

    def to_json(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def save_checkpoint(
    model,
    path: str,
    info: CheckpointInfo,
    best_copy: str | None = None,
    arrays: dict | None = None,
) -> None:
    """Save `model` to `path` atomically, with `info` and `arrays` (name: NumPy array, such
    as the carried state) inside the file, and copy it to `best_copy` if given."""
    try:
        with atomic_path(path, suffix=".keras") as tmp:
            model.save(tmp)
            with zipfile.ZipFile(tmp, "a") as archive:
                archive.writestr(CHECKPOINT_INFO, json.dumps(info.to_json()))
                for name, array in (arrays or {}).items():
                    archive.writestr(f"{name}.npy", _npy_bytes(array))
        if best_copy:
            atomic_copy(path, best_copy)
    except OSError as e:
        raise TextgenError(f"could not write checkpoint {path}: {e.strerror or e}") from None


def read_checkpoint_info(path: str) -> CheckpointInfo:
    """The `CheckpointInfo` that `save_checkpoint` stored (all None if there is none)."""
    try:
        with zipfile.ZipFile(path) as archive:
            values = json.loads(archive.read(CHECKPOINT_INFO))
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError):
        return CheckpointInfo()
    return CheckpointInfo.from_json(values) if isinstance(values, dict) else CheckpointInfo()


def _npy_bytes(array) -> bytes:
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def read_checkpoint_array(path: str, name: str):
    """The array `name` that `save_checkpoint` stored in a checkpoint (None if it has none)."""
    import io

    import numpy as np

    try:
        with zipfile.ZipFile(path) as archive:
            return np.load(io.BytesIO(archive.read(f"{name}.npy")), allow_pickle=False)
    except (OSError, KeyError, zipfile.BadZipFile, ValueError):
        return None


def load_checkpoint(path: str, compile: bool = True):
    """The Keras model saved at `path`, with a one-line error if it cannot be read."""
    import keras

    import lstm_textgen.model.language_model  # noqa: F401  (registers the classes a checkpoint names)

    try:
        with _current_layout(path) as current:
            return keras.models.load_model(current, compile=compile)
    except Exception as e:  # Keras raises ValueError, OSError, zip and h5 errors alike
        reason = first_line(e)
        if not zipfile.is_zipfile(path):
            reason = "not a complete .keras file: truncated or overwritten"
        raise TextgenError(
            f"cannot load checkpoint {path} ({reason}); it is damaged or not an "
            "lstm-textgen checkpoint"
        ) from None


# Where a GateLSTM's weights sit inside a checkpoint's weights file. They belong to the
# layer's cell (`layers/<name>/cell/vars`); checkpoints written before the cell existed
# hold them in the layer itself, or in its Keras delegate.
_OLD_WEIGHT_GROUPS = ("vars", "_keras_lstm/cell/vars")
_WEIGHTS_FILE = "model.weights.h5"


def _old_gate_lstm_groups(weights) -> list[tuple[str, str]]:
    """`(layer, group)` of each GateLSTM layer of an h5 weights file that holds the old
    layout: the layer's name and the group under it that holds its three weights."""
    layers = weights.get("layers")
    if layers is None:
        return []
    return [
        (name, old)
        for name, group in layers.items()
        if "cell" not in group
        for old in _OLD_WEIGHT_GROUPS
        if len(group.get(old, ())) == 3
    ]


@contextlib.contextmanager
def _current_layout(path: str):
    """`path`, or a temporary copy moved to the current weights layout if it is older."""
    import h5py

    try:
        with zipfile.ZipFile(path) as archive, archive.open(_WEIGHTS_FILE) as stream:
            with h5py.File(stream, "r") as weights:
                old = _old_gate_lstm_groups(weights)
    except (OSError, KeyError, zipfile.BadZipFile):
        old = []  # let Keras report what is wrong with the file
    if not old:
        yield path
        return
    with tempfile.TemporaryDirectory() as folder:
        weights_path = os.path.join(folder, _WEIGHTS_FILE)
        upgraded = os.path.join(folder, os.path.basename(path))
        with zipfile.ZipFile(path) as archive:
            archive.extract(_WEIGHTS_FILE, folder)
            with h5py.File(weights_path, "r+") as weights:
                for name, source in old:
                    group = weights["layers"][name]
                    group.create_group("cell")
                    group.move(source, "cell/vars")
                    group.require_group("vars")
            with zipfile.ZipFile(upgraded, "w") as copy:
                for item in archive.infolist():
                    if item.filename == _WEIGHTS_FILE:
                        copy.write(weights_path, _WEIGHTS_FILE)
                    else:
                        copy.writestr(item, archive.read(item))
        yield upgraded
