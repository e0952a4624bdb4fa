"""Training a `CharLanguageModel` with Keras `fit`, checkpointing into a run directory.

`train` settles the configs and the strategy, then runs three phases over one `_Job`:
restore or initialise the model, build the datasets, fit. What a run directory holds, and
how it is written, is `lstm_textgen.rundir`'s business.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field

import keras
import tensorflow as tf

from lstm_textgen import data, rundir
from lstm_textgen.callbacks import CheckpointAndReport, StepProgress, restore_seed_states
from lstm_textgen.config import (
    MIN_LR_FRACTION,
    ModelConfig,
    TrainConfig,
    check_architecture,
)
from lstm_textgen.distribute import (
    Precision,
    is_chief,
    set_mixed_precision,
    strategy_name,
    thread_settings,
)
from lstm_textgen.errors import TextgenError, setting
from lstm_textgen.evaluate import KerasScorer, evaluate_ids
from lstm_textgen.files import remove_partial_writes
from lstm_textgen.finetune import copy_weights
from lstm_textgen.model import CharLanguageModel
from lstm_textgen.sources import load_source
from lstm_textgen.vocab import END_OF_ITEM, CharVocabulary
from lstm_textgen.xla_timing import settle_xla

logger = logging.getLogger("lstm_textgen")


@dataclass
class TrainResult:
    run_dir: str
    step: int
    best_val_loss: float
    history: list = field(default_factory=list)
    chief: bool = True  # False on the workers of a multi-worker run that do not write


def load_training_data(
    config: TrainConfig,
    data_dir: str,
    manual_dir: str | None,
    vocab: CharVocabulary | None = None,
    base_vocab: CharVocabulary | None = None,
):
    """(corpus name, vocabulary, train ids, validation ids) for a run.

    The user's text files are encoded into `data_dir` (a run's `RUN/data`) and streamed
    from there; the tfds corpus and a corpus of items (`config.items`, see
    `data.items_corpus`) stay in memory. `vocab` (on resume) is used as it is; otherwise
    it is built from the training split, as `base_vocab` (a fine-tune's source
    vocabulary) extended by the characters it lacks when that is given.
    """

    def new_vocab(characters, end_of_item=None):
        if base_vocab is not None:
            return base_vocab.extended(characters, end_of_item)
        return CharVocabulary(characters, end_of_item)

    if config.items:
        corpus, _ = data.items_corpus(config.text_files, config.tfds_name, manual_dir, config.items)
        vocab = vocab or new_vocab(set(corpus.train), END_OF_ITEM)
        train_ids = data.encode_text(corpus.train, vocab)
        val_ids = data.encode_text(corpus.validation, vocab)
        name = corpus.name
    elif config.text_files:
        vocab, train_ids, val_ids = data.encode_text_files(
            config.text_files, data_dir, vocab, base_vocab
        )
        name = "text files"
    else:
        corpus = data.corpus_from_tfds(config.tfds_name, manual_dir=manual_dir)
        vocab = vocab or new_vocab(set(corpus.train))
        train_ids = data.encode_text(corpus.train, vocab)
        val_ids = data.encode_text(corpus.validation, vocab)
        name = corpus.name
    data.check_length(train_ids, config.seq_len, "training")
    data.check_length(val_ids, config.seq_len, "validation")
    return name, vocab, train_ids, val_ids


def _shard_by_data() -> tf.data.Options:
    # The datasets are built from ids, not files: each worker takes its part of every
    # global batch.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return options


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
    model: keras.Model, config: TrainConfig, jit_compile: bool, *, total_steps: int
) -> None:
    """Compile `model` with Adam, gradient clipping and `config`'s schedule over
    `total_steps` (the length of the whole run: a cosine schedule decays over it)."""
    model.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate=learning_rate(config, total_steps), global_clipnorm=config.clip_norm
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit_compile,
    )


def _check_new_run_dir(run_dir: str) -> None:
    if os.path.exists(os.path.join(run_dir, rundir.LAST_CHECKPOINT)):
        raise TextgenError(
            f"{run_dir} already holds a trained model; pass {setting('resume', switch=True)} "
            "to continue it, or choose another run directory"
        )


def _make_run_dir(run_dir: str) -> None:
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise TextgenError(f"{setting('run_dir', run_dir)} exists and is not a directory")
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


@dataclass
class _Job:
    """What the phases of one `train` call share; the configs are this call's copies."""

    run_dir: str
    model_config: ModelConfig
    train_config: TrainConfig
    resume: bool
    manual_dir: str | None
    jit_compile: bool | str
    strategy: tf.distribute.Strategy
    chief: bool
    data_dir: str  # RUN/data on the chief; a private temporary folder on other workers
    precision: Precision
    progress: bool
    log: object

    @property
    def checkpoint(self) -> str:
        return os.path.join(self.run_dir, rundir.LAST_CHECKPOINT)


