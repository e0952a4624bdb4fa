"""Evaluate a run, an export or the shipped model on a split of its corpus or on text
files: the source and the text found, then `evaluation.evaluate` reads it."""

from __future__ import annotations

import logging
import os
import tempfile

from lstm_textgen.config import TrainConfig
from lstm_textgen.data import id_file
from lstm_textgen.data.corpus import corpus_from_tfds, items_corpus, read_text_files
from lstm_textgen.data.vocab import CharVocabulary
from lstm_textgen.errors import TextgenError, setting
from lstm_textgen.evaluation.evaluate import Evaluation, evaluate_ids, evaluate_text
from lstm_textgen.generation.open_model import exported_source, scorer_for
from lstm_textgen.store import run_dir as rundir
from lstm_textgen.store.sources import describe_source

log = logging.getLogger("lstm_textgen")


def _run_ids(run_dir: str, train_config, vocab: CharVocabulary, split: str, workdir: str):
    """The ids of split `split` of a text-file run, as encoded for training (RUN/data)."""
    if split not in ("train", "validation"):
        raise TextgenError(
            f"a run on text files has no {split} split (your own text is split into train "
            f"and validation only); evaluate on a file with {setting('text_files')}"
        )
    path = rundir.RunDir(run_dir).ids_file(split)
    if not os.path.isfile(path):
        # Runs from before the encoded ids were kept: encode the files as training did.
        log.warning(
            "%s is missing; encoding the run's text files again (if they changed since "
            "training, so does the split)",
            path,
        )
        encoded = id_file.encode_text_files(train_config.text_files, workdir, vocab)
        return encoded[1] if split == "train" else encoded[2]
    return id_file.IdFile.of_vocabulary(path, vocab)


def evaluate_run(
    run_dir: str | None = None,
    split: str = "validation",
    text_files=(),
    manual_dir: str | None = None,
    checkpoint: str = "best",
    batch_size: int | None = None,
    carry_state: bool = False,
    litert: str | None = None,
    seq_len: int | None = None,
    saved_model: str | None = None,
) -> Evaluation:
    """Evaluate a trained model on a split of its corpus or on `text_files`.

    `run_dir` is a training run, a SavedModel export or a shipped model's name (see
    `lstm_textgen.store.sources`; default: the shipped model). `seq_len` is the window length
    (default: the run's training windows; nanoGPT's tiny Shakespeare figures use 256).
    With `litert`, the model scored is that LiteRT export of the run (`export --litert`),
    run by LiteRT's interpreter, on the same text; with `saved_model`, that SavedModel
    export of it, run by its `step` signature (`SavedModelScorer`).

    `split` is train, validation, test or validation+test (the two joined, in order:
    for tiny_shakespeare, the last 10% of the text). A run trained on text files is
    evaluated on the ids training wrote to `RUN/data`, read from disk a batch at a time,
    so the split is the one it trained with even if the files changed since.
    """
    source = describe_source(run_dir, checkpoint)
    exported = exported_source(litert, saved_model)
    if exported is None:
        scorer, vocab, train_config = scorer_for(source)
    else:
        scorer, vocab, train_config = scorer_for(exported, reference=source)
    if train_config is None:
        if not text_files:
            raise TextgenError(
                f"{source.path} does not record what it was trained on; evaluate it on "
                f"text files ({setting('text_files')})"
            )
        train_config = TrainConfig()
    batch_size = batch_size or train_config.batch_size
    seq_len = seq_len or train_config.seq_len
    if text_files:
        text = read_text_files(text_files)
        return evaluate_text(scorer, vocab, text, seq_len, batch_size, carry_state)
    if train_config.text_files and not train_config.items:
        if source.kind != "run":
            raise TextgenError(
                f"{source.path} was trained on text files, which an export does not hold; "
                f"evaluate it on text files ({setting('text_files')})"
            )
        with tempfile.TemporaryDirectory(prefix="lstm-textgen-eval-") as workdir:
            ids = _run_ids(source.path, train_config, vocab, split, workdir)
            return evaluate_ids(scorer, ids, seq_len, batch_size, carry_state)
    if train_config.items:
        corpus, _ = items_corpus(
            train_config.text_files, train_config.tfds_name, manual_dir, train_config.items
        )
    else:
        corpus = corpus_from_tfds(train_config.tfds_name, manual_dir=manual_dir)
    text = "".join(corpus.split(name) for name in split.split("+"))
    return evaluate_text(scorer, vocab, text, seq_len, batch_size, carry_state)
