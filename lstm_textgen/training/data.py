"""What a run trains on: its corpus as ids and vocabulary (`load_training_data`), its
length in steps, and the `tf.data` batches of a run from a given step on."""

from __future__ import annotations

import tensorflow as tf

from lstm_textgen.config import TrainConfig
from lstm_textgen.data import id_file
from lstm_textgen.data import windows as data
from lstm_textgen.data.corpus import corpus_from_tfds, items_corpus
from lstm_textgen.data.vocab import END_OF_ITEM, CharVocabulary


def load_training_data(
    config: TrainConfig,
    data_dir: str,
    manual_dir: str | None,
    vocab: CharVocabulary | None = None,
    base_vocab: CharVocabulary | None = None,
):
    """(corpus name, vocabulary, train ids, validation ids) for a run.

    The user's text files are encoded into `data_dir` (a run's `RUN/data`) and streamed
    from there; the tfds corpus and a corpus of items (`config.items`, see
    `items_corpus`) stay in memory. `vocab` (on resume) is used as it is; otherwise
    it is built from the training split, as `base_vocab` (a fine-tune's source
    vocabulary) extended by the characters it lacks when that is given.
    """

    def new_vocab(characters, end_of_item=None):
        if base_vocab is not None:
            return base_vocab.extended(characters, end_of_item)
        return CharVocabulary(characters, end_of_item)

    if config.items:
        corpus, _ = items_corpus(config.text_files, config.tfds_name, manual_dir, config.items)
        vocab = vocab or new_vocab(set(corpus.train), END_OF_ITEM)
        train_ids = id_file.encode_text(corpus.train, vocab)
        val_ids = id_file.encode_text(corpus.validation, vocab)
        name = corpus.name
    elif config.text_files:
        vocab, train_ids, val_ids = id_file.encode_text_files(
            config.text_files, data_dir, vocab, base_vocab
        )
        name = "text files"
    else:
        corpus = corpus_from_tfds(config.tfds_name, manual_dir=manual_dir)
        vocab = vocab or new_vocab(set(corpus.train))
        train_ids = id_file.encode_text(corpus.train, vocab)
        val_ids = id_file.encode_text(corpus.validation, vocab)
        name = corpus.name
    data.check_length(train_ids, config.seq_len, "training")
    data.check_length(val_ids, config.seq_len, "validation")
    return name, vocab, train_ids, val_ids


def total_steps(config: TrainConfig, train_ids) -> int:
    """The run's length in steps: `max_steps`, or its epochs of the training windows."""
    if config.max_steps is not None:
        return config.max_steps
    windows = data.count_windows(len(train_ids), config.seq_len)
    steps_per_epoch = max(1, windows // config.batch_size)
    return (config.epochs or 1) * steps_per_epoch


def training_datasets(config: TrainConfig, train_ids, val_ids, step: int):
    """Training batches from step `step` on, and the validation batches.

    The batches depend on (seed, step) only, and the dropout generators' states travel in
    the checkpoint: a resumed run continues exactly as an uninterrupted one. Under a
    distribution strategy each batch is the global batch, split over the replicas.
    """
    if config.carry_state:
        train_ds = data.make_stream_dataset(train_ids, config.seq_len, config.batch_size, step)
    else:
        train_ds = data.make_train_dataset(
            train_ids, config.seq_len, config.batch_size, config.seed, step
        )
    val_ds = data.make_dataset(val_ids, config.seq_len, config.batch_size)
    return train_ds.with_options(_shard_by_data()), val_ds.with_options(_shard_by_data())


def _shard_by_data() -> tf.data.Options:
    # The datasets are built from ids, not files: each worker takes its part of every
    # global batch.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return options
