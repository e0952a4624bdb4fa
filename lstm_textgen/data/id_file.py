"""A text as ids on disk: the user's text files encoded piece by piece into
`train.ids` and `validation.ids` (`encode_text_files`), and `IdFile`, which reads the
windows of one batch at a time, so training memory does not grow with the corpus."""

from __future__ import annotations

import os

import numpy as np

from lstm_textgen.data.corpus import VALIDATION_FRACTION, iter_text_files
from lstm_textgen.data.vocab import CharVocabulary
from lstm_textgen.errors import TextgenError
from lstm_textgen.files import atomic_path


def encode_text(text: str, vocab: CharVocabulary) -> np.ndarray:
    return np.asarray(vocab.encode(text), dtype=np.int32)


def _id_dtype(vocab: CharVocabulary):
    return np.uint8 if vocab.size <= 2**8 else np.uint16 if vocab.size <= 2**16 else np.uint32


def _encode_piece(piece: str, table, dtype) -> np.ndarray:
    """`vocab.encode` for a long string, vectorized: ids of its characters (0 if unknown).
    `table` is `vocab.codepoint_table()`."""
    codepoints, ids = table
    cps = np.frombuffer(piece.encode("utf-32-le"), dtype=np.uint32)
    position = np.minimum(np.searchsorted(codepoints, cps), len(codepoints) - 1)
    found = codepoints[position] == cps
    return np.where(found, ids[position], 0).astype(dtype)


class IdFile:
    """The ids of a text, stored on disk and read window by window.

    Training on a large corpus reads only the windows of the current batch, through a
    `numpy.memmap` of the file opened for that batch and closed after it: memory does not
    grow with the corpus, and the text is never held as a Python string or an array of
    ids.
    """

    def __init__(self, path: str, dtype, length: int):
        self.path = path
        self.dtype = np.dtype(dtype)
        self.length = int(length)

    @classmethod
    def of_vocabulary(cls, path: str, vocab: CharVocabulary) -> IdFile:
        """The ids file at `path`, written by `encode_text_files` with `vocab`."""
        dtype = np.dtype(_id_dtype(vocab))
        return cls(path, dtype, os.path.getsize(path) // dtype.itemsize)

    def __len__(self) -> int:
        return self.length

    def read(self, start: int, count: int) -> np.ndarray:
        """Ids `start : start + count`."""
        return self.read_windows(np.array([start]), count)[0]

    def read_windows(self, starts: np.ndarray, width: int) -> np.ndarray:
        """`[len(starts), width]` ids, row k holding ids `starts[k] : starts[k] + width`."""
        positions = np.asarray(starts, np.int64)[:, None] + np.arange(width)
        if positions.size and (positions.min() < 0 or positions.max() >= self.length):
            raise IndexError(f"{self.path} holds {self.length} ids; a window reads past them")
        if not positions.size:
            return np.empty(positions.shape, self.dtype)
        ids = np.memmap(self.path, dtype=self.dtype, mode="r", shape=(self.length,))
        # Fancy indexing copies; the map closes when `ids` goes, at the return.
        return np.array(ids[positions])


ID_FILES = ("train.ids", "validation.ids")


def encode_text_files(
    patterns,
    out_dir: str,
    vocab: CharVocabulary | None = None,
    base_vocab: CharVocabulary | None = None,
) -> tuple[CharVocabulary, IdFile, IdFile]:
    """Split the user's text files 95 / 5 into train and validation ids on disk.

    The same split and ids as `corpus_from_text_files` and `vocab.encode`, but streamed:
    the files are read three times in pieces (count the characters, collect the training
    vocabulary unless `vocab` is given, write the ids to `out_dir/{train,validation}.ids`),
    so a corpus of any size needs memory for one piece only. With `base_vocab` (a
    fine-tune's source), the vocabulary is `base_vocab` extended by the training text's
    new characters.
    """
    total = sum(len(piece) for piece in iter_text_files(patterns))
    cut = int(total * (1.0 - VALIDATION_FRACTION))
    if vocab is None:
        characters, seen = set(), 0
        for piece in iter_text_files(patterns):
            characters.update(piece[: cut - seen])
            seen += len(piece)
            if seen >= cut:
                break
        vocab = base_vocab.extended(characters) if base_vocab else CharVocabulary(characters)
    table = vocab.codepoint_table()
    dtype = _id_dtype(vocab)
    os.makedirs(out_dir, exist_ok=True)
    paths = [os.path.join(out_dir, name) for name in ID_FILES]
    try:
        with atomic_path(paths[0]) as train_tmp, atomic_path(paths[1]) as val_tmp:
            with open(train_tmp, "wb") as train_file, open(val_tmp, "wb") as val_file:
                written = 0
                for piece in iter_text_files(patterns):
                    ids = _encode_piece(piece, table, dtype)
                    head = max(0, min(len(ids), cut - written))
                    train_file.write(ids[:head].tobytes())
                    val_file.write(ids[head:].tobytes())
                    written += len(ids)
    except OSError as e:
        raise TextgenError(
            f"cannot write the encoded corpus to {out_dir}: {e.strerror or e}"
        ) from None
    return vocab, IdFile(paths[0], dtype, cut), IdFile(paths[1], dtype, total - cut)