def train(
    run_dir: str,
    model_config: ModelConfig | None = None,
    train_config: TrainConfig | None = None,
    *,
    resume: bool = False,
    manual_dir: str | None = None,
    max_steps: int | None = None,
    epochs: int | None = None,
    jit_compile: bool | str = "auto",
    strategy: tf.distribute.Strategy | None = None,
    verbose="auto",
    log=print,
) -> TrainResult:
    """Train (or with `resume=True`, continue) the run in `run_dir`.

    Args:
        run_dir: the run directory (see `lstm_textgen.rundir`).
        model_config, train_config: the run's settings (defaults if None); ignored on
            resume, which uses the run's saved config. The caller's objects are not changed.
        resume: continue from `run_dir/last.keras`.
        manual_dir: the tfds manual download folder (for offline machines).
        max_steps, epochs: a new length for a resumed run.
        jit_compile: "auto" (time the train step with and without XLA and keep the
            faster, see `settle_xla`), True (XLA unless several replicas) or False.
        strategy: from `lstm_textgen.distribute.make_strategy`, to spread training over
            replicas. Only the chief process writes to `run_dir`, which every worker must
            be able to read (shared storage) to resume.
        verbose: show a progress line counted in steps: True, False or "auto" (when
            stderr is a terminal).
        log: where the checkpoint reports go, one line each.

    Global state: a new run seeds Python's, NumPy's and TensorFlow's global random
    generators with `train_config.seed` (`keras.utils.set_random_seed`) before building
    the model, so the same seed gives the same run. Keras's global dtype policy is set
    for the run (`mixed_precision`) and restored afterwards.
    """
    if resume:
        if not os.path.isfile(os.path.join(run_dir, rundir.LAST_CHECKPOINT)):
            raise TextgenError(
                f"nothing to resume in {run_dir}: it holds no {rundir.LAST_CHECKPOINT}; "
                f"start a new run without {setting('resume', switch=True)}"
            )
        model_config, train_config = rundir.load_run_config(run_dir)
    else:
        train_config = (train_config or TrainConfig()).with_absolute_paths()
        model_config = _new_model_config(model_config, train_config)
    if max_steps is not None or epochs is not None:
        train_config = dataclasses.replace(train_config, max_steps=max_steps, epochs=epochs)
    model_config.validate()
    train_config.validate()
    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    if train_config.batch_size % replicas:
        raise TextgenError(
            f"{setting('batch_size', train_config.batch_size)} does not split evenly over "
            f"{replicas} replicas; use a multiple of {replicas}"
        )
    chief = is_chief(strategy)
    # A new run refused before its first checkpoint (a bad corpus or source) leaves no folder.
    created = chief and not resume and not os.path.exists(run_dir)
    with contextlib.ExitStack() as held:
        if chief:
            if not resume:
                _make_run_dir(run_dir)
            if os.path.isdir(run_dir):
                held.enter_context(rundir.writer_lock(run_dir))
            if not resume:
                _check_new_run_dir(run_dir)
            remove_partial_writes(run_dir, os.path.join(run_dir, rundir.DATA_DIR))
        # Other workers read the run directory but never write to it.
        if chief:
            data_dir = os.path.join(run_dir, rundir.DATA_DIR)
        else:
            data_dir = tempfile.mkdtemp(prefix="lstm-textgen-")
            log, verbose = (lambda _: None), False  # the chief reports for everyone
        if verbose == "auto":
            verbose = _is_terminal(sys.stderr)
        previous_policy = keras.mixed_precision.global_policy()
        precision = set_mixed_precision(train_config.mixed_precision)
        job = _Job(
            run_dir=run_dir,
            model_config=model_config,
            train_config=train_config,
            resume=resume,
            manual_dir=manual_dir,
            jit_compile=jit_compile,
            strategy=strategy,
            chief=chief,
            data_dir=data_dir,
            precision=precision,
            progress=bool(verbose),
            log=log,
        )
        try:
            try:
                with strategy.scope():
                    model, vocab, state, corpus = _restore_or_initialise(job)
            except BaseException:
                if created:
                    shutil.rmtree(run_dir, ignore_errors=True)
                raise
            return _fit(job, model, vocab, state, corpus)
        finally:
            keras.mixed_precision.set_global_policy(previous_policy)
            if not chief:
                shutil.rmtree(data_dir, ignore_errors=True)


