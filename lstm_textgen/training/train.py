"""Training a `CharLanguageModel` with Keras `fit`, checkpointing into a run directory.

`train` settles the configs and the strategy, then runs two phases over one `TrainJob`:
restore or initialise the model (`training.start`), then fit. It calls on
`training.data` (the corpus as ids, the run's length, its batches), `training.optimizer`,
`training.xla_timing`, `training.callbacks` and `store.run_dir` (what a run directory
holds, and how it is written).

Global state: a new run seeds Python's, NumPy's and TensorFlow's global random generators
with `train_config.seed` (`keras.utils.set_random_seed`) before building the model, so the
same seed gives the same run. Keras's global dtype policy is set for the run
(`mixed_precision`) and restored afterwards.
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

from lstm_textgen.config import ModelConfig, TrainConfig
from lstm_textgen.errors import TextgenError, setting
from lstm_textgen.evaluation.evaluate import evaluate_ids
from lstm_textgen.files import remove_partial_writes
from lstm_textgen.generation.backends.keras_scorer import KerasScorer
from lstm_textgen.progress import is_terminal
from lstm_textgen.store import checkpoints
from lstm_textgen.store import run_dir as rundir
from lstm_textgen.training.callbacks import CheckpointAndReport, StepProgress, cleared_first
from lstm_textgen.training.data import total_steps, training_datasets
from lstm_textgen.training.distribute import is_chief, strategy_name, thread_settings
from lstm_textgen.training.precision import Precision, choose_precision, set_mixed_precision
from lstm_textgen.training.start import (
    TrainJob,
    give_carried_state,
    new_model_config,
    restore_or_initialise,
)
from lstm_textgen.training.xla_timing import settle_xla

logger = logging.getLogger("lstm_textgen")


@dataclass
class TrainResult:
    run_dir: str
    step: int
    best_val_loss: float
    history: list[rundir.HistoryRecord] = field(default_factory=list)
    chief: bool = True  # False on the workers of a multi-worker run that do not write


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
        run_dir: the run directory (see `lstm_textgen.store.run_dir`).
        model_config, train_config: the run's settings (defaults if None); ignored on
            resume, which uses the run's saved config. The caller's objects are not changed.
        resume: continue from `run_dir/last.keras`.
        manual_dir: the tfds manual download folder (for offline machines).
        max_steps, epochs: a new length for a resumed run.
        jit_compile: "auto" (time the train step with and without XLA and keep the
            faster, see `settle_xla`), True (XLA unless several replicas) or False.
        strategy: from `lstm_textgen.training.distribute.make_strategy`, to spread training over
            replicas. Only the chief process writes to `run_dir`, which every worker must
            be able to read (shared storage) to resume.
        verbose: show a progress line counted in steps: True, False or "auto" (when
            stderr is a terminal).
        log: where the checkpoint reports go, one line each (global state: see the module).
    """
    strategy = strategy or tf.distribute.get_strategy()
    model_config, train_config = _settled_configs(
        run_dir, model_config, train_config, resume, max_steps, epochs, strategy
    )
    chief = is_chief(strategy)
    created = chief and not resume and not os.path.exists(run_dir)
    with contextlib.ExitStack() as held:
        data_dir = _open_run_dir(held, run_dir, resume, chief)
        held.callback(
            keras.mixed_precision.set_global_policy, keras.mixed_precision.global_policy()
        )
        progress = is_terminal(sys.stderr) if verbose == "auto" else verbose
        job = TrainJob(
            run_dir=run_dir,
            model_config=model_config,
            train_config=train_config,
            resume=resume,
            manual_dir=manual_dir,
            jit_compile=jit_compile,
            strategy=strategy,
            chief=chief,
            data_dir=data_dir,
            precision=set_mixed_precision(
                _run_precision(run_dir, model_config, train_config, resume, strategy)
            ),
            # The chief reports for everyone.
            progress=chief and bool(progress),
            log=log if chief else (lambda _: None),
        )
        return _fit(job, *_start(job, created))


def _run_precision(run_dir, model_config, train_config, resume, strategy) -> Precision:
    """What the run computes in (`choose_precision`): a resumed run keeps the dtype policy
    it started with (state.json, or its last checkpoint), as it keeps its XLA mode."""
    kept = rundir.read_state(run_dir).precision if resume else None
    if resume and kept is None:
        kept = checkpoints.read_checkpoint_info(rundir.RunDir(run_dir).checkpoint("last")).precision
    if kept:
        return Precision.of_policy(kept, f"precision {kept}, as chosen when the run started")
    batch = train_config.batch_size // strategy.num_replicas_in_sync
    return choose_precision(train_config.mixed_precision, model_config.units, batch)


def _start(job: TrainJob, created: bool):
    """`restore_or_initialise` in the strategy's scope. A new run refused before its first
    checkpoint (a bad corpus or source) leaves no folder: the one it `created` goes."""
    try:
        with job.strategy.scope():
            return restore_or_initialise(job)
    except BaseException:
        if created:
            shutil.rmtree(job.run_dir, ignore_errors=True)
        raise


