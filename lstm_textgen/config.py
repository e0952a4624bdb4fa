"""Plain dataclasses for the model and the training run, saved as JSON in every run dir.

`generate`, `evaluate` and `export` read `config.json` from the run directory, so none of
them needs the training flags again.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field

from lstm_textgen.errors import TextgenError

CONFIG_FILE = "config.json"
CONFIG_FORMAT = 1
IMPLEMENTATIONS = ("gates", "keras")
LR_SCHEDULES = ("constant", "cosine")
MIN_LR_FRACTION = 0.1


@dataclass
class ModelConfig:
    """Architecture of the character language model.

    Embedding(vocab_size, embedding_dim) -> num_layers x GateLSTM(units) -> Dense(vocab_size).
    `vocab_size` counts the out-of-vocabulary id 0, so it is the number of characters + 1.
    """

    vocab_size: int = 0
    embedding_dim: int = 64
    units: int = 256
    num_layers: int = 2
    dropout: float = 0.0
    implementation: str = "gates"

    def validate(self) -> None:
        if self.units < 1 or self.num_layers < 1 or self.embedding_dim < 1:
            raise TextgenError(
                f"units, layers and embedding dim must be >= 1 (got units={self.units}, "
                f"layers={self.num_layers}, embedding_dim={self.embedding_dim})"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise TextgenError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.implementation not in IMPLEMENTATIONS:
            raise TextgenError(
                f"implementation must be one of {', '.join(IMPLEMENTATIONS)}, "
                f"got {self.implementation!r}"
            )


@dataclass
class TrainConfig:
    """What to train on and how.

    The corpus is either the tfds dataset `tfds_name` (default tiny_shakespeare, with its
    own train/validation/test splits) or the user's `text_files` (paths or globs; the last
    5% of their concatenation is the validation split).

    `lr_schedule` is "constant" or "cosine": a linear warm-up over `warmup_steps`, then a
    cosine decay to `MIN_LR_FRACTION` of `learning_rate` at the last step of the run as
    first planned (a run extended on resume keeps the final rate).
    """

    tfds_name: str = "tiny_shakespeare"
    text_files: list[str] = field(default_factory=list)
    seq_len: int = 100
    batch_size: int = 64
    learning_rate: float = 2e-3
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    clip_norm: float = 1.0
    epochs: int | None = None
    max_steps: int | None = None
    checkpoint_every: int = 200
    eval_batches: int | None = None
    seed: int = 1337
    mixed_precision: bool = False

    def validate(self) -> None:
        if self.seq_len < 1:
            raise TextgenError(f"--seq-len must be >= 1, got {self.seq_len}")
        if self.batch_size < 1:
            raise TextgenError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.learning_rate <= 0:
            raise TextgenError(f"--learning-rate must be > 0, got {self.learning_rate}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise TextgenError(
                f"--lr-schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}"
            )
        if self.warmup_steps < 0:
            raise TextgenError(f"--warmup-steps must be >= 0, got {self.warmup_steps}")
        if self.clip_norm <= 0:
            raise TextgenError(f"--clip-norm must be > 0, got {self.clip_norm}")
        if self.epochs is not None and self.max_steps is not None:
            raise TextgenError("give either --epochs or --max-steps, not both")
        if self.epochs is not None and self.epochs < 1:
            raise TextgenError(f"--epochs must be >= 1, got {self.epochs}")
        if self.max_steps is not None and self.max_steps < 1:
            raise TextgenError(f"--max-steps must be >= 1, got {self.max_steps}")
        if self.checkpoint_every < 1:
            raise TextgenError(
                f"--checkpoint-every must be >= 1, got {self.checkpoint_every}"
            )
        if not 0 <= self.seed < 2**32:
            raise TextgenError(f"--seed must be in [0, 2**32), got {self.seed}")
        if self.eval_batches is not None and self.eval_batches < 1:
            raise TextgenError(f"--eval-batches must be >= 1, got {self.eval_batches}")


# Named, documented configurations (`lstm-textgen train --preset NAME`); flags given
# beside a preset override its values.
PRESETS = {
    # tiny_shakespeare on a 2-core CPU in under 30 minutes: `scripts/reproduce_shakespeare.sh`.
    "shakespeare": {
        "model": {"units": 384, "num_layers": 2, "embedding_dim": 64, "dropout": 0.1},
        "train": {
            "tfds_name": "tiny_shakespeare",
            "seq_len": 100,
            "batch_size": 64,
            "learning_rate": 3e-3,
            "lr_schedule": "cosine",
            "warmup_steps": 100,
            "clip_norm": 1.0,
            "max_steps": 1400,
            "checkpoint_every": 200,
        },
    },
}


def preset_configs(name: str) -> tuple[ModelConfig, TrainConfig]:
    """The `ModelConfig` and `TrainConfig` of the preset `name` (see `PRESETS`)."""
    if name not in PRESETS:
        raise TextgenError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    preset = PRESETS[name]
    return ModelConfig(**preset["model"]), TrainConfig(**preset["train"])


def atomic_write_text(path: str, text: str) -> None:
    """Write `text` to `path` so that a reader never sees a half-written file."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


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
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise TextgenError(f"{path} is not a valid run config ({e}); retrain the run") from e
    return model, train
