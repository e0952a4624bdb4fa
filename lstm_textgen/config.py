"""Plain dataclasses for the model and the training run, and the constants every module
shares. Importing this module costs nothing (no TensorFlow).

The dataclass fields are the one source of truth for the training settings: their
defaults, and, through each field's `metadata`, the `lstm-textgen train` flag, its help
and its choices. `generate`, `evaluate` and `export` read the saved `config.json` of a run
(see `lstm_textgen.store.run_dir`), so none of them needs the training flags again.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field

from lstm_textgen.errors import TextgenError, setting

IMPLEMENTATIONS = ("gates", "keras")
LR_SCHEDULES = ("constant", "cosine")
ITEM_KINDS = ("lines", "paragraphs")
MIXED_PRECISION = ("auto", "on", "off")
MIN_LR_FRACTION = 0.1
LN2 = math.log(2.0)

# The characters of a text that an export's `score` signature reads (the limits of a
# generation request are rows of the settings table, `lstm_textgen.generation.settings`).
MAX_SCORE_CHARS = 10_000


def model_config_of(fields, where: str) -> ModelConfig:
    """The `ModelConfig` an export's metadata records, or a one-line error naming `where`."""
    try:
        return ModelConfig(**fields)
    except TypeError as e:
        raise TextgenError(f"{where}: export metadata without a valid model ({e})") from None


def bits(nats: float) -> float:
    """Nats per character as bits per character."""
    return nats / LN2


def _flag(
    help_text: str,
    flag: str | None = None,
    choices=None,
    group: str = "",
    metavar=None,
    const=None,
) -> dict:
    """A dataclass field's `lstm-textgen train` flag (its name defaults to the field's).
    With `const`, the flag given without a value means `const`."""
    return {
        "help": help_text,
        "flag": flag,
        "choices": choices,
        "group": group,
        "metavar": metavar,
        "const": const,
    }


