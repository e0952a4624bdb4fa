"""The run directory: everything training writes, and loading it back.

A run directory holds:

- `config.json`: the `ModelConfig` and `TrainConfig` (written before the first step);
- `vocab.json`: the `CharVocabulary`;
- `last.keras`: model and optimizer state at the latest checkpoint;
- `best.keras`: the checkpoint with the lowest validation loss so far;
- `state.json`: step, best validation loss and the history of evaluations;
- `data/`: the user's text files encoded as ids (`train.ids`, `validation.ids`), which
  training streams from disk and evaluation reads back;
- `logs/`: TensorBoard logs;
- `train.lock`: held by the one `train` process writing the run (see `writer_lock`).

Every file is written to a temporary name and renamed (`lstm_textgen.files`), so a run
killed at any moment leaves the previous complete version of each file behind. Reading
the config and the state needs no TensorFlow; Keras is imported only to load or save a
checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import socket
import tempfile
import zipfile

from lstm_textgen.config import ModelConfig, TrainConfig
from lstm_textgen.errors import TextgenError, first_line, setting
from lstm_textgen.files import atomic_copy, atomic_path, atomic_write_text

logger = logging.getLogger("lstm_textgen")

CONFIG_FILE = "config.json"
CONFIG_FORMAT = 1
LAST_CHECKPOINT = "last.keras"
BEST_CHECKPOINT = "best.keras"
CHECKPOINTS = {"best": BEST_CHECKPOINT, "last": LAST_CHECKPOINT}
STATE_FILE = "state.json"
CHECKPOINT_INFO = "lstm_textgen.json"  # inside each .keras zip: its step and losses
CARRIED_STATE = "carried_state"  # and, with --carry-state, carried_state.npy
LOG_DIR = "logs"  # TensorBoard
DATA_DIR = "data"  # the encoded text files
LOCK_FILE = "train.lock"


def _in_use(run_dir: str, fd: int) -> TextgenError:
    holder = os.read(fd, 200).decode("utf-8", "replace").strip() or "another process"
    return TextgenError(
        f"{run_dir} is being trained by {holder}; wait for it to end or stop it, "
        "or train into another run directory"
    )


@contextlib.contextmanager
def writer_lock(run_dir: str):
    """Hold the run's writer lock while training writes it; a second writer fails at once.

    The lock is an advisory `flock` on `RUN/train.lock`, which the kernel releases when its
    process ends in any way, so a lock left by a killed process never blocks `--resume`.
    The file names the holder while it runs and is emptied when it ends.
    Readers (`generate`, `evaluate`, `export`, `inspect`) do not take it: every file of a
    run is replaced atomically, so they read a complete version while training goes on.
    """
    path = os.path.join(run_dir, LOCK_FILE)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise TextgenError(f"cannot create {path}: {e.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        error = _in_use(run_dir, fd)
        os.close(fd)
        raise error from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
        yield
    finally:
        os.ftruncate(fd, 0)
        os.close(fd)


def check_not_in_use(run_dir: str) -> None:
    """Fail at once if another process holds `run_dir`'s writer lock (`writer_lock`):
    what `train` checks before it starts TensorFlow. Takes nothing."""
    path = os.path.join(run_dir, LOCK_FILE)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # no lock file: nobody trains it (or `train` reports why it cannot)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        raise _in_use(run_dir, fd) from None
    finally:
        os.close(fd)


def make_run_dir(run_dir: str) -> None:
    """Create a new run's directory (or take an existing, writable folder)."""
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise TextgenError(f"{setting('run_dir', run_dir)} exists and is not a directory")
    try:
        os.makedirs(run_dir, exist_ok=True)
    except OSError as e:
        raise TextgenError(f"cannot create run directory {run_dir}: {e.strerror}") from None
    if not os.access(run_dir, os.W_OK):
        raise TextgenError(f"run directory {run_dir} is not writable")


def check_new_run_dir(run_dir: str) -> None:
    """A one-line error where a new run would overwrite a trained model."""
    if os.path.exists(os.path.join(run_dir, LAST_CHECKPOINT)):
        raise TextgenError(
            f"{run_dir} already holds a trained model; pass {setting('resume', switch=True)} "
            "to continue it, or choose another run directory"
        )


def save_run_config(run_dir: str, model: ModelConfig, train: TrainConfig) -> str:
    path = os.path.join(run_dir, CONFIG_FILE)
    payload = {
        "format": CONFIG_FORMAT,
        "model": dataclasses.asdict(model),
        "train": dataclasses.asdict(train),
    }
    atomic_write_text(path, json.dumps(payload, indent=2) + "\n")
    return path


def _from_dict(cls, values: dict, path: str):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise TextgenError(
            f"{path}: unknown {cls.__name__} fields {unknown}; "
            "was it written by a newer lstm-textgen?"
        )
    return cls(**values)


