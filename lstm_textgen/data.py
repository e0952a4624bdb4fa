"""Corpora (tfds or the user's text files) and the tf.data pipelines that feed training."""

from __future__ import annotations

import glob
import logging
import os
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from lstm_textgen.errors import TextgenError
from lstm_textgen.vocab import CharVocabulary

MANUAL_DIR_ENV = "LSTM_TEXTGEN_TFDS_MANUAL_DIR"
log = logging.getLogger("lstm_textgen")
VALIDATION_FRACTION = 0.05


@dataclass
class Corpus:
    """The three splits of a corpus as text; `test` is None for the user's own files."""

    name: str
    train: str
    validation: str
    test: str | None = None

    def split(self, name: str) -> str:
        text = {"train": self.train, "validation": self.validation, "test": self.test}.get(
            name
        )
        if text is None:
            if name == "test":
                raise TextgenError(
                    f"corpus {self.name} has no test split (your own text is split into "
                    "train and validation only); evaluate on a file with --text-file"
                )
            raise TextgenError(f"unknown split {name!r}; use train, validation or test")
        return text


def expand_text_files(patterns) -> list[str]:
    """Paths named by `patterns` (paths or globs), in order, each once."""
    paths = []
    for pattern in patterns:
        if glob.has_magic(pattern):
            matches = sorted(glob.glob(os.path.expanduser(pattern), recursive=True))
            matches = [m for m in matches if os.path.isfile(m)]
            if not matches:
                raise TextgenError(f"--text-file {pattern!r} matches no file")
        else:
            path = os.path.expanduser(pattern)
            if not os.path.exists(path):
                raise TextgenError(f"text file {pattern} does not exist")
            if not os.path.isfile(path):
                raise TextgenError(f"text file {pattern} is not a regular file")
            matches = [path]
        paths.extend(m for m in matches if m not in paths)
    return paths


def read_text_file(path: str) -> str:
    """The UTF-8 text of `path` (a leading byte-order mark is dropped)."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise TextgenError(
            f"{path} is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); "
            "convert it first, e.g. `iconv -f latin1 -t utf-8 in.txt > out.txt`"
        ) from None
    if not text:
        raise TextgenError(f"{path} is empty; give a file with some text in it")
    return text


def read_text_files(patterns) -> str:
    """All files named by `patterns` concatenated, each ending with a newline."""
    if not patterns:
        raise TextgenError("no text file given")
    parts = []
    for path in expand_text_files(patterns):
        text = read_text_file(path)
        parts.append(text if text.endswith("\n") else text + "\n")
    return "".join(parts)


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
            else f"offline? pass --tfds-manual-dir DIR (or set ${MANUAL_DIR_ENV}) with "
            "the downloaded files, or train on --text-file"
        )
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise TextgenError(f"could not prepare tfds dataset {name}: {first_line}; {hint}") from None

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


def encode_text(text: str, vocab: CharVocabulary) -> np.ndarray:
    return np.asarray(vocab.encode(text), dtype=np.int32)


def count_windows(num_chars: int, seq_len: int) -> int:
    """How many (input, target) windows of `seq_len` fit in `num_chars` characters."""
    return max(0, (num_chars - 1) // seq_len)


def check_length(text, seq_len: int, what: str) -> None:
    """Fail clearly when `text` (a string or ids) holds not even one training window."""
    if count_windows(len(text), seq_len) < 1:
        raise TextgenError(
            f"the {what} text has {len(text)} characters, fewer than seq_len + 1 = "
            f"{seq_len + 1}; use a smaller --seq-len or more text"
        )


def make_dataset(
    ids: np.ndarray,
    seq_len: int,
    batch_size: int,
    shuffle: bool = False,
    seed: int | None = None,
    repeat: bool = False,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """(input, target) batches from a sequence of ids.

    The ids are cut into windows of `seq_len + 1` that overlap by one character, so every
    character but the first is a target exactly once per pass; a window's input is its
    first `seq_len` ids and its target the last `seq_len`.
    """
    check_length(ids, seq_len, "given")
    num_windows = count_windows(len(ids), seq_len)
    data = tf.constant(ids[: num_windows * seq_len + 1], dtype=tf.int32)

    def window(start):
        chunk = data[start : start + seq_len + 1]
        return chunk[:-1], chunk[1:]

    starts = tf.data.Dataset.range(num_windows).map(
        lambda i: tf.cast(i, tf.int32) * seq_len
    )
    if shuffle:
        starts = starts.shuffle(num_windows, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        starts = starts.repeat()
    dataset = starts.map(window, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.prefetch(tf.data.AUTOTUNE)
