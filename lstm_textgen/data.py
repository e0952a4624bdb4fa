"""Corpora (tfds or the user's text files) and the tf.data pipelines that feed training."""

from __future__ import annotations

import codecs
import glob
import logging
import os
import re
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from lstm_textgen.config import ITEM_KINDS
from lstm_textgen.errors import TextgenError, first_line, setting
from lstm_textgen.files import atomic_path
from lstm_textgen.vocab import END_OF_ITEM, CharVocabulary

MANUAL_DIR_ENV = "LSTM_TEXTGEN_TFDS_MANUAL_DIR"
log = logging.getLogger("lstm_textgen")
VALIDATION_FRACTION = 0.05
CHUNK_BYTES = 1 << 22  # text files are read and encoded 4 MiB at a time


@dataclass
class Corpus:
    """The three splits of a corpus as text; `test` is None for the user's own files."""

    name: str
    train: str
    validation: str
    test: str | None = None

    def split(self, name: str) -> str:
        text = {"train": self.train, "validation": self.validation, "test": self.test}.get(name)
        if text is None:
            if name == "test":
                raise TextgenError(
                    f"corpus {self.name} has no test split (your own text is split into "
                    f"train and validation only); evaluate on a file with {setting('text_files')}"
                )
            raise TextgenError(
                f"unknown split {name!r}; use train, validation, test or validation+test"
            )
        return text


def expand_text_files(patterns) -> list[str]:
    """Paths named by `patterns` (paths or globs), in order, each once."""
    paths = []
    for pattern in patterns:
        if glob.has_magic(pattern):
            matches = sorted(glob.glob(os.path.expanduser(pattern), recursive=True))
            matches = [m for m in matches if os.path.isfile(m)]
            if not matches:
                raise TextgenError(f"{setting('text_files')} pattern {pattern!r} matches no file")
        else:
            path = os.path.expanduser(pattern)
            if not os.path.exists(path):
                raise TextgenError(f"text file {pattern} does not exist")
            if not os.path.isfile(path):
                raise TextgenError(f"text file {pattern} is not a regular file")
            matches = [path]
        paths.extend(m for m in matches if m not in paths)
    return paths


def _not_utf8(path: str, byte: int, offset: int, sample: bytes = b"") -> TextgenError:
    # A zero byte among the first 8 KB marks a binary file, as git tells them apart.
    if b"\x00" in sample[:8192]:
        return TextgenError(
            f"{path} is a binary file, not text (a zero byte by offset {offset}); "
            "give a UTF-8 text file"
        )
    return TextgenError(
        f"{path} is not UTF-8 text (byte 0x{byte:02x} at offset {offset}); "
        "convert it first, e.g. `iconv -f latin1 -t utf-8 in.txt > out.txt`"
    )


def read_text_file(path: str) -> str:
    """The UTF-8 text of `path` (a leading byte-order mark is dropped)."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise _not_utf8(path, data[e.start], e.start, data) from None
    if "\x00" in text:
        raise _not_utf8(path, 0, text.index("\x00"), b"\x00")
    if not text:
        raise TextgenError(f"{path} is empty; give a file with some text in it")
    return text


def iter_text_files(patterns, chunk_bytes: int | None = None):
    """The text of all files named by `patterns`, in pieces of about `chunk_bytes`.

    Each file ends with a newline (one is added where missing) and loses a leading
    byte-order mark, as in `read_text_files`, but no more than one piece is in memory.
    """
    if not patterns:
        raise TextgenError("no text file given")
    chunk_bytes = chunk_bytes or CHUNK_BYTES
    for path in expand_text_files(patterns):
        decoder = codecs.getincrementaldecoder("utf-8-sig")()
        offset, last = 0, ""
        with open(path, "rb") as f:
            while True:
                raw = f.read(chunk_bytes)
                pending = len(decoder.getstate()[0])
                try:
                    piece = decoder.decode(raw, final=not raw)
                except UnicodeDecodeError as e:
                    where = offset - pending + e.start
                    raise _not_utf8(path, e.object[e.start], where, raw) from None
                if "\x00" in piece:
                    raise _not_utf8(path, 0, offset + piece.index("\x00"), b"\x00")
                offset += len(raw)
                if piece:
                    last = piece[-1]
                    yield piece
                if not raw:
                    break
        if not last:
            raise TextgenError(f"{path} is empty; give a file with some text in it")
        if last != "\n":
            yield "\n"


def read_text_files(patterns) -> str:
    """All files named by `patterns` concatenated, each ending with a newline."""
    return "".join(iter_text_files(patterns))


def corpus_from_text_files(patterns) -> Corpus:
    """The user's text: the first 95% trains, the last 5% validates."""
    text = read_text_files(patterns)
    cut = int(len(text) * (1.0 - VALIDATION_FRACTION))
    return Corpus(name="text files", train=text[:cut], validation=text[cut:])


