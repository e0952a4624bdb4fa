"""Opening a model as a `Scorer`, and scoring a text character by character.

Nothing here imports TensorFlow: a LiteRT file is opened and scored without it; a run,
an export rebuilt in Keras or a SavedModel's signatures load TensorFlow when opened.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lstm_textgen.data.vocab import UNKNOWN_ID, CharVocabulary
from lstm_textgen.errors import TextgenError, setting
from lstm_textgen.generation.scoring import PIECE_CHARS, Scorer


@dataclass(frozen=True)
class ScoredChar:
    """One character of a scored text and its log-probability in nats (None for a
    character outside the vocabulary, which is skipped: the state does not read it)."""

    char: str
    logprob: float | None


def score_text(scorer: Scorer, vocab: CharVocabulary, text: str, piece: int = PIECE_CHARS):
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
    exported = exported_scorer(litert, saved_model)
    if exported is not None:
        if source:
            flag = setting("litert" if litert else "saved_model")
            raise TextgenError(f"give {setting('run')} or {flag}, not both")
        one_checkpoint(checkpoint)
        return exported, exported.vocab
    from lstm_textgen.store.shipped import DEFAULT_MODEL
    from lstm_textgen.store.sources import describe_source

    scorer, vocab, _ = source_scorer(describe_source(source or DEFAULT_MODEL), checkpoint)
    return scorer, vocab


def exported_scorer(litert: str | None, saved_model: str | None) -> Scorer | None:
    """The scorer of a LiteRT file or of a SavedModel's signatures; None for neither."""
    if litert and saved_model:
        raise TextgenError(f"give {setting('litert')} or {setting('saved_model')}, not both")
    if litert:
        from lstm_textgen.generation.backends.litert import LiteRTModel

        return LiteRTModel(litert)
    if saved_model:
        from lstm_textgen.generation.backends.saved_model import SavedModelScorer

        return SavedModelScorer(saved_model)
    return None


def one_checkpoint(checkpoint: str) -> None:
    """An export holds one checkpoint: asking for another is an error."""
    if checkpoint != "best":
        raise TextgenError(f"an export holds one checkpoint; leave out {setting('checkpoint')}")


def source_scorer(source, checkpoint: str, litert=None, saved_model=None):
    """`(scorer, vocab, train config)` of a described source (`sources.describe_source`);
    with `litert` or `saved_model`, of that export of it, which must match its vocabulary
    and size. The train config is None where the source does not record it."""
    from lstm_textgen.store.sources import load_source, source_configs

    scorer = exported_scorer(litert, saved_model)
    if scorer is None:
        from lstm_textgen.generation.backends.keras_scorer import KerasScorer

        trained = load_source(source, checkpoint)
        return KerasScorer(trained.model), trained.vocab, trained.train_config
    one_checkpoint(checkpoint)
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
