"""How much does keeping only the last N characters of a prompt change the prediction?

    python scripts/prompt_cap_loss.py --run runs/quickstart [--caps 30 100 300 1000]

An export primes the LSTM with the last `MAX_PROMPT_CHARS` characters of a prompt only
(docs/serving.md, Serving under load). This measures what that costs. On the run's validation text,
at --positions positions spread evenly past the first 5,000 characters, it compares the
loss (nats) of the next character

  full     with the state carried over every character before it (from the split's start);
  last N   with the state primed from zero on the N characters before it only,

and prints the mean of each and of their difference. Offline, pass --tfds-manual-dir (or
set LSTM_TEXTGEN_TFDS_MANUAL_DIR).
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from lstm_textgen import stepping  # noqa: E402
from lstm_textgen.data.corpus import corpus_from_tfds  # noqa: E402
from lstm_textgen.data.id_file import encode_text  # noqa: E402
from lstm_textgen.store.loading import load_trained_model
from lstm_textgen.store.run_dir import load_run_config


def log_probs(logits, targets):
    return tf.gather(tf.nn.log_softmax(logits), targets, batch_dims=1).numpy()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--caps", type=int, nargs="+", default=[30, 100, 300, 1000])
    parser.add_argument("--positions", type=int, default=256)
    parser.add_argument("--tfds-manual-dir")
    args = parser.parse_args()

    _, train_config = load_run_config(args.run)
    model, vocab = load_trained_model(args.run)
    corpus = corpus_from_tfds(train_config.tfds_name, manual_dir=args.tfds_manual_dir)
    ids = encode_text(corpus.validation, vocab)
    positions = np.linspace(5000, len(ids) - 1, args.positions).astype(int)

    # Full history: one stream over the whole split, the state carried from its start.
    logits, _ = tf.function(model.logits_and_state)(tf.constant(ids[None, :-1]))
    full = log_probs(logits[0].numpy()[positions - 1], ids[positions])
    print(f"run {args.run}: {len(positions)} positions of the validation split")
    print(f"full history: {-full.mean():.4f} nats/char")
    prime = tf.function(lambda x: stepping.next_logits(model, stepping.prime(model, x)))
    for cap in args.caps:
        windows = np.stack([ids[p - cap : p] for p in positions])
        truncated = log_probs(prime(tf.constant(windows)), ids[positions])
        change = -(truncated - full)
        print(
            f"last {cap:>5} characters: {-truncated.mean():.4f} nats/char, "
            f"change {change.mean():+.4f} (largest at one position {np.abs(change).max():.1e})"
        )


if __name__ == "__main__":
    main()