def resolve_manual_dir(manual_dir: str | None) -> str | None:
    """The manual download folder to give tfds, or None to let tfds download.

    A folder that does not exist is reported and skipped, so the same command works on
    an offline machine that has the files and on an online one that does not.
    """
    manual_dir = manual_dir or os.environ.get(MANUAL_DIR_ENV) or None
    if manual_dir is not None and not os.path.isdir(manual_dir):
        log.warning(
            "tfds manual dir %s does not exist; tfds will try to download the dataset",
            manual_dir,
        )
        return None
    return manual_dir


def corpus_from_tfds(
    name: str = "tiny_shakespeare", manual_dir: str | None = None, data_dir: str | None = None
) -> Corpus:
    """Load a text dataset from tensorflow-datasets, building it offline from `manual_dir`.

    tiny_shakespeare's manual dir is a folder holding karpathy's `input.txt`.
    """
    import tensorflow_datasets as tfds

    tfds.disable_progress_bar()
    manual_dir = resolve_manual_dir(manual_dir)
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as e:  # tfds raises several types for an unknown name
        raise TextgenError(f"tfds has no dataset {name!r} ({e})") from None
    download_config = tfds.download.DownloadConfig(manual_dir=manual_dir)
    try:
        builder.download_and_prepare(download_config=download_config)
    except Exception as e:
        hint = (
            f"check that {manual_dir} holds the dataset's files"
            if manual_dir
            else f"offline? pass {setting('manual_dir', 'DIR')} (or set ${MANUAL_DIR_ENV}) with "
            f"the downloaded files, or train on {setting('text_files')}"
        )
        raise TextgenError(
            f"could not prepare tfds dataset {name}: {first_line(e)}; {hint}"
        ) from None

    splits = {}
    for split in ("train", "validation", "test"):
        if split not in builder.info.splits:
            continue
        texts = []
        for example in builder.as_dataset(split=split):
            if "text" not in example:
                raise TextgenError(f"tfds dataset {name} has no 'text' feature")
            texts.append(example["text"].numpy().decode("utf-8"))
        splits[split] = "".join(texts)
    if "train" not in splits or "validation" not in splits:
        raise TextgenError(f"tfds dataset {name} needs train and validation splits")
    return Corpus(
        name=name,
        train=splits["train"],
        validation=splits["validation"],
        test=splits.get("test"),
    )


def load_corpus(text_files=(), tfds_name="tiny_shakespeare", manual_dir=None) -> Corpus:
    if text_files:
        return corpus_from_text_files(text_files)
    return corpus_from_tfds(tfds_name, manual_dir=manual_dir)