def _new_model_config(model_config: ModelConfig | None, config: TrainConfig) -> ModelConfig:
    """A copy of `model_config` for a new run; a fine-tune's (`config.init_from`) is its
    source's architecture, which `model_config`, if given, must agree with."""
    if not config.init_from:
        return dataclasses.replace(model_config or ModelConfig())
    from lstm_textgen.sources import describe_source, source_configs

    source_config = source_configs(describe_source(config.init_from))[0]
    if model_config is None:
        return dataclasses.replace(source_config, vocab_size=0)
    check_architecture(source_config, dataclasses.asdict(model_config), config.init_from)
    return dataclasses.replace(model_config)


def _load_for_resume(job: _Job):
    """The model of the run's last checkpoint; if it is damaged, the error says whether
    the best checkpoint is intact and how to resume from it."""
    try:
        return rundir.load_checkpoint(job.checkpoint)
    except TextgenError as damaged:
        best = os.path.join(job.run_dir, rundir.BEST_CHECKPOINT)
        step = rundir.read_checkpoint_info(best).get("step")
        if step is None:
            raise
        raise TextgenError(
            f"{damaged}; {best} (step {step}) is intact: copy it over "
            f"{rundir.LAST_CHECKPOINT} to resume from step {step}"
        ) from None


def _restore_or_initialise(job: _Job):
    """The model (compiled), vocabulary, run state and corpus `(name, train, validation)`
    of the run: from its last checkpoint on resume, new otherwise."""
    config = job.train_config
    if job.resume:
        vocab = CharVocabulary.load(job.run_dir)
        model = _load_for_resume(job)
        restore_seed_states(model, rundir.read_checkpoint_info(job.checkpoint))
        state = rundir.read_state(job.run_dir)
        # The checkpoint keeps the XLA mode too, for a run whose state.json was deleted.
        if state.xla is None:
            state.xla = rundir.read_checkpoint_info(job.checkpoint).get("xla")
        # The best checkpoint carries its own loss, which wins over state.json if a kill
        # landed between writing the two.
        best_info = rundir.read_checkpoint_info(os.path.join(job.run_dir, rundir.BEST_CHECKPOINT))
        if "val_loss" in best_info:
            state.best_val_loss, state.best_step = best_info["val_loss"], best_info["step"]
        name, _, train_ids, val_ids = load_training_data(
            config, job.data_dir, job.manual_dir, vocab
        )
    else:
        source = load_source(config.init_from) if config.init_from else None
        name, vocab, train_ids, val_ids = load_training_data(
            config, job.data_dir, job.manual_dir, base_vocab=source and source.vocab
        )
        job.model_config.vocab_size = vocab.size
        if job.chief:
            vocab.save(job.run_dir)
        keras.utils.set_random_seed(config.seed)
        model = CharLanguageModel.from_model_config(job.model_config)
        if source is not None:
            copy_weights(source.model, model)
            new = vocab.characters[len(source.vocab.characters) :]
            job.log(
                f"fine-tuning {source.source.label}: its weights copied"
                + (f"; {len(new)} new characters {''.join(new)!r} get fresh rows" if new else "")
            )
        state = rundir.read_state(job.run_dir)
        total = _total_steps(config, data.count_windows(len(train_ids), config.seq_len))
        compile_model(model, config, jit_compile=False, total_steps=total)  # see settle_xla
    if job.model_config.implementation == "gates":
        model.set_matmul_dtype(job.precision.matmul_dtype)
    return model, vocab, state, (name, train_ids, val_ids)


def _datasets(job: _Job, train_ids, val_ids, step: int):
    """Training batches from step `step` on, and the validation batches.

    The batches depend on (seed, step) only, and the dropout generators' states travel in
    the checkpoint: a resumed run continues exactly as an uninterrupted one. Under a
    distribution strategy each batch is the global batch, split over the replicas.
    """
    config = job.train_config
    if config.carry_state:
        train_ds = data.make_stream_dataset(train_ids, config.seq_len, config.batch_size, step)
    else:
        train_ds = data.make_train_dataset(
            train_ids, config.seq_len, config.batch_size, config.seed, step
        )
    train_ds = train_ds.with_options(_shard_by_data())
    val_ds = data.make_dataset(val_ids, config.seq_len, config.batch_size)
    return train_ds, val_ds.with_options(_shard_by_data())


