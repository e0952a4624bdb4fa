"""Open a model `Source` (`store.sources`) as the one generation interface
(`Generator`) or the one scoring interface (`Scorer`), whichever backend runs it.

Each backend module is imported only when it is asked for: a TF Serving client and a
LiteRT runner never import TensorFlow.
"""

from __future__ import annotations

import os

from lstm_textgen.errors import TextgenError, setting
from lstm_textgen.generation.generator import Generator
from lstm_textgen.generation.settings import SERVER_DEADLINE
from lstm_textgen.store.shipped import DEFAULT_MODEL, litert_installed, shipped_model
from lstm_textgen.store.sources import (
    Source,
    check_one_checkpoint,
    describe_source,
    load_source,
    parse_source,
    source_configs,
)


def open_generator(
    run: str | None = None,
    saved_model: str | None = None,
    server: str | None = None,
    litert: str | None = None,
    checkpoint: str = "best",
    model_name: str | None = None,
    deadline: float = SERVER_DEADLINE,
) -> Generator:
    """The `Generator` of one source, or of the shipped model when none is given.

    Args:
        run: a training run directory (its `checkpoint`, best or last).
        saved_model: an export (`saved_models/NAME`, or one version folder).
        server: a TF Serving REST endpoint, with `model_name` (and optionally
            `deadline`, the seconds a whole request may take).
        litert: a LiteRT model file (`export --litert`).

    With none of the four, the shipped model (`lstm_textgen.store.shipped`): its LiteRT file
    where LiteRT's interpreter is installed (no TensorFlow: it answers in a fraction of
    a second), its SavedModel otherwise; both give the same text.

    Example:

    >>> generator = open_generator()  # the shipped model
    >>> generator.complete(GenerationRequest("ROMEO:", num_chars=80, stop=["\\n\\n"]))
    """
    source = parse_source(
        checkpoint, model_name, run=run, saved_model=saved_model, server=server, litert=litert
    )
    return generator_for(source, deadline)


def generator_for(source: Source, deadline: float = SERVER_DEADLINE) -> Generator:
    """The `Generator` that runs `source` as it lies (a shipped model: `open_shipped_generator`)."""
    if source.shipped:
        return open_shipped_generator(source.shipped)
    if source.kind == "run":
        from lstm_textgen.generation.backends.keras import TextGenerator
        from lstm_textgen.store.loading import load_trained_model

        return TextGenerator(*load_trained_model(source.path, source.checkpoint))
    if source.kind in ("saved_model", "export"):
        from lstm_textgen.generation.backends.saved_model import SavedModelGenerator

        return SavedModelGenerator(source.path)
    if source.kind == "server":
        from lstm_textgen.generation.backends.server import ServerGenerator

        return ServerGenerator(source.path, source.model_name, deadline)
    from lstm_textgen.generation.backends.litert import LiteRTModel

    return LiteRTModel(source.path)


def open_shipped_generator(name: str = DEFAULT_MODEL) -> Generator:
    """The shipped model `name` as a `Generator`: LiteRT when installed, else SavedModel."""
    shipped = shipped_model(name)
    if litert_installed() and os.path.isfile(shipped.litert):
        from lstm_textgen.generation.backends.litert import LiteRTModel

        return LiteRTModel(shipped.litert)
    from lstm_textgen.generation.backends.saved_model import SavedModelGenerator

    return SavedModelGenerator(shipped.saved_model)


def exported_source(litert: str | None, saved_model: str | None) -> Source | None:
    """The export to score as exported (a LiteRT file or a SavedModel's signatures), or
    None for neither."""
    if litert and saved_model:
        raise TextgenError(f"give {setting('litert')} or {setting('saved_model')}, not both")
    return parse_source(litert=litert, saved_model=saved_model) if litert or saved_model else None


def open_scorer(
    source: str | None = None,
    checkpoint: str = "best",
    litert: str | None = None,
    saved_model: str | None = None,
):
    """`(scorer, vocab)` of a run, an export or a shipped model (`describe_source`;
    default: the shipped model) rebuilt in Keras; or of a LiteRT file, or of an export run
    by its signatures (`saved_model`)."""
    exported = exported_source(litert, saved_model)
    if exported is not None:
        if source:
            flag = setting("litert" if litert else "saved_model")
            raise TextgenError(f"give {setting('run')} or {flag}, not both")
        check_one_checkpoint(checkpoint)
        scorer, vocab, _ = scorer_for(exported)
    else:
        scorer, vocab, _ = scorer_for(describe_source(source, checkpoint))
    return scorer, vocab


def scorer_for(source: Source, reference: Source | None = None):
    """`(scorer, vocab, train config)` of `source`: an exported one (LiteRT, signatures) as
    it lies, any other rebuilt in Keras. With `reference` (a run or an export that
    `source` was exported from), its vocabulary and size must match, and the train config
    is the reference's. The train config is None where nothing records it."""
    if source.kind == "litert":
        from lstm_textgen.generation.backends.litert import LiteRTModel

        scorer = LiteRTModel(source.path)
    elif source.kind == "saved_model":
        from lstm_textgen.generation.backends.saved_model import SavedModelScorer

        scorer = SavedModelScorer(source.path)
    else:
        from lstm_textgen.generation.backends.keras_scorer import KerasScorer

        trained = load_source(source)
        return KerasScorer(trained.model), trained.vocab, trained.train_config
    if reference is None:
        return scorer, scorer.vocab, None
    check_one_checkpoint(reference.checkpoint)
    model_config, train_config, vocab = source_configs(reference)
    shape = ("embedding_dim", "units", "num_layers")
    if scorer.vocab != vocab or any(
        getattr(scorer.config, name) != getattr(model_config, name) for name in shape
    ):
        raise TextgenError(
            f"{source.path} was not exported from {reference.path}: its vocabulary "
            "or model size differs"
        )
    return scorer, vocab, train_config