def split_items(text: str, kind: str) -> list[str]:
    """The items of a text: its non-blank lines, or its paragraphs (separated by blank
    lines; a paragraph keeps its inner newlines)."""
    if kind == "lines":
        items = [line.rstrip("\r") for line in text.split("\n")]
    elif kind == "paragraphs":
        items = [p.strip("\r\n") for p in re.split(r"\n(?:[ \t\r]*\n)+", text)]
    else:
        raise TextgenError(
            f"{setting('items')} must be one of {', '.join(ITEM_KINDS)}, got {kind!r}"
        )
    return [item for item in items if item.strip()]


def items_stream(items) -> str:
    """Items as one training text: each follows an end-of-item marker and ends with one,
    so the model learns to start an item after the marker and to end it with the marker."""
    return END_OF_ITEM + "".join(item + END_OF_ITEM for item in items)


def items_corpus(text_files=(), tfds_name="tiny_shakespeare", manual_dir=None, kind="lines"):
    """`(Corpus, training items)` of a corpus read as items: each split an `items_stream`.

    The user's files are split by items, the last 5% of them validating (at least one);
    a tfds corpus keeps its splits. The training items are returned too, to tell new
    items from copies.
    """
    source = load_corpus(text_files, tfds_name, manual_dir)
    for text in (source.train, source.validation, source.test or ""):
        if END_OF_ITEM in text:
            raise TextgenError(
                "the corpus holds U+0003, the end-of-item marker of "
                f"{setting('items')}; remove it first"
            )
    if text_files:
        items = split_items(source.train + source.validation, kind)
        if len(items) < 2:
            raise TextgenError(
                f"{setting('items', kind)} found {len(items)} item(s); give at least 2 "
                "(one trains, one validates)"
            )
        cut = min(int(len(items) * (1.0 - VALIDATION_FRACTION)), len(items) - 1)
        train, validation, test = items[:cut], items[cut:], None
    else:
        train, validation = split_items(source.train, kind), split_items(source.validation, kind)
        test = split_items(source.test, kind) if source.test else None
    corpus = Corpus(
        name=f"{source.name} ({kind} as items)",
        train=items_stream(train),
        validation=items_stream(validation),
        test=items_stream(test) if test else None,
    )
    return corpus, train


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

    Training on a large corpus reads only the windows of the current batch (`os.pread`),
    so memory does not grow with the corpus: the text is never held as a Python string
    or as an array of ids.
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
        size = self.dtype.itemsize
        out = np.empty((len(starts), width), dtype=self.dtype)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for row, start in enumerate(starts):
                out[row] = np.frombuffer(os.pread(fd, width * size, int(start) * size), self.dtype)
        finally:
            os.close(fd)
        return out


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


