"""Where a training run starts from: the job that its phases share, its model config, and
its model, vocabulary, run state and corpus, restored from its last checkpoint on resume
or new (from scratch or a fine-tune's source) otherwise."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import keras
import tensorflow as tf

from lstm_textgen.config import ModelConfig, TrainConfig, check_architecture
from lstm_textgen.data import windows as data
from lstm_textgen.data.vocab import CharVocabulary
from lstm_textgen.errors import TextgenError, setting
from lstm_textgen.model.language_model import CharLanguageModel
from lstm_textgen.store import checkpoints
from lstm_textgen.store import run_dir as rundir
from lstm_textgen.store.sources import load_source
from lstm_textgen.training.callbacks import restore_seed_states
from lstm_textgen.training.data import load_training_data, total_steps
from lstm_textgen.training.finetune import copy_weights
from lstm_textgen.training.optimizer import compile_model
from lstm_textgen.training.precision import Precision


@dataclass
class TrainJob:
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
        return rundir.RunDir(self.run_dir).checkpoint("last")


def new_model_config(model_config: ModelConfig | None, config: TrainConfig) -> ModelConfig:
    """A copy of `model_config` for a new run; a fine-tune's (`config.init_from`) is its
    source's architecture, which `model_config`, if given, must agree with."""
    if not config.init_from:
        return dataclasses.replace(model_config or ModelConfig())
    from lstm_textgen.store.sources import describe_source, source_configs

    source_config = source_configs(describe_source(config.init_from))[0]
    if model_config is None:
        return dataclasses.replace(source_config, vocab_size=0)
    check_architecture(source_config, dataclasses.asdict(model_config), config.init_from)
    return dataclasses.replace(model_config)


def _load_for_resume(job: TrainJob):
    """The model of the run's last checkpoint; if it is damaged, the error says whether
    the best checkpoint is intact and how to resume from it."""
    try:
        return checkpoints.load_checkpoint(job.checkpoint)
    except TextgenError as damaged:
        best = rundir.RunDir(job.run_dir).checkpoint("best")
        step = checkpoints.read_checkpoint_info(best).step
        if step is None:
            raise
        raise TextgenError(
            f"{damaged}; {best} (step {step}) is intact: copy it over "
            f"{rundir.LAST_CHECKPOINT} to resume from step {step}"
        ) from None


def restore_or_initialise(job: TrainJob):
    """The model (compiled), vocabulary, run state and corpus `(name, train, validation)`
    of the run: from its last checkpoint on resume, new otherwise."""
    config = job.train_config
    if job.resume:
        vocab = CharVocabulary.load(job.run_dir)
        model = _load_for_resume(job)
        last_info = checkpoints.read_checkpoint_info(job.checkpoint)
        restore_seed_states(model, last_info)
        state = rundir.read_state(job.run_dir)
        # The checkpoint keeps the XLA mode too, for a run whose state.json was deleted.
        if state.xla is None:
            state.xla = last_info.xla
        # The best checkpoint carries its own loss, which wins over state.json if a kill
        # landed between writing the two.
        best_info = checkpoints.read_checkpoint_info(rundir.RunDir(job.run_dir).checkpoint("best"))
        if best_info.val_loss is not None:
            state.best_val_loss, state.best_step = best_info.val_loss, best_info.step
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
        total = total_steps(config, train_ids)
        compile_model(model, config, jit_compile=False, total_steps=total)  # see settle_xla
    if job.model_config.implementation == "gates":
        model.set_matmul_dtype(job.precision.matmul_dtype)
    return model, vocab, state, (name, train_ids, val_ids)


def give_carried_state(job: TrainJob, model, train_ids) -> None:
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
        saved = checkpoints.read_checkpoint_array(job.checkpoint, checkpoints.CARRIED_STATE)
        if saved is None or saved.shape != carried.shape:
            raise TextgenError(
                f"{job.checkpoint} holds no carried state for {setting('carry_state')} with "
                f"{setting('batch_size', config.batch_size)}; resume with the settings it was "
                "trained with"
            )
        carried.assign(saved)
    # The next batch is the run's current step: where a pass over the streams begins is
    # counted by the carried state from here on.
    carried.start_at(int(model.optimizer.iterations.numpy()))
