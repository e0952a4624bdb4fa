"""Loading a trained model from a run directory: the checkpoint file to read, and the
model with its vocabulary, checked against each other."""

from __future__ import annotations

import logging
import os

from lstm_textgen.errors import TextgenError, setting
from lstm_textgen.store.checkpoints import load_checkpoint
from lstm_textgen.store.run_dir import CHECKPOINTS, LAST_CHECKPOINT, RunDir, load_run_config

logger = logging.getLogger("lstm_textgen")


def checkpoint_path(run_dir: str, checkpoint: str = "best") -> str:
    """The file of checkpoint "best" or "last" ("best" falls back to "last")."""
    if not os.path.isdir(run_dir):
        raise TextgenError(f"run directory {run_dir} does not exist")
    load_run_config(run_dir)
    if checkpoint not in CHECKPOINTS:
        raise TextgenError(f"checkpoint must be best or last, got {checkpoint!r}")
    for name in (CHECKPOINTS[checkpoint], LAST_CHECKPOINT):
        path = RunDir(run_dir).file(name)
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


def training_items(run_dir: str, manual_dir: str | None = None) -> set[str]:
    """The training items of a run trained with `--items`, to tell new items from copies."""
    from lstm_textgen.data.corpus import items_corpus

    _, config = load_run_config(run_dir)
    if not config.items:
        raise TextgenError(
            f"{run_dir} was trained without {setting('items')}; it has no training items"
        )
    _, items = items_corpus(config.text_files, config.tfds_name, manual_dir, config.items)
    return set(items)
