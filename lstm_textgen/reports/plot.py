"""A PNG of a run's training and validation loss over steps."""

from __future__ import annotations

import os

from lstm_textgen.config import LN2, bits
from lstm_textgen.errors import TextgenError
from lstm_textgen.files import atomic_path
from lstm_textgen.store.run_dir import STATE_FILE, RunDir, read_state


def plot_run(run_dir: str, out_path: str | None = None) -> str:
    """Draw train and validation loss (nats/char, with bits/char on the right axis) at
    every checkpoint of `run_dir`; returns the PNG's path (default `RUN/loss.png`, and
    a folder in `out_path` that does not exist yet is created)."""
    if not os.path.isfile(RunDir(run_dir).state_file):
        raise TextgenError(f"{run_dir} holds no {STATE_FILE}: train it first")
    history = read_state(run_dir).history
    if not history:
        raise TextgenError(f"{run_dir} has no checkpoint yet, so there is nothing to plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [h.step for h in history]
    figure, axis = plt.subplots(figsize=(7, 4), dpi=120)
    axis.plot(
        steps, [h.train_loss for h in history], marker="o", label="train (mean over interval)"
    )
    axis.plot(steps, [h.val_loss for h in history], marker="o", label="validation")
    axis.set_xlabel("step")
    axis.set_ylabel("loss (nats/char)")
    axis.grid(alpha=0.3)
    axis.legend()
    right = axis.secondary_yaxis("right", functions=(bits, lambda b: b * LN2))
    right.set_ylabel("bits/char")
    axis.set_title(os.path.basename(os.path.normpath(run_dir)))
    figure.tight_layout()
    out_path = out_path or RunDir(run_dir).file("loss.png")
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with atomic_path(out_path, suffix=".png") as tmp:
        figure.savefig(tmp)
    plt.close(figure)
    return out_path
