"""The run directory: its layout (`RunDir`), its writer lock, its config and its state.

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
the config and the state needs no TensorFlow. The checkpoints' format is
`store.checkpoints`; loading a trained model, `store.loading`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import socket

from lstm_textgen.config import ModelConfig, TrainConfig
from lstm_textgen.errors import TextgenError, setting
from lstm_textgen.files import atomic_write_text

logger = logging.getLogger("lstm_textgen")

CONFIG_FILE = "config.json"
CONFIG_FORMAT = 1
LAST_CHECKPOINT = "last.keras"
BEST_CHECKPOINT = "best.keras"
CHECKPOINTS = {"best": BEST_CHECKPOINT, "last": LAST_CHECKPOINT}
STATE_FILE = "state.json"
LOG_DIR = "logs"  # TensorBoard
DATA_DIR = "data"  # the encoded text files
LOCK_FILE = "train.lock"


@dataclasses.dataclass(frozen=True)
class RunDir:
    """The paths of a run directory, joined in one place. It is a path-like object
    (`os.fspath(run) == run.path`), so it goes wherever a folder's path goes.

    Example:

    >>> run = RunDir("runs/shakespeare")
    >>> run.checkpoint("best")
    'runs/shakespeare/best.keras'
    """

    path: str

    def __fspath__(self) -> str:
        return self.path

    def __str__(self) -> str:
        return self.path

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def checkpoint(self, which: str) -> str:
        """The file of checkpoint "best" or "last" (whether it exists or not)."""
        return self.file(CHECKPOINTS[which])

    config_file = property(lambda self: self.file(CONFIG_FILE), doc="`config.json`")
    state_file = property(lambda self: self.file(STATE_FILE), doc="`state.json`")
    lock_file = property(lambda self: self.file(LOCK_FILE), doc="`train.lock`")
    data_dir = property(lambda self: self.file(DATA_DIR), doc="the encoded text files")
    log_dir = property(lambda self: self.file(LOG_DIR), doc="TensorBoard's logs")

    def ids_file(self, split: str) -> str:
        """The encoded text of `split` ("train" or "validation") under `data/`."""
        return os.path.join(self.data_dir, f"{split}.ids")


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
    path = RunDir(run_dir).lock_file
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
    path = RunDir(run_dir).lock_file
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
    if os.path.exists(RunDir(run_dir).checkpoint("last")):
        raise TextgenError(
            f"{run_dir} already holds a trained model; pass {setting('resume', switch=True)} "
            "to continue it, or choose another run directory"
        )


def save_run_config(run_dir: str, model: ModelConfig, train: TrainConfig) -> str:
    path = RunDir(run_dir).config_file
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
    path = RunDir(run_dir).config_file
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


@dataclasses.dataclass(frozen=True)
class HistoryRecord:
    """One evaluation of a run: its step, the mean training loss over the interval, and
    the validation loss (nats/char); `val_loss_carried` is the validation loss read as
    streams with a carried state (`--carry-state`), None without one."""

    step: int
    train_loss: float
    val_loss: float
    val_loss_carried: float | None = None

    @classmethod
    def from_json(cls, values: dict) -> HistoryRecord:
        return cls(**{f.name: values.get(f.name) for f in dataclasses.fields(cls)})

    def to_json(self) -> dict:
        values = dataclasses.asdict(self)
        if self.val_loss_carried is None:
            del values["val_loss_carried"]
        return values


@dataclasses.dataclass
class RunState:
    """Where a run stands, as `state.json` keeps it; `read_state` and `write_state` are
    its one reader and writer.

    Attributes:
        step: the step of the last checkpoint.
        best_val_loss: the best validation loss so far (nats/char), None before the first.
        best_step: the step it was reached at.
        history: one `HistoryRecord` per evaluation.
        xla: whether the train step is compiled with XLA; None until the run's first
            start has settled it, after which a resume keeps it.
        precision: the Keras dtype policy the run trains in (`--mixed-precision`), kept
            the same way.
    """

    step: int = 0
    best_val_loss: float | None = None
    best_step: int | None = None
    history: list[HistoryRecord] = dataclasses.field(default_factory=list)
    xla: bool | None = None
    precision: str | None = None


def read_state(run_dir: str) -> RunState:
    """The run's `state.json`, or a new run's state if it has none."""
    path = RunDir(run_dir).state_file
    if not os.path.isfile(path):
        return RunState()
    try:
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
        names = {f.name for f in dataclasses.fields(RunState)}
        state = RunState(**{k: v for k, v in saved.items() if k in names})
        if not isinstance(state.step, int) or not isinstance(state.history, list):
            raise TypeError("step must be an integer and history a list")
        state.history = [HistoryRecord.from_json(record) for record in state.history]
        return state
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, TypeError) as e:
        raise TextgenError(
            f"{path} is corrupt ({e}); delete it to resume without history"
        ) from None


def write_state(run_dir: str, state: RunState) -> None:
    values = dataclasses.asdict(state)
    values["history"] = [record.to_json() for record in state.history]
    text = json.dumps(values, indent=1) + "\n"
    atomic_write_text(RunDir(run_dir).state_file, text)