def count_windows(num_chars: int, seq_len: int) -> int:
    """How many (input, target) windows of `seq_len` fit in `num_chars` characters."""
    return max(0, (num_chars - 1) // seq_len)


def check_length(text, seq_len: int, what: str) -> None:
    """Fail clearly when `text` (a string or ids) holds not even one training window."""
    if count_windows(len(text), seq_len) < 1:
        raise TextgenError(
            f"the {what} text has {len(text)} characters, fewer than seq_len + 1 = "
            f"{seq_len + 1}; use a smaller {setting('seq_len')} or more text"
        )


def _window_reader(ids, seq_len: int, batch_size: int | None = None):
    """A function from window numbers `[n]` to (inputs, targets), each int32 `[n, seq_len]`.

    `batch_size`, when every batch has it, is set as the static shape (XLA needs it).

    Window k holds ids `k * seq_len : k * seq_len + seq_len + 1`, so windows overlap by
    one character and every character but the first is a target exactly once per pass.
    """
    width = seq_len + 1
    offsets = tf.range(width, dtype=tf.int64)
    if isinstance(ids, IdFile):

        def read(windows):
            block = tf.numpy_function(
                lambda w: ids.read_windows(w * seq_len, width), [windows], tf.as_dtype(ids.dtype)
            )
            block.set_shape([batch_size, width])
            return tf.cast(block, tf.int32)

    else:
        constant = tf.constant(
            np.asarray(ids[: count_windows(len(ids), seq_len) * seq_len + 1]), tf.int32
        )

        def read(windows):
            return tf.gather(constant, windows[:, None] * seq_len + offsets)

    def inputs_and_targets(windows):
        block = read(windows)
        return block[:, :-1], block[:, 1:]

    return inputs_and_targets


def make_dataset(ids, seq_len: int, batch_size: int) -> tf.data.Dataset:
    """(input, target) batches of every window of `ids` in order, for evaluation.

    `ids` is an array of ids or an `IdFile`; the last batch may be smaller.
    """
    check_length(ids, seq_len, "given")
    windows = tf.data.Dataset.range(count_windows(len(ids), seq_len)).batch(batch_size)
    return windows.map(_window_reader(ids, seq_len)).prefetch(tf.data.AUTOTUNE)


def window_order(num_windows: int, seed: int, first_epoch: int = 0) -> tf.data.Dataset:
    """Window numbers, epoch after epoch, each epoch a fresh permutation.

    Epoch e's permutation depends on `(seed, e)` only, so the stream can be restarted at
    any point and continues exactly as an uninterrupted one would.
    """
    seed = int(seed)

    def permutation(epoch):
        return tf.data.Dataset.from_tensor_slices(
            tf.random.experimental.stateless_shuffle(
                tf.range(num_windows, dtype=tf.int64),
                seed=tf.stack([tf.constant(seed, tf.int64), epoch]),
            )
        )

    return tf.data.Dataset.range(first_epoch, 2**62).flat_map(permutation)


def make_train_dataset(
    ids, seq_len: int, batch_size: int, seed: int, start_step: int = 0
) -> tf.data.Dataset:
    """Endless shuffled (input, target) batches, starting with the batch of `start_step`.

    Batch s holds positions `s * batch_size ...` of `window_order`, so a run resumed at
    step s sees exactly the batches an uninterrupted run would (batches may straddle two
    epochs when the window count is not a multiple of the batch size).
    """
    check_length(ids, seq_len, "training")
    num_windows = count_windows(len(ids), seq_len)
    first = start_step * batch_size
    order = window_order(num_windows, seed, first_epoch=first // num_windows)
    order = order.skip(first % num_windows).batch(batch_size, drop_remainder=True)
    dataset = order.map(
        _window_reader(ids, seq_len, batch_size), num_parallel_calls=tf.data.AUTOTUNE
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


def stream_batches(num_chars: int, seq_len: int, batch_size: int) -> int:
    """Batches per pass of `make_stream_dataset`: windows per stream."""
    return count_windows(num_chars, seq_len) // batch_size


def make_stream_dataset(ids, seq_len: int, batch_size: int, start_step: int = 0):
    """Endless (input, target) batches whose row b continues row b of the batch before.

    The text is cut into `batch_size` contiguous streams of n windows each (the windows
    of `_window_reader`, in order; the last windows that do not fill a stream are left
    out). Batch s holds window `s mod n` of every stream, so a carried state
    (`CarriedState`) runs along each stream, and batch s depends on s alone: a resumed
    run sees the batches an uninterrupted one would.
    """
    check_length(ids, seq_len, "training")
    per_stream = stream_batches(len(ids), seq_len, batch_size)
    if per_stream < 1:
        raise TextgenError(
            f"{setting('carry_state')} cuts the training text into "
            f"{setting('batch_size', batch_size)} streams of at least {seq_len + 1} characters, "
            f"but it has {len(ids):,}; use a smaller {setting('batch_size')} or "
            f"{setting('seq_len')}"
        )
    starts = tf.range(batch_size, dtype=tf.int64) * per_stream
    windows = tf.data.Dataset.counter(start_step).map(
        lambda step: starts + tf.math.floormod(step, per_stream)
    )
    dataset = windows.map(_window_reader(ids, seq_len, batch_size))
    return dataset.prefetch(tf.data.AUTOTUNE)
