"""Training a `CharLanguageModel` with Keras `fit`, checkpointing into a run directory.

A run directory holds:

- `config.json`: the `ModelConfig` and `TrainConfig` (written before the first step);
- `vocab.json`: the `CharVocabulary`;
- `last.keras`: model and optimizer state at the latest checkpoint;
- `best.keras`: the checkpoint with the lowest validation loss so far;
- `state.json`: step, best validation loss and the history of evaluations;
- `data/`: the user's text files encoded as ids (`train.ids`, `validation.ids`), which
  training streams from disk;
- `logs/`: TensorBoard logs.

Every file is written to a temporary name and renamed, so a run killed at any moment
leaves the previous complete version of each file behind.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field

import keras
import tensorflow as tf

from lstm_textgen import data
from lstm_textgen.config import (
    MIN_LR_FRACTION,
    ModelConfig,
    TrainConfig,
    atomic_write_text,
    load_run_config,
    save_run_config,
)
from lstm_textgen.distribute import is_chief, set_mixed_precision, strategy_name
from lstm_textgen.errors import TextgenError
from lstm_textgen.model import CharLanguageModel
from lstm_textgen.vocab import CharVocabulary

LAST_CHECKPOINT = "last.keras"
BEST_CHECKPOINT = "best.keras"
STATE_FILE = "state.json"
CHECKPOINT_INFO = "lstm_textgen.json"
LOG_DIR = "logs"  # TensorBoard
DATA_DIR = "data"  # the encoded text files
LN2 = math.log(2.0)


def bits(nats: float) -> float:
    return nats / LN2


@dataclass
class TrainResult:
    run_dir: str
    step: int
    best_val_loss: float
    history: list = field(default_factory=list)
    chief: bool = True  # False on the workers of a multi-worker run that do not write


def read_state(run_dir: str) -> dict:
    path = os.path.join(run_dir, STATE_FILE)
    if not os.path.isfile(path):
        return {"step": 0, "best_val_loss": None, "best_step": None, "history": []}
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise TextgenError(f"{path} is corrupt ({e}); delete it to resume without history") from None


def atomic_save_model(model: keras.Model, path: str, info: dict) -> None:
    """Save `model` to `path` atomically, with `info` (step, losses) inside the file.

    Keeping the metadata inside the checkpoint means a checkpoint and its numbers can never
    disagree, whenever training is killed.
    """
    tmp = f"{path[: -len('.keras')]}.tmp-{os.getpid()}.keras"
    try:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(CHECKPOINT_INFO, json.dumps(info))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise TextgenError(f"could not write checkpoint {path}: {e.strerror or e}") from None


def read_checkpoint_info(path: str) -> dict:
    """The step and losses stored in a checkpoint by `atomic_save_model` ({} if none)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read(CHECKPOINT_INFO))
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError):
        return {}


def load_checkpoint(path: str, compile: bool = True) -> keras.Model:
    try:
        return keras.models.load_model(path, compile=compile)
    except Exception as e:  # Keras raises ValueError, OSError, zip and h5 errors alike
        first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise TextgenError(
            f"cannot load checkpoint {path} ({first_line}); it is damaged or not an "
            "lstm-textgen checkpoint"
        ) from None


def atomic_copy(src: str, dst: str) -> None:
    tmp = f"{dst}.tmp-{os.getpid()}"
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def load_training_data(
    config: TrainConfig, run_dir: str, manual_dir: str | None, vocab: CharVocabulary | None = None
):
    """(corpus name, vocabulary, train ids, validation ids) for a run.

    The user's text files are encoded into `run_dir/data/` and streamed from there; the
    tfds corpus is small and stays in memory. `vocab` (on resume) is used as it is;
    otherwise it is built from the training split.
    """
    if config.text_files:
        vocab, train_ids, val_ids = data.encode_text_files(
            config.text_files, os.path.join(run_dir, DATA_DIR), vocab
        )
        name = "text files"
    else:
        corpus = data.corpus_from_tfds(config.tfds_name, manual_dir=manual_dir)
        vocab = vocab or CharVocabulary.from_text(corpus.train)
        train_ids = data.encode_text(corpus.train, vocab)
        val_ids = data.encode_text(corpus.validation, vocab)
        name = corpus.name
    data.check_length(train_ids, config.seq_len, "training")
    data.check_length(val_ids, config.seq_len, "validation")
    return name, vocab, train_ids, val_ids