def _fit(job: _Job, model, vocab, state, corpus) -> TrainResult:
    config = job.train_config
    name, train_ids, val_ids = corpus
    total_steps = _total_steps(config, data.count_windows(len(train_ids), config.seq_len))
    step = int(model.optimizer.iterations.numpy())
    log = job.log
    if step >= total_steps:
        log(
            f"{job.run_dir} is already trained to step {step} (target {total_steps}); nothing to do"
        )
        return TrainResult(job.run_dir, step, state.best_val_loss, state.history, job.chief)
    if job.chief:
        rundir.save_run_config(job.run_dir, job.model_config, config)
    if config.carry_state:
        _carry_state(job, model, train_ids)
    train_ds, val_ds = _datasets(job, train_ids, val_ids, step)
    every = config.checkpoint_every
    initial_epoch = step // every
    epochs_needed = initial_epoch + math.ceil((total_steps - step) / every)

    inter_op, intra_op = thread_settings()
    xla_note = settle_xla(model, job.jit_compile, job.strategy, train_ds, total_steps - step, state)
    log(
        f"threads: {inter_op} inter-op, {intra_op} intra-op; train step {xla_note}"
        + (f"; dtype policy {job.precision.policy}" if job.precision.policy != "float32" else "")
        + (
            f"; GateLSTM products on {job.precision.matmul_dtype} operands"
            if job.precision.matmul_dtype and job.model_config.implementation == "gates"
            else ""
        )
    )
    if job.precision.note:
        log(job.precision.note)
    replicas = job.strategy.num_replicas_in_sync
    if replicas > 1:
        log(
            f"{strategy_name(job.strategy)}: {replicas} replicas, "
            f"{config.batch_size // replicas} windows each per global batch of "
            f"{config.batch_size}"
        )
    log(
        f"training {model.count_params():,} parameters on {name}: "
        f"{len(train_ids):,} train / {len(val_ids):,} validation characters, "
        f"vocabulary {vocab.size - 1}, steps {step} -> {total_steps}, "
        f"checkpoint every {every} -> {job.run_dir}"
    )
    callbacks = []
    if job.progress:
        progress = StepProgress(total_steps)
        callbacks.append(progress)
        log = _after(progress.clear, log)
    carried_validation = None
    if config.carry_state:
        scorer = KerasScorer(model)

        def carried_validation():
            return evaluate_ids(
                scorer, val_ids, config.seq_len, config.batch_size, True
            ).nats_per_char

    reporter = CheckpointAndReport(
        job.run_dir, state, total_steps, log, job.chief, carried_validation
    )
    callbacks.append(reporter)
    if job.chief:
        callbacks.append(
            keras.callbacks.TensorBoard(
                os.path.join(job.run_dir, rundir.LOG_DIR), update_freq="epoch"
            )
        )
    model.fit(
        train_ds,
        epochs=epochs_needed,
        initial_epoch=initial_epoch,
        steps_per_epoch=every,
        shuffle=False,  # the dataset shuffles itself
        validation_data=val_ds,
        validation_steps=config.eval_batches,
        callbacks=callbacks,
        verbose=0,  # Keras counts "epochs"; StepProgress counts steps
    )
    if reporter.bad_loss_step is not None:
        raise TextgenError(
            f"the loss became NaN or infinite at step {reporter.bad_loss_step}; training "
            f"stopped and the last good checkpoint (step {state.step}) is kept; "
            f"try a lower {setting('learning_rate')} or {setting('clip_norm')}"
        )
    return TrainResult(job.run_dir, state.step, state.best_val_loss, state.history, job.chief)


def _carry_state(job: _Job, model, train_ids) -> None:
    """Give `model` the state carried between batches, restored on resume."""
    config = job.train_config
    if job.strategy.num_replicas_in_sync > 1:
        raise TextgenError(
            f"{setting('carry_state')} trains on one device (a carried state belongs to one "
            f"sequence of batches); leave out {setting('strategy')} and "
            f"{setting('cpu_replicas')}, or {setting('carry_state')}"
        )
    per_pass = data.stream_batches(len(train_ids), config.seq_len, config.batch_size)
    carried = model.carry_state(config.batch_size, max(1, per_pass))
    if job.resume:
        saved = rundir.read_checkpoint_array(job.checkpoint, rundir.CARRIED_STATE)
        if saved is None or saved.shape != carried.shape:
            raise TextgenError(
                f"{job.checkpoint} holds no carried state for {setting('carry_state')} with "
                f"{setting('batch_size', config.batch_size)}; resume with the settings it was "
                "trained with"
            )
        carried.assign(saved)


def _after(first, log):
    def both(message):
        first()
        log(message)

    return both


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
