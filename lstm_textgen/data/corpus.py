"""Corpora as text: a tensorflow-datasets dataset or the user's text files (read and
checked as UTF-8, streamed in pieces), split into train, validation and test, optionally
as items (lines or paragraphs, each ended by the end-of-item marker)."""

from __future__ import annotations

import codecs
import glob
import logging
import os
import re
from dataclasses import dataclass

from lstm_textgen.config import ITEM_KINDS
from lstm_textgen.data.vocab import END_OF_ITEM
from lstm_textgen.errors import TextgenError, first_line, setting

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
