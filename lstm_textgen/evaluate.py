"""Loss of a trained model on a text, in nats and bits per character."""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from lstm_textgen import data, id_file, rundir, stepping
from lstm_textgen.config import TrainConfig, bits
from lstm_textgen.corpus import corpus_from_tfds, items_corpus, read_text_files
from lstm_textgen.errors import TextgenError, setting
from lstm_textgen.model import CharLanguageModel
from lstm_textgen.scoring import Scorer
from lstm_textgen.vocab import UNKNOWN_ID, CharVocabulary

log = logging.getLogger("lstm_textgen")


@dataclass
class Evaluation:
    nats_per_char: float
    num_chars: int
    unknown_chars: int

    @property
    def bits_per_char(self) -> float:
        return bits(self.nats_per_char)


class KerasScorer(Scorer):
    """A `CharLanguageModel` (from a run, an export or the shipped model) as a `Scorer`.

    Args:
        model: the Keras model; its pieces are scored in one compiled function.
    """

    def __init__(self, model: CharLanguageModel):
        self.model = model
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum")

        @tf.function
        def piece_loss(x, y, state):
            logits, state = model.logits_and_state(x, state)
            return loss_fn(y, logits), state

        @tf.function(reduce_retracing=True)
        def piece_log_probs(ids, state):
            first = stepping.next_logits(model, state)[:, None]
            logits, state = model.logits_and_state(ids, state)
            logits = tf.concat([first, logits[:, :-1]], axis=1)
            log_softmax = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
            return tf.gather(log_softmax, ids, batch_dims=2), state

        self._piece_loss = piece_loss
        self._piece_log_probs = piece_log_probs

    def initial_state(self, batch: int):
        return self.model.initial_state(batch)

    def char_log_probs(self, ids, state):
        log_probs, state = self._piece_log_probs(tf.constant(ids, tf.int32), state)
        return log_probs.numpy(), state

    def summed_loss(self, x, y, state):
        loss, state = self._piece_loss(x, y, state)
        return float(loss), state


@dataclass(frozen=True)
class ScoredChar:
    """One character of a scored text and its log-probability in nats (None for a
    character outside the vocabulary, which is skipped: the state does not read it)."""

    char: str
    logprob: float | None


def score_text(scorer: Scorer, vocab: CharVocabulary, text: str, piece: int = 1024):
    """Each character of `text` with its log-probability under the model, read from the
    initial state (after the end-of-item marker for a model of items) with the state
    carried from piece to piece of `piece` known characters; yields `ScoredChar`s."""
    state = scorer.initial_state(1)
    if vocab.end_id is not None:
        _, state = scorer.char_log_probs(np.array([[vocab.end_id]], np.int32), state)
    ids = vocab.encode(text)
    for start in range(0, len(text), piece):
        chunk = ids[start : start + piece]
        known = np.array([[i for i in chunk if i != UNKNOWN_ID]], np.int32)
        log_probs = iter(())
        if known.size:
            scores, state = scorer.char_log_probs(known, state)
            log_probs = iter(scores[0].tolist())
        for offset, i in enumerate(chunk):
            yield ScoredChar(text[start + offset], next(log_probs) if i != UNKNOWN_ID else None)


def open_scorer(
    source: str | None = None,
    checkpoint: str = "best",
    litert: str | None = None,
    saved_model: str | None = None,
):
    """`(scorer, vocab)` of a run, an export or a shipped model (`sources`; default: the
    shipped model) rebuilt in Keras; or of a LiteRT file, or of an export run by its
    signatures (`saved_model`)."""
    exported = _exported_scorer(litert, saved_model)
    if exported is not None:
        if source:
            flag = setting("litert" if litert else "saved_model")
            raise TextgenError(f"give {setting('run')} or {flag}, not both")
        _one_checkpoint(checkpoint)
        return exported, exported.vocab
    from lstm_textgen.shipped import DEFAULT_MODEL
    from lstm_textgen.sources import describe_source

    scorer, vocab, _ = _source_scorer(describe_source(source or DEFAULT_MODEL), checkpoint)
    return scorer, vocab


def _exported_scorer(litert: str | None, saved_model: str | None) -> Scorer | None:
    """The scorer of a LiteRT file or of a SavedModel's signatures; None for neither."""
    if litert and saved_model:
        raise TextgenError(f"give {setting('litert')} or {setting('saved_model')}, not both")
    if litert:
        from lstm_textgen.litert import LiteRTModel

        return LiteRTModel(litert)
    if saved_model:
        from lstm_textgen.saved_model import SavedModelScorer

        return SavedModelScorer(saved_model)
    return None


def _one_checkpoint(checkpoint: str) -> None:
    """An export holds one checkpoint: asking for another is an error."""
    if checkpoint != "best":
        raise TextgenError(f"an export holds one checkpoint; leave out {setting('checkpoint')}")


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


def _source_scorer(source, checkpoint: str, litert=None, saved_model=None):
    """`(scorer, vocab, train config)` of a described source (`sources.describe_source`);
    with `litert` or `saved_model`, of that export of it, which must match its vocabulary
    and size. The train config is None where the source does not record it."""
    from lstm_textgen.sources import load_source, source_configs

    scorer = _exported_scorer(litert, saved_model)
    if scorer is None:
        trained = load_source(source, checkpoint)
        return KerasScorer(trained.model), trained.vocab, trained.train_config
    _one_checkpoint(checkpoint)
    model_config, train_config, vocab = source_configs(source)
    shape = ("embedding_dim", "units", "num_layers")
    if scorer.vocab != vocab or any(
        scorer.config[name] != getattr(model_config, name) for name in shape
    ):
        raise TextgenError(
            f"{litert or saved_model} was not exported from {source.path}: its vocabulary "
            "or model size differs"
        )
    return scorer, vocab, train_config


def _run_ids(run_dir: str, train_config, vocab: CharVocabulary, split: str, workdir: str):
    """The ids of split `split` of a text-file run, as encoded for training (RUN/data)."""
    if split not in ("train", "validation"):
        raise TextgenError(
            f"a run on text files has no {split} split (your own text is split into train "
            f"and validation only); evaluate on a file with {setting('text_files')}"
        )
    path = os.path.join(run_dir, rundir.DATA_DIR, f"{split}.ids")
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
    `lstm_textgen.sources`; default: the shipped model). `seq_len` is the window length
    (default: the run's training windows; nanoGPT's tiny Shakespeare figures use 256).
    With `litert`, the model scored is that LiteRT export of the run (`export --litert`),
    run by LiteRT's interpreter, on the same text; with `saved_model`, that SavedModel
    export of it, run by its `step` signature (`SavedModelScorer`).

    `split` is train, validation, test or validation+test (the two joined, in order:
    for tiny_shakespeare, the last 10% of the text). A run trained on text files is
    evaluated on the ids training wrote to `RUN/data`, read from disk a batch at a time,
    so the split is the one it trained with even if the files changed since.
    """
    from lstm_textgen.shipped import DEFAULT_MODEL
    from lstm_textgen.sources import describe_source

    source = describe_source(run_dir or DEFAULT_MODEL)
    scorer, vocab, train_config = _source_scorer(source, checkpoint, litert, saved_model)
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