def _why_no_xla(model_config: ModelConfig, strategy) -> str | None:
    """Why the train step must not be compiled with XLA here (None: it may be).

    Dropout's random masks made an XLA step slower on CPU (2.0 against 1.2 s/step
    without XLA, 2 x 384 units); under several replicas Keras would compile the
    all-reduce into the step as well.
    """
    if model_config.dropout > 0.0:
        return "slower with dropout"
    if strategy.num_replicas_in_sync > 1:
        return "not with several replicas"
    return None


def _xla_note(model, requested: bool, reason: str | None) -> str:
    if model.jit_compile:
        return "compiled with XLA"
    if requested and reason:
        return f"in graph mode (XLA off: {reason})"
    return "in graph mode (no XLA)"


def _shard_by_data() -> tf.data.Options:
    # The datasets are built from ids, not files: each worker takes its part of every
    # global batch.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return options


def _seed_variables(model: keras.Model) -> list:
    # Keras does not save the dropout generators' states in a .keras file.
    return [v for v in model.variables if "seed_generator_state" in v.path]


def seed_states(model: keras.Model) -> list:
    return [v.numpy().tolist() for v in _seed_variables(model)]


def restore_seed_states(model: keras.Model, info: dict) -> None:
    states = info.get("seed_states")
    variables = _seed_variables(model)
    if states is not None and len(states) == len(variables):
        for variable, value in zip(variables, states):
            variable.assign(value)


def configure_threads(inter_op: int | None = None, intra_op: int | None = None) -> tuple[int, int]:
    """Set TensorFlow's thread pools (None keeps its default); returns (inter, intra).

    A setting must be made before TensorFlow runs its first op. On 2 cores, GateLSTM
    trained as fast with 1 or 2 inter-op threads (1510 vs 1413 ms/step at H=512, within
    noise) while keras.layers.LSTM slowed by a third with 1, so the defaults stay: one
    intra-op thread per core, and TensorFlow's own inter-op pool
    (`lstm-textgen bench train --inter-op N` compares settings).
    """
    try:
        if inter_op is not None:
            tf.config.threading.set_inter_op_parallelism_threads(inter_op)
        if intra_op is not None:
            tf.config.threading.set_intra_op_parallelism_threads(intra_op)
    except RuntimeError:
        raise TextgenError(
            "thread settings must be made before TensorFlow runs its first op; "
            "set them at the start of the process"
        ) from None
    cores = os.cpu_count() or 1
    return (
        tf.config.threading.get_inter_op_parallelism_threads() or cores,
        tf.config.threading.get_intra_op_parallelism_threads() or cores,
    )


def learning_rate(config: TrainConfig, total_steps: int):
    """The learning rate, or schedule, that `config` asks for over `total_steps` steps."""
    if config.lr_schedule == "constant":
        return config.learning_rate
    warmup = min(config.warmup_steps, max(0, total_steps - 1))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else config.learning_rate,
        decay_steps=max(1, total_steps - warmup),
        alpha=MIN_LR_FRACTION,
        warmup_target=config.learning_rate if warmup else None,
        warmup_steps=warmup,
    )


def compile_model(
    model: keras.Model, config: TrainConfig, jit_compile: bool, total_steps: int | None = None
) -> None:
    if total_steps is None:
        total_steps = config.max_steps or 1
    model.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate=learning_rate(config, total_steps), global_clipnorm=config.clip_norm
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )


class CheckpointAndReport(keras.callbacks.Callback):
    """After each evaluation: report nats and bits per char, save last and best, stop at
    `total_steps`, and stop (keeping the last good checkpoint) on a non-finite loss."""

    def __init__(self, run_dir, state, total_steps, log, chief=True):
        super().__init__()
        self.chief = chief
        self.run_dir = run_dir
        self.state = state
        self.total_steps = total_steps
        self.log = log
        self.bad_loss_step = None

    def _step(self) -> int:
        return int(self.model.optimizer.iterations.numpy())

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.bad_loss_step = self._step()
            self.model.stop_training = True
        elif self._step() >= self.total_steps:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.bad_loss_step is not None:
            return
        logs = logs or {}
        step = self._step()
        train_loss = float(logs.get("loss", float("nan")))
        val_loss = float(logs.get("val_loss", float("nan")))
        if not math.isfinite(val_loss):
            self.bad_loss_step = step
            self.model.stop_training = True
            return
        last = os.path.join(self.run_dir, LAST_CHECKPOINT)
        best = self.state["best_val_loss"]
        improved = best is None or val_loss < best
        if self.chief:
            self._save(last, step, train_loss, val_loss, improved)
        if improved:
            self.state["best_val_loss"] = val_loss
            self.state["best_step"] = step
        self.state["step"] = step
        self.state["history"].append(
            {"step": step, "train_loss": train_loss, "val_loss": val_loss}
        )
        if self.chief:
            atomic_write_text(
                os.path.join(self.run_dir, STATE_FILE), json.dumps(self.state, indent=1) + "\n"
            )
        self.log(
            f"step {step}/{self.total_steps}: train {train_loss:.4f} nats/char, "
            f"validation {val_loss:.4f} nats/char = {bits(val_loss):.4f} bits/char"
            + (" (best, saved)" if improved else f" (best {self.state['best_val_loss']:.4f})")
        )

    def _save(self, last, step, train_loss, val_loss, improved):
        atomic_save_model(
            self.model,
            last,
            {
                "step": step,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "seed_states": seed_states(self.model),
            },
        )
        if improved:
            atomic_copy(last, os.path.join(self.run_dir, BEST_CHECKPOINT))


def _remove_partial_writes(run_dir: str) -> None:
    """Delete temporary files a killed run left half-written (never a complete file)."""
    for folder in (run_dir, os.path.join(run_dir, DATA_DIR)):
        names = os.listdir(folder) if os.path.isdir(folder) else []
        for name in names:
            if ".tmp-" in name:
                try:
                    os.remove(os.path.join(folder, name))
                except OSError:
                    pass


def _check_new_run_dir(run_dir: str) -> None:
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise TextgenError(f"--run {run_dir} exists and is not a directory")
    if os.path.exists(os.path.join(run_dir, LAST_CHECKPOINT)):
        raise TextgenError(
            f"{run_dir} already holds a trained model; pass --resume to continue it, "
            "or choose another --run directory"
        )
    try:
        os.makedirs(run_dir, exist_ok=True)
    except OSError as e:
        raise TextgenError(f"cannot create run directory {run_dir}: {e.strerror}") from None
    if not os.access(run_dir, os.W_OK):
        raise TextgenError(f"run directory {run_dir} is not writable")