def load_run_config(run_dir: str) -> tuple[ModelConfig, TrainConfig]:
    path = os.path.join(run_dir, CONFIG_FILE)
    if not os.path.isfile(path):
        raise TextgenError(
            f"{run_dir} holds no {CONFIG_FILE}: it is not a training run directory; "
            "train one with `lstm-textgen train --run DIR`"
        )
    try:
        with open(path, encoding="utf-8") as f:
            payload = json.load(f)
        model = _from_dict(ModelConfig, payload["model"], path)
        train = _from_dict(TrainConfig, payload["train"], path)
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
        raise TextgenError(f"{path} is not a valid run config ({e}); retrain the run") from e
    return model, train


@dataclasses.dataclass
class RunState:
    """Where a run stands, as `state.json` keeps it; `read_state` and `write_state` are
    its one reader and writer.

    Attributes:
        step: the step of the last checkpoint.
        best_val_loss: the best validation loss so far (nats/char), None before the first.
        best_step: the step it was reached at.
        history: one record per evaluation: `step`, `train_loss`, `val_loss` (and
            `val_loss_carried` with a carried state).
        xla: whether the train step is compiled with XLA; None until the run's first
            start has settled it, after which a resume keeps it.
        precision: the Keras dtype policy the run trains in (`--mixed-precision`), kept
            the same way.
    """

    step: int = 0
    best_val_loss: float | None = None
    best_step: int | None = None
    history: list[dict] = dataclasses.field(default_factory=list)
    xla: bool | None = None
    precision: str | None = None


def read_state(run_dir: str) -> RunState:
    """The run's `state.json`, or a new run's state if it has none."""
    path = os.path.join(run_dir, STATE_FILE)
    if not os.path.isfile(path):
        return RunState()
    try:
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
        names = {f.name for f in dataclasses.fields(RunState)}
        state = RunState(**{k: v for k, v in saved.items() if k in names})
        if not isinstance(state.step, int) or not isinstance(state.history, list):
            raise TypeError("step must be an integer and history a list")
        return state
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, TypeError) as e:
        raise TextgenError(
            f"{path} is corrupt ({e}); delete it to resume without history"
        ) from None


def write_state(run_dir: str, state: RunState) -> None:
    text = json.dumps(dataclasses.asdict(state), indent=1) + "\n"
    atomic_write_text(os.path.join(run_dir, STATE_FILE), text)


def save_checkpoint(
    model, path: str, info: dict, best_copy: str | None = None, arrays: dict | None = None
) -> None:
    """Save `model` to `path` atomically, with `info` (step, losses) and `arrays` (name:
    NumPy array, such as the carried state) inside the file, and copy it to `best_copy`
    if given.

    Keeping the metadata inside the checkpoint means a checkpoint and its numbers can never
    disagree, whenever training is killed.
    """
    try:
        with atomic_path(path, suffix=".keras") as tmp:
            model.save(tmp)
            with zipfile.ZipFile(tmp, "a") as archive:
                archive.writestr(CHECKPOINT_INFO, json.dumps(info))
                for name, array in (arrays or {}).items():
                    archive.writestr(f"{name}.npy", _npy_bytes(array))
        if best_copy:
            atomic_copy(path, best_copy)
    except OSError as e:
        raise TextgenError(f"could not write checkpoint {path}: {e.strerror or e}") from None


def read_checkpoint_info(path: str) -> dict:
    """The step and losses stored in a checkpoint by `save_checkpoint` ({} if none)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read(CHECKPOINT_INFO))
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError):
        return {}


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


def checkpoint_path(run_dir: str, checkpoint: str = "best") -> str:
    """The file of checkpoint "best" or "last" ("best" falls back to "last")."""
    if not os.path.isdir(run_dir):
        raise TextgenError(f"run directory {run_dir} does not exist")
    load_run_config(run_dir)
    if checkpoint not in CHECKPOINTS:
        raise TextgenError(f"checkpoint must be best or last, got {checkpoint!r}")
    for name in (CHECKPOINTS[checkpoint], LAST_CHECKPOINT):
        path = os.path.join(run_dir, name)
        if os.path.isfile(path):
            if name != CHECKPOINTS[checkpoint]:
                logger.warning("%s holds no %s; using %s", run_dir, CHECKPOINTS[checkpoint], name)
            return path
    raise TextgenError(
        f"{run_dir} holds no trained model ({CHECKPOINTS[checkpoint]} is missing); "
        f"train it first with `lstm-textgen train --run {run_dir}`"
    )


def load_trained_model(run_dir: str, checkpoint: str = "best"):
    """`(model, vocab)` of a training run; `checkpoint` is "best" or "last"."""
    from lstm_textgen.data.vocab import CharVocabulary

    path = checkpoint_path(run_dir, checkpoint)
    vocab = CharVocabulary.load(run_dir)
    model = load_checkpoint(path, compile=False)
    if model.vocab_size != vocab.size:
        raise TextgenError(
            f"{path} predicts {model.vocab_size} ids but {run_dir}/vocab.json has "
            f"{vocab.size}; the run directory is inconsistent"
        )
    return model, vocab
