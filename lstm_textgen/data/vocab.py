"""`CharVocabulary`: characters <-> integer ids, in Python and in the TensorFlow graph."""

from __future__ import annotations

import json
import os

from lstm_textgen.errors import TextgenError
from lstm_textgen.files import atomic_write_text

VOCAB_FILE = "vocab.json"
UNKNOWN_ID = 0
# The character that ends every item of a corpus read as items (`train --items`): U+0003,
# END OF TEXT, which no ordinary text holds.
END_OF_ITEM = "\u0003"


class CharVocabulary:
    """The characters of a training text, each with an id.

    Id 0 is reserved for characters outside the vocabulary. Training text never contains
    it, and generation never samples it. Ids 1..N are the characters, sorted (or, for a
    vocabulary extended for fine-tuning, the source's characters first, then the new ones;
    see `extended`), so
    `size == len(vocab) == len(vocab.characters) + 1`: the length of a vocabulary is its
    number of ids (the model's output width), as for other tokenizers, not its number of
    characters. Vocabularies with the same characters are equal and hash alike.
    "Character" means a Unicode code point, both in Python (iterating a `str`) and in the
    graph (`tf.strings.unicode_split(..., "UTF-8")`), so the two always agree.

    A vocabulary of items (`train --items`) also holds `END_OF_ITEM`, whose id
    (`end_id`) follows every training item; generation ends a row when it picks it.

    Args:
        characters: the distinct characters; sorted unless `keep_order`.
        end_of_item: `END_OF_ITEM` for a vocabulary of items (added to the characters),
            None otherwise.
        keep_order: keep `characters` in the order given (ids 1..N), as a saved
            vocabulary lists them; a missing `end_of_item` is added last.

    Example:

    >>> vocab = CharVocabulary.from_text("hello")
    >>> vocab.characters
    ['e', 'h', 'l', 'o']
    >>> vocab.encode("hole")
    [2, 4, 3, 1]
    """

    def __init__(self, characters, end_of_item: str | None = None, *, keep_order: bool = False):
        if keep_order:
            chars = list(dict.fromkeys(characters))
            if end_of_item and end_of_item not in chars:
                chars.append(end_of_item)
        else:
            chars = sorted(set(characters) | ({end_of_item} if end_of_item else set()))
        bad = [c for c in chars if len(c) != 1]
        if bad:
            raise ValueError(f"vocabulary entries must be single characters, got {bad[:3]}")
        if not chars:
            raise TextgenError("the training text is empty: the vocabulary has no characters")
        self.characters = chars
        self.end_of_item = end_of_item
        self._ids = {c: i + 1 for i, c in enumerate(chars)}

    @property
    def end_id(self) -> int | None:
        """The id of the end-of-item marker, or None for a vocabulary of plain text."""
        return self._ids[self.end_of_item] if self.end_of_item else None

    @classmethod
    def from_text(cls, text: str) -> CharVocabulary:
        return cls(set(text))

    def extended(self, characters, end_of_item: str | None = None) -> CharVocabulary:
        """This vocabulary with `characters` it lacks added after its own (sorted among
        themselves), and `end_of_item` if it has none: every id keeps its character, so a
        model trained on this vocabulary keeps the meaning of its rows (fine-tuning)."""
        new = sorted(set(characters) - set(self.characters))
        end = self.end_of_item or end_of_item
        if end and end not in self.characters:
            new = [c for c in new if c != end] + [end]
        return CharVocabulary(self.characters + new, end, keep_order=True)

    def codepoint_table(self):
        """`(code points, ids)`: the characters' code points sorted, with the id of each,
        as NumPy arrays: binary search finds a character's id whatever the id order."""
        import numpy as np

        codepoints = np.array([ord(c) for c in self.characters], dtype=np.uint32)
        order = np.argsort(codepoints, kind="stable")
        return codepoints[order], (order + 1).astype(np.int32)

    @property
    def size(self) -> int:
        """Number of ids, the unknown id included: the model's output width."""
        return len(self.characters) + 1

    def __len__(self) -> int:
        """The number of ids, the unknown id included (`size`)."""
        return self.size

    def __contains__(self, char: str) -> bool:
        return char in self._ids

    def encode(self, text: str) -> list[int]:
        """Ids of `text`'s characters; characters outside the vocabulary get id 0."""
        return [self._ids.get(c, UNKNOWN_ID) for c in text]

    def decode(self, ids) -> str:
        """Text of `ids`; the unknown id and out-of-range ids decode to nothing."""
        n = len(self.characters)
        return "".join(self.characters[i - 1] for i in ids if 1 <= int(i) <= n)

    def unknown_characters(self, text: str) -> list[str]:
        """The distinct characters of `text` that are not in the vocabulary, in order."""
        seen = []
        for c in text:
            if c not in self._ids and c not in seen:
                seen.append(c)
        return seen

    # In-graph lookups, for tf.data and exported signatures. They use constants only (no
    # lookup-table resource), so an export needs nothing restored besides its variables.
    def tf_encode(self, text):
        """Ids of a string tensor's characters (ragged `[B, None]` for a batch of strings).

        Invalid UTF-8 decodes to U+FFFD, which, like any unseen character, gets id 0.
        """
        import tensorflow as tf

        return self.tf_encode_codepoints(tf.strings.unicode_decode(text, "UTF-8"))

    def tf_encode_codepoints(self, codepoints):
        """Ids of Unicode code points (a tensor or ragged tensor of int32)."""
        import tensorflow as tf

        return tf.ragged.map_flat_values(self._ids_of_codepoints, codepoints)

    def _ids_of_codepoints(self, codepoints):
        import tensorflow as tf

        # Binary search over the sorted code points, then their ids.
        sorted_codepoints, ids = self.codepoint_table()
        table = tf.constant(sorted_codepoints.astype("int32"), dtype=tf.int32)
        position = tf.minimum(tf.searchsorted(table, codepoints), len(self.characters) - 1)
        found = tf.equal(tf.gather(table, position), codepoints)
        return tf.where(found, tf.gather(tf.constant(ids), position), UNKNOWN_ID)

    def tf_decode(self, ids):
        """String tensor of the characters of int ids `[..., T]`, joined on the last axis."""
        import tensorflow as tf

        table = tf.constant([""] + self.characters, dtype=tf.string)
        ids = tf.where((ids > 0) & (ids < self.size), ids, tf.zeros_like(ids))
        return tf.strings.reduce_join(tf.gather(table, ids), axis=-1)

    # Persistence: a JSON list of characters, written beside the model.
    def save(self, directory: str) -> str:
        path = os.path.join(directory, VOCAB_FILE)
        payload = {"unknown_id": UNKNOWN_ID, "characters": self.characters}
        if self.end_of_item:
            payload["end_of_item"] = self.end_of_item
        atomic_write_text(path, json.dumps(payload, ensure_ascii=False, indent=0) + "\n")
        return path

    @classmethod
    def load(cls, directory: str) -> CharVocabulary:
        path = os.path.join(directory, VOCAB_FILE)
        if not os.path.isfile(path):
            raise TextgenError(
                f"{directory} holds no {VOCAB_FILE}; it is not a complete training run"
            )
        try:
            with open(path, encoding="utf-8") as f:
                payload = json.load(f)
            return cls(payload["characters"], payload.get("end_of_item"), keep_order=True)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise TextgenError(f"{path} is not a valid vocabulary file ({e})") from e

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, CharVocabulary)
            and self.characters == other.characters
            and self.end_of_item == other.end_of_item
        )

    def __hash__(self) -> int:
        return hash((tuple(self.characters), self.end_of_item))

    def __repr__(self) -> str:
        return f"CharVocabulary({len(self.characters)} characters)"