def _settled_configs(run_dir, model_config, train_config, resume, max_steps, epochs, strategy):
    """The run's configs, checked (once, here): its saved ones on resume (with a new
    length, if given), copies of the caller's otherwise; the batch must split evenly
    over the strategy's replicas."""
    if resume:
        if not os.path.isfile(rundir.RunDir(run_dir).checkpoint("last")):
            raise TextgenError(
                f"nothing to resume in {run_dir}: it holds no {rundir.LAST_CHECKPOINT}; "
                f"start a new run without {setting('resume', switch=True)}"
            )
        model_config, train_config = rundir.load_run_config(run_dir)
    else:
        train_config = (train_config or TrainConfig()).with_absolute_paths()
        model_config = new_model_config(model_config, train_config)
    if max_steps is not None or epochs is not None:
        train_config = dataclasses.replace(train_config, max_steps=max_steps, epochs=epochs)
    model_config.validate()
    train_config.validate()
    replicas = strategy.num_replicas_in_sync
    if train_config.batch_size % replicas:
        raise TextgenError(
            f"{setting('batch_size', train_config.batch_size)} does not split evenly over "
            f"{replicas} replicas; use a multiple of {replicas}"
        )
    return model_config, train_config


def _open_run_dir(held: contextlib.ExitStack, run_dir: str, resume: bool, chief: bool) -> str:
    """On the chief: the run directory made (a new run), locked and cleared of what a kill
    left; its `RUN/data` folder. Other workers read the run directory but never write to
    it: they get a private temporary folder, removed when `held` closes."""
    if not chief:
        data_dir = tempfile.mkdtemp(prefix="lstm-textgen-")
        held.callback(shutil.rmtree, data_dir, ignore_errors=True)
        return data_dir
    if not resume:
        rundir.make_run_dir(run_dir)
    if os.path.isdir(run_dir):
        held.enter_context(rundir.writer_lock(run_dir))
    if not resume:
        rundir.check_new_run_dir(run_dir)
    data_dir = rundir.RunDir(run_dir).data_dir
    remove_partial_writes(run_dir, data_dir)
    return data_dir


def _fit(job: TrainJob, model, vocab, state, corpus) -> TrainResult:
    config = job.train_config
    name, train_ids, val_ids = corpus
    total = total_steps(config, train_ids)
    step = int(model.optimizer.iterations.numpy())
    if step >= total:
        job.log(f"{job.run_dir} is already trained to step {step} (target {total}); nothing to do")
        return TrainResult(job.run_dir, step, state.best_val_loss, state.history, job.chief)
    if job.chief:
        rundir.save_run_config(job.run_dir, job.model_config, config)
    if config.carry_state:
        give_carried_state(job, model, train_ids)
    train_ds, val_ds = training_datasets(config, train_ids, val_ids, step)
    xla_note = settle_xla(model, job.jit_compile, job.strategy, train_ds, total - step, state)
    state.precision = job.precision.policy
    _announce(job, model, xla_note)
    job.log(
        f"training {model.count_params():,} parameters on {name}: "
        f"{len(train_ids):,} train / {len(val_ids):,} validation characters, "
        f"vocabulary {vocab.size - 1}, steps {step} -> {total}, "
        f"checkpoint every {config.checkpoint_every} -> {job.run_dir}"
    )
    callbacks, reporter = _callbacks(job, model, state, total, val_ids)
    every = config.checkpoint_every
    model.fit(
        train_ds,
        epochs=step // every + math.ceil((total - step) / every),
        initial_epoch=step // every,
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


def _announce(job: TrainJob, model, xla_note: str) -> None:
    """The lines that say how the run trains: threads, XLA, precision and replicas."""
    inter_op, intra_op = thread_settings()
    precision = job.precision
    job.log(
        f"threads: {inter_op} inter-op, {intra_op} intra-op; train step {xla_note}"
        + (f"; dtype policy {precision.policy}" if precision.policy != "float32" else "")
        + (
            f"; GateLSTM products on {precision.matmul_dtype} operands"
            if precision.matmul_dtype and job.model_config.implementation == "gates"
            else ""
        )
    )
    if precision.note:
        job.log(precision.note)
    replicas = job.strategy.num_replicas_in_sync
    if replicas > 1:
        batch_size = job.train_config.batch_size
        job.log(
            f"{strategy_name(job.strategy)}: {replicas} replicas, "
            f"{batch_size // replicas} windows each per global batch of {batch_size}"
        )


def _callbacks(job: TrainJob, model, state, total: int, val_ids):
    """The fit's callbacks (progress line, checkpoints and reports, TensorBoard), and the
    one that checkpoints and reports."""
    config = job.train_config
    callbacks, log = [], job.log
    if job.progress:
        progress = StepProgress(total)
        callbacks.append(progress)
        log = cleared_first(progress.clear, log)
    carried_validation = None
    if config.carry_state:
        scorer = KerasScorer(model)

        def carried_validation():
            return evaluate_ids(
                scorer, val_ids, config.seq_len, config.batch_size, True
            ).nats_per_char

    reporter = CheckpointAndReport(job.run_dir, state, total, log, job.chief, carried_validation)
    callbacks.append(reporter)
    if job.chief:
        log_dir = rundir.RunDir(job.run_dir).log_dir
        callbacks.append(keras.callbacks.TensorBoard(log_dir, update_freq="epoch"))
    return callbacks, reporter
