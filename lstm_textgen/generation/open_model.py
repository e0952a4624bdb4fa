"""Open the one generation interface (`request.Generator`) on any of its four backends.

Each backend module is imported only when it is asked for: a TF Serving client and a
LiteRT runner never import TensorFlow.
"""

from __future__ import annotations

import os

from lstm_textgen.errors import TextgenError, setting
from lstm_textgen.generation.request import Generator
from lstm_textgen.generation.settings import SERVER_DEADLINE
from lstm_textgen.store.shipped import DEFAULT_MODEL, litert_installed, shipped_model


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
    given = {
        name: value
        for name, value in dict(
            run=run, saved_model=saved_model, server=server, litert=litert
        ).items()
        if value
    }
    if len(given) > 1:
        raise TextgenError("give at most one of run, saved_model, server and litert")
    if model_name and not server:
        raise TextgenError("model_name names a model on a TF Serving server; give server too")
    if not given:
        return open_shipped_generator()
    if run:
        from lstm_textgen.generation.backends.keras import TextGenerator
        from lstm_textgen.store.loading import load_trained_model

        return TextGenerator(*load_trained_model(run, checkpoint))
    if saved_model:
        from lstm_textgen.generation.backends.saved_model import SavedModelGenerator

        return SavedModelGenerator(saved_model)
    if server:
        from lstm_textgen.generation.backends.server import ServerGenerator

        return ServerGenerator(server, model_name, deadline)
    from lstm_textgen.generation.backends.litert import LiteRTModel

    return LiteRTModel(litert)


def open_shipped_generator(name: str = DEFAULT_MODEL) -> Generator:
    """The shipped model `name` as a `Generator`: LiteRT when installed, else SavedModel."""
    shipped = shipped_model(name)
    if litert_installed() and os.path.isfile(shipped.litert):
        from lstm_textgen.generation.backends.litert import LiteRTModel

        return LiteRTModel(shipped.litert)
    from lstm_textgen.generation.backends.saved_model import SavedModelGenerator

    return SavedModelGenerator(shipped.saved_model)


def training_items(run_dir: str, manual_dir: str | None = None) -> set[str]:
    """The training items of a run trained with `--items`, to tell new items from copies."""
    from lstm_textgen.data.corpus import items_corpus
    from lstm_textgen.store.run_dir import load_run_config

    _, config = load_run_config(run_dir)
    if not config.items:
        raise TextgenError(
            f"{run_dir} was trained without {setting('items')}; it has no training items"
        )
    _, items = items_corpus(config.text_files, config.tfds_name, manual_dir, config.items)
    return set(items)