@dataclass
class ModelConfig:
    """Architecture of the character language model.

    Embedding(vocab_size, embedding_dim) -> num_layers x GateLSTM(units) -> Dense(vocab_size).
    `vocab_size` counts the out-of-vocabulary id 0, so it is the number of characters + 1;
    training sets it from the corpus.
    """

    vocab_size: int = 0
    embedding_dim: int = field(default=64, metadata=_flag("character embedding width"))
    units: int = field(default=256, metadata=_flag("LSTM units per layer"))
    num_layers: int = field(default=2, metadata=_flag("stacked LSTM layers", "--layers"))
    dropout: float = field(default=0.0, metadata=_flag("dropout after each LSTM layer"))
    implementation: str = field(
        default="gates",
        metadata=_flag(
            "gates: our explicit gate loop; keras: keras.layers.LSTM (cuDNN on a GPU) over "
            "the same weights",
            choices=IMPLEMENTATIONS,
        ),
    )

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

    tfds_name: str = field(
        default="tiny_shakespeare",
        metadata=_flag("tensorflow-datasets text dataset to train on", "--tfds", group="corpus"),
    )
    text_files: list[str] = field(
        default_factory=list,
        metadata=_flag(
            "UTF-8 text file or glob to train on instead of the tfds corpus (repeatable)",
            "--text-file",
            group="corpus",
        ),
    )
    items: str | None = field(
        default=None,
        metadata=_flag(
            "read the corpus as a list of items, one per line or per paragraph (blank lines "
            "between); each item ends with an end-of-item marker, and generation can make "
            "whole new items (generate --num-items)",
            choices=ITEM_KINDS,
            group="corpus",
        ),
    )
    seq_len: int = field(default=100, metadata=_flag("characters per training window"))
    batch_size: int = field(default=64, metadata=_flag("windows per batch"))
    carry_state: bool = field(
        default=False,
        metadata=_flag(
            "read the training text as --batch-size contiguous streams and start each batch "
            "from the state the previous batch ended in (no gradient flows back into it), "
            "as char-rnn trains; validation reports zero-state and carried-state loss; on "
            "one device"
        ),
    )
    learning_rate: float = field(default=2e-3, metadata=_flag("Adam learning rate"))
    lr_schedule: str = field(
        default="constant",
        metadata=_flag(
            "constant, or cosine: linear warm-up, then decay to 10%% of the rate at the last step",
            choices=LR_SCHEDULES,
        ),
    )
    warmup_steps: int = field(default=0, metadata=_flag("warm-up steps of the cosine schedule"))
    clip_norm: float = field(default=1.0, metadata=_flag("global gradient-norm clip"))
    epochs: int | None = field(
        default=None, metadata=_flag("passes over the training text (1 unless --max-steps)")
    )
    max_steps: int | None = field(default=None, metadata=_flag("train for this many steps"))
    checkpoint_every: int = field(
        default=200, metadata=_flag("validate and checkpoint every N steps, and at the end")
    )
    eval_batches: int | None = field(
        default=None, metadata=_flag("validate on the first N batches only (None: all)")
    )
    seed: int = field(default=1337, metadata=_flag("seed for initialisation and shuffling"))
    init_from: str | None = field(
        default=None,
        metadata=_flag(
            "fine-tune: start from the weights of this run directory, SavedModel export or "
            "shipped model (e.g. shakespeare); the architecture is the source's, and "
            "characters it never saw extend its vocabulary",
            flag="--init-from",
            group="fine-tuning",
            metavar="SOURCE",
        ),
    )
    mixed_precision: str = field(
        default="auto",
        metadata=_flag(
            "auto: compute in bfloat16 on a CPU with bfloat16 instructions (float16 on a GPU) "
            "where a product of the model's step measures enough faster than float32 at the "
            "start (docs/scaling.md), else float32; on: wherever the hardware has it; off: "
            "float32. "
            "Variables, logits, loss and the gate loop of the gates implementation stay in "
            "float32; a resumed run keeps its choice",
            choices=MIXED_PRECISION,
            group="scaling out",
            const="on",
        ),
    )

    def __post_init__(self):
        if isinstance(self.mixed_precision, bool):  # the config.json of an earlier run
            self.mixed_precision = "on" if self.mixed_precision else "off"

    def validate(self) -> None:
        positive = ("seq_len", "batch_size", "learning_rate", "clip_norm", "checkpoint_every")
        for name in positive:
            if getattr(self, name) <= 0:
                raise TextgenError(f"{setting(name)} must be > 0, got {getattr(self, name)}")
        for name in ("epochs", "max_steps", "eval_batches"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise TextgenError(f"{setting(name)} must be >= 1, got {value}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise TextgenError(
                f"{setting('lr_schedule')} must be one of {', '.join(LR_SCHEDULES)}, "
                f"got {self.lr_schedule!r}"
            )
        if self.mixed_precision not in MIXED_PRECISION:
            raise TextgenError(
                f"{setting('mixed_precision')} must be one of {', '.join(MIXED_PRECISION)}, "
                f"got {self.mixed_precision!r}"
            )
        if self.items is not None and self.items not in ITEM_KINDS:
            raise TextgenError(
                f"{setting('items')} must be one of {', '.join(ITEM_KINDS)}, got {self.items!r}"
            )
        if self.warmup_steps < 0:
            raise TextgenError(f"{setting('warmup_steps')} must be >= 0, got {self.warmup_steps}")
        if self.epochs is not None and self.max_steps is not None:
            raise TextgenError(
                f"give either {setting('epochs')} or {setting('max_steps')}, not both"
            )
        if not 0 <= self.seed < 2**32:
            raise TextgenError(f"{setting('seed')} must be in [0, 2**32), got {self.seed}")

    def with_absolute_paths(self) -> TrainConfig:
        """A copy whose `text_files` (and `init_from`, when it is a path) are absolute,
        so the run resumes from any directory."""
        paths = [os.path.abspath(os.path.expanduser(p)) for p in self.text_files]
        init_from = self.init_from
        if init_from and os.path.exists(os.path.expanduser(init_from)):
            init_from = os.path.abspath(os.path.expanduser(init_from))
        return dataclasses.replace(self, text_files=paths, init_from=init_from)


def config_fields() -> dict[str, tuple[type, dataclasses.Field]]:
    """`{field name: (dataclass, field)}` of every field that has a `train` flag."""
    return {
        f.name: (cls, f)
        for cls in (ModelConfig, TrainConfig)
        for f in dataclasses.fields(cls)
        if f.metadata
    }


def flag_name(field_name: str) -> str:
    """The `lstm-textgen train` flag of a config field, e.g. `--layers` for num_layers."""
    _, f = config_fields()[field_name]
    return f.metadata["flag"] or "--" + field_name.replace("_", "-")


# Named, documented configurations (`lstm-textgen train --preset NAME`); settings given
# beside a preset override its values.
PRESETS = {
    # tiny_shakespeare in under 30 minutes on a 2-core Zen 4 (about an hour on a Zen 3); the
    # settings were chosen by the runs in docs/training.md, `scripts/reproduce_shakespeare.sh`.
    "shakespeare": {
        "model": {"units": 512, "num_layers": 2, "embedding_dim": 64, "dropout": 0.2},
        "train": {
            "tfds_name": "tiny_shakespeare",
            "seq_len": 100,
            "batch_size": 64,
            "learning_rate": 3e-3,
            "lr_schedule": "cosine",
            "warmup_steps": 100,
            "clip_norm": 1.0,
            "max_steps": 1900,
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


# The settings that make a model's shape: a fine-tune takes them from its source.
ARCHITECTURE_FIELDS = ("embedding_dim", "units", "num_layers")


def check_architecture(source: ModelConfig, settings: dict, source_name: str) -> None:
    """Fail if `settings` (field name: value) give the model another shape than `source`,
    the model config of a fine-tune's source."""
    for name in ARCHITECTURE_FIELDS:
        if name in settings and settings[name] != getattr(source, name):
            raise TextgenError(
                f"{setting(name, settings[name])} contradicts "
                f"{setting('init_from', source_name)}, whose model has "
                f"{setting(name, getattr(source, name))}; leave {setting(name)} out (a "
                "fine-tune keeps its source's architecture)"
            )


def make_configs(
    preset: str | None = None, base_model: ModelConfig | None = None, **settings
) -> tuple[ModelConfig, TrainConfig]:
    """The configs for the given settings (config field names), on top of a preset's.

    A length given as `epochs` replaces the preset's `max_steps`, and the other way round;
    giving both is an error (from `validate`). `base_model`, a fine-tune's source model
    config, replaces the default architecture; a preset or setting that gives it another
    shape is an error (`check_architecture`).
    """
    model, train = preset_configs(preset) if preset else (ModelConfig(), TrainConfig())
    fields = config_fields()
    unknown = sorted(set(settings) - set(fields))
    if unknown:
        raise TextgenError(f"unknown settings {unknown}")
    if base_model is not None:
        preset_model = PRESETS[preset]["model"] if preset else {}
        given = {n: v for n, v in settings.items() if fields[n][0] is ModelConfig}
        check_architecture(base_model, {**preset_model, **given}, settings.get("init_from"))
        model = dataclasses.replace(base_model, vocab_size=0, **preset_model)
    if "epochs" in settings and "max_steps" not in settings:
        train.max_steps = None
    if "max_steps" in settings and "epochs" not in settings:
        train.epochs = None
    for name, value in settings.items():
        setattr(model if fields[name][0] is ModelConfig else train, name, value)
    return model, train


def ignored_on_resume(saved: tuple[ModelConfig, TrainConfig], settings: dict) -> list[str]:
    """The given `settings` that a resumed run ignores, because its saved config differs.

    `epochs` and `max_steps` are not among them: they extend a resumed run.
    """
    saved_values = {**dataclasses.asdict(saved[0]), **dataclasses.asdict(saved[1])}
    ignored = []
    for name, value in settings.items():
        if name in ("epochs", "max_steps"):
            continue
        if name in ("text_files", "init_from"):
            value = getattr(TrainConfig(**{name: value}).with_absolute_paths(), name)
        if value != saved_values[name]:
            ignored.append(
                f"{flag_name(name)} is ignored with --resume (the run keeps {saved_values[name]!r})"
            )
    return ignored
