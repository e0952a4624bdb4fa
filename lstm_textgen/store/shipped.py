"""Where the trained model that ships with lstm-textgen lies. No TensorFlow.

The repository's `saved_models/shakespeare/` holds the `--preset shakespeare` model as a
versioned SavedModel (`1/`) and a LiteRT file, with its model card (README.md). An
editable install (`pip install -e .`) reads it from the checkout; a plain `pip install .`
carries it inside the package (`lstm_textgen/saved_models/`, see pyproject.toml).
`$LSTM_TEXTGEN_SAVED_MODELS` names another folder of shipped models.

Example:

>>> from lstm_textgen.store.shipped import shipped_model
>>> shipped_model().saved_model   # the folder of its SavedModel versions
'.../saved_models/shakespeare'
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from lstm_textgen.errors import TextgenError

DEFAULT_MODEL = "shakespeare"
FOLDER_ENV = "LSTM_TEXTGEN_SAVED_MODELS"
LITERT_FILE = "model.tflite"  # float32 weights: the same text as the SavedModel
LITERT_INT8_FILE = "model-int8.tflite"  # int8 weights: smaller, its text drifts
CARD_FILE = "README.md"
_PACKAGE = Path(__file__).resolve().parents[1]  # lstm_textgen/


@dataclass(frozen=True)
class ShippedModel:
    """One shipped model's files.

    Attributes:
        name: its name (the folder under `saved_models/`).
        folder: the folder holding all its files.
    """

    name: str
    folder: str

    @property
    def saved_model(self) -> str:
        """The folder of its numbered SavedModel versions (what TF Serving watches)."""
        return self.folder

    @property
    def litert(self) -> str:
        """Its LiteRT file with float32 weights."""
        return os.path.join(self.folder, LITERT_FILE)

    @property
    def card(self) -> str:
        return os.path.join(self.folder, CARD_FILE)


def _search_path() -> list[Path]:
    folders = []
    if os.environ.get(FOLDER_ENV):
        folders.append(Path(os.environ[FOLDER_ENV]))
    # Inside the installed package (pip install .), then the checkout (pip install -e .).
    folders += [_PACKAGE / "saved_models", _PACKAGE.parent / "saved_models"]
    return folders


def shipped_model(name: str = DEFAULT_MODEL) -> ShippedModel:
    """The shipped model `name`, or a one-line error if this installation lacks it."""
    for folder in _search_path():
        candidate = folder / name
        if (candidate / "1" / "saved_model.pb").is_file():
            return ShippedModel(name, str(candidate))
    looked = ", ".join(str(f) for f in _search_path())
    raise TextgenError(
        f"the shipped model {name!r} is not installed (looked in {looked}); reinstall "
        "lstm-textgen from its repository, or set "
        f"{FOLDER_ENV} to the folder holding {name}/"
    )


def is_shipped_name(name: str) -> bool:
    """Whether `name` names a shipped model of this installation."""
    try:
        shipped_model(name)
    except TextgenError:
        return False
    return True


def litert_installed() -> bool:
    """Whether LiteRT's interpreter (`ai-edge-litert`) can be imported, without importing it."""
    return importlib.util.find_spec("ai_edge_litert") is not None