def _total_steps(config: TrainConfig, train_windows: int) -> int:
    if config.max_steps is not None:
        return config.max_steps
    steps_per_epoch = max(1, train_windows // config.batch_size)
    return (config.epochs or 1) * steps_per_epoch


def train(
    run_dir: str,
    model_config: ModelConfig | None = None,
    train_config: TrainConfig | None = None,
    *,
    resume: bool = False,
    manual_dir: str | None = None,
    max_steps: int | None = None,
    epochs: int | None = None,
    jit_compile: bool = True,
    strategy: tf.distribute.Strategy | None = None,
    verbose="auto",
    log=print,
) -> TrainResult:
    """Train (or with `resume=True`, continue) the run in `run_dir`.

    On resume the run's saved configuration is used; `max_steps` or `epochs` may extend it.
    `manual_dir` is the tfds manual download folder (for offline machines).
    `strategy` (from `lstm_textgen.distribute.make_strategy`) spreads training over
    replicas; only the chief process writes to `run_dir`, which every worker must be able
    to read (shared storage) to resume.
    """
    if resume:
        if not os.path.isfile(os.path.join(run_dir, LAST_CHECKPOINT)):
            raise TextgenError(
                f"nothing to resume in {run_dir}: it holds no {LAST_CHECKPOINT}; "
                "start a new run without --resume"
            )
        model_config, train_config = load_run_config(run_dir)
    else:
        model_config = model_config or ModelConfig()
        train_config = train_config or TrainConfig()
        # Absolute paths, so the run resumes and evaluates from any directory.
        train_config.text_files = [
            os.path.abspath(os.path.expanduser(p)) for p in train_config.text_files
        ]
    if max_steps is not None or epochs is not None:
        train_config.max_steps, train_config.epochs = max_steps, epochs
    model_config.validate()
    train_config.validate()
    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    if train_config.batch_size % replicas:
        raise TextgenError(
            f"--batch-size {train_config.batch_size} does not split evenly over {replicas} "
            f"replicas; use a multiple of {replicas}"
        )
    chief = is_chief(strategy)
    if chief:
        if not resume:
            _check_new_run_dir(run_dir)
        _remove_partial_writes(run_dir)
    # Other workers read the run directory but never write to it.
    data_dir = os.path.join(run_dir, DATA_DIR) if chief else tempfile.mkdtemp(prefix="lstm-textgen-")
    if not chief:
        log, verbose = (lambda _: None), 0  # the chief reports for everyone
    previous_policy = keras.mixed_precision.global_policy()
    policy = set_mixed_precision(train_config.mixed_precision)
    try:
        return _train(
            run_dir, model_config, train_config, resume, manual_dir, jit_compile,
            strategy, chief, data_dir, policy, verbose, log,
        )  # fmt: skip
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
        if not chief:
            shutil.rmtree(data_dir, ignore_errors=True)


def _train(
    run_dir, model_config, train_config, resume, manual_dir, jit_compile, strategy, chief,
    data_dir, policy, verbose, log,
) -> TrainResult:
    """The body of `train`, once the strategy, the dtype policy and the run's configs are
    settled."""
    no_xla = _why_no_xla(model_config, strategy)
    with strategy.scope():
        if resume:
            vocab = CharVocabulary.load(run_dir)
            model = load_checkpoint(os.path.join(run_dir, LAST_CHECKPOINT))
            restore_seed_states(model, read_checkpoint_info(os.path.join(run_dir, LAST_CHECKPOINT)))
            if no_xla:
                model.jit_compile = False  # e.g. a one-device run resumed on several replicas
            state = read_state(run_dir)
            # The best checkpoint carries its own loss, which wins over state.json if a
            # kill landed between writing the two.
            best_info = read_checkpoint_info(os.path.join(run_dir, BEST_CHECKPOINT))
            if "val_loss" in best_info:
                state["best_val_loss"], state["best_step"] = best_info["val_loss"], best_info["step"]
            corpus_name, _, train_ids, val_ids = load_training_data(
                train_config, data_dir, manual_dir, vocab
            )
        else:
            corpus_name, vocab, train_ids, val_ids = load_training_data(
                train_config, data_dir, manual_dir
            )
            model_config.vocab_size = vocab.size
            if chief:
                vocab.save(run_dir)
            keras.utils.set_random_seed(train_config.seed)
            model = CharLanguageModel.from_model_config(model_config)
            state = read_state(run_dir)

        total_steps = _total_steps(
            train_config, data.count_windows(len(train_ids), train_config.seq_len)
        )
        if not resume:
            compile_model(model, train_config, jit_compile and no_xla is None, total_steps)
    step = int(model.optimizer.iterations.numpy())
    if step >= total_steps:
        log(f"{run_dir} is already trained to step {step} (target {total_steps}); nothing to do")
        return TrainResult(run_dir, step, state["best_val_loss"], state["history"])
    if chief:
        save_run_config(run_dir, model_config, train_config)

    # The batches depend on (seed, step) only, and the dropout generators' states travel
    # in the checkpoint: a resumed run continues exactly as an uninterrupted one. Under a
    # distribution strategy each batch is the global batch, split over the replicas.
    train_ds = data.make_train_dataset(
        train_ids, train_config.seq_len, train_config.batch_size, train_config.seed, step
    ).with_options(_shard_by_data())
    val_ds = data.make_dataset(
        val_ids, train_config.seq_len, train_config.batch_size
    ).with_options(_shard_by_data())
    every = train_config.checkpoint_every
    initial_epoch = step // every
    epochs_needed = initial_epoch + math.ceil((total_steps - step) / every)

    inter_op, intra_op = configure_threads()
    log(
        f"threads: {inter_op} inter-op, {intra_op} intra-op; train step "
        + _xla_note(model, jit_compile, no_xla)
        + (f"; dtype policy {policy}" if policy != "float32" else "")
    )
    if strategy.num_replicas_in_sync > 1:
        log(
            f"{strategy_name(strategy)}: {strategy.num_replicas_in_sync} replicas, "
            f"{train_config.batch_size // strategy.num_replicas_in_sync} windows each "
            f"per global batch of {train_config.batch_size}"
        )
    log(
        f"training {model.count_params():,} parameters on {corpus_name}: "
        f"{len(train_ids):,} train / {len(val_ids):,} validation characters, "
        f"vocabulary {vocab.size - 1}, steps {step} -> {total_steps}, "
        f"checkpoint every {every} -> {run_dir}"
    )
    reporter = CheckpointAndReport(run_dir, state, total_steps, log, chief)
    callbacks = [reporter]
    if chief:
        callbacks.append(
            keras.callbacks.TensorBoard(os.path.join(run_dir, LOG_DIR), update_freq="epoch")
        )
    if verbose == "auto":
        verbose = 1 if _stdout_is_tty() else 2
    model.fit(
        train_ds,
        epochs=epochs_needed,
        initial_epoch=initial_epoch,
        steps_per_epoch=every,
        shuffle=False,  # the dataset shuffles itself
        validation_data=val_ds,
        validation_steps=train_config.eval_batches,
        callbacks=callbacks,
        verbose=verbose,
    )
    if reporter.bad_loss_step is not None:
        raise TextgenError(
            f"the loss became NaN or infinite at step {reporter.bad_loss_step}; training "
            f"stopped and the last good checkpoint (step {state['step']}) is kept; "
            "try a lower --learning-rate or --clip-norm"
        )
    return TrainResult(run_dir, state["step"], state["best_val_loss"], state["history"], chief)


def _stdout_is_tty() -> bool:
    try:
        return os.isatty(1)
    except OSError:
        return False


def load_trained_model(run_dir: str, checkpoint: str = "best") -> tuple[CharLanguageModel, CharVocabulary]:
    """The model and vocabulary of a training run; `checkpoint` is "best" or "last"."""
    if not os.path.isdir(run_dir):
        raise TextgenError(f"run directory {run_dir} does not exist")
    load_run_config(run_dir)
    names = {"best": BEST_CHECKPOINT, "last": LAST_CHECKPOINT}
    if checkpoint not in names:
        raise TextgenError(f"checkpoint must be best or last, got {checkpoint!r}")
    path = os.path.join(run_dir, names[checkpoint])
    if not os.path.isfile(path):
        fallback = os.path.join(run_dir, LAST_CHECKPOINT)
        if checkpoint == "best" and os.path.isfile(fallback):
            path = fallback
        else:
            raise TextgenError(
                f"{run_dir} holds no trained model ({names[checkpoint]} is missing); "
                f"train it first with `lstm-textgen train --run {run_dir}`"
            )
    vocab = CharVocabulary.load(run_dir)
    model = load_checkpoint(path, compile=False)
    if model.vocab_size != vocab.size:
        raise TextgenError(
            f"{path} predicts {model.vocab_size} ids but {run_dir}/vocab.json has "
            f"{vocab.size}; the run directory is inconsistent"
        )
    return model, vocab

