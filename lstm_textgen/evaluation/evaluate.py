"""Loss of a trained model on a text, in nats and bits per character."""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass

import numpy as np

from lstm_textgen.config import TrainConfig, bits
from lstm_textgen.data import id_file
from lstm_textgen.data import windows as data
from lstm_textgen.data.corpus import corpus_from_tfds, items_corpus, read_text_files
from lstm_textgen.data.vocab import UNKNOWN_ID, CharVocabulary
from lstm_textgen.errors import TextgenError, setting
from lstm_textgen.generation.scorers import source_scorer
from lstm_textgen.generation.scoring import Scorer
from lstm_textgen.store import run_dir as rundir

log = logging.getLogger("lstm_textgen")


@dataclass
class Evaluation:
    nats_per_char: float
    num_chars: int
    unknown_chars: int

    @property
    def bits_per_char(self) -> float:
        return bits(self.nats_per_char)


def evaluate_text(
    scorer: Scorer,
    vocab: CharVocabulary,
    text: str,
    seq_len: int,
    batch_size: int = 64,
    carry_state: bool = False,
) -> Evaluation:
    """Mean cross-entropy of every predicted character of `text`.

    By default the text is cut into windows of `seq_len` as in training, each starting
    from the zero state, so the first characters of every window are guessed with little
    context. With `carry_state` the text is read as `batch_size` contiguous streams whose
    state carries from one window to the next, as in generation: only each stream's start
    lacks context. Characters outside the vocabulary still count (the model gives them
    almost no probability), and their number is reported.

    Args:
        scorer: the model, as a `Scorer`: `KerasScorer(model)` for a Keras model, or a
            `litert.LiteRTModel`.
    """
    data.check_length(text, seq_len, "evaluation")
    return evaluate_ids(scorer, id_file.encode_text(text, vocab), seq_len, batch_size, carry_state)


def evaluate_ids(
    scorer: Scorer, ids, seq_len: int, batch_size: int = 64, carry_state: bool = False
) -> Evaluation:
    """`evaluate_text` for a text already encoded: an array of ids or a `id_file.IdFile`,
    which is read from disk a batch at a time."""
    data.check_length(ids, seq_len, "evaluation")
    if carry_state:
        return _evaluate_streams(scorer, ids, seq_len, batch_size)
    total, count, unknown = 0.0, 0, 0
    for x, y in data.make_dataset(ids, seq_len, batch_size):
        x, y = x.numpy(), y.numpy()
        loss, _ = scorer.summed_loss(x, y, scorer.initial_state(len(x)))
        total += loss
        count += y.size
        unknown += int((y == UNKNOWN_ID).sum())
    return Evaluation(total / count, count, unknown)


def _read_rows(ids, starts, width: int) -> np.ndarray:
    if isinstance(ids, id_file.IdFile):
        return ids.read_windows(np.asarray(starts), width).astype(np.int32)
    return np.stack([ids[s : s + width] for s in starts]).astype(np.int32)


def _evaluate_streams(scorer: Scorer, ids, seq_len, streams) -> Evaluation:
    streams = max(1, min(streams, (len(ids) - 1) // seq_len))
    length = (len(ids) - 1) // streams  # targets per stream; up to streams - 1 are left out
    state = scorer.initial_state(streams)
    total, unknown = 0.0, 0
    for start in range(0, length, seq_len):
        stop = min(start + seq_len, length)
        rows = _read_rows(ids, [k * length + start for k in range(streams)], stop - start + 1)
        loss, state = scorer.summed_loss(rows[:, :-1], rows[:, 1:], state)
        total += loss
        unknown += int((rows[:, 1:] == UNKNOWN_ID).sum())
    count = streams * length
    return Evaluation(total / count, count, unknown)


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
    from lstm_textgen.store.shipped import DEFAULT_MODEL
    from lstm_textgen.store.sources import describe_source

    source = describe_source(run_dir or DEFAULT_MODEL)
    scorer, vocab, train_config = source_scorer(source, checkpoint, litert, saved_model)
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
