"""The loss plot of a run: a PNG from state.json, or one line saying why not."""

import json

import pytest

from lstm_textgen.errors import TextgenError
from lstm_textgen.reports.plot import plot_run
from lstm_textgen.store.run_dir import STATE_FILE


def test_plot_writes_a_png_of_every_checkpoint(tmp_path):
    history = [{"step": s, "train_loss": 4.0 / s, "val_loss": 4.2 / s} for s in (1, 2, 3)]
    (tmp_path / STATE_FILE).write_text(json.dumps({"step": 3, "history": history}))
    path = plot_run(str(tmp_path))
    assert path == str(tmp_path / "loss.png")
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    other = plot_run(str(tmp_path), str(tmp_path / "plots" / "a.png"))
    assert (tmp_path / "plots" / "a.png").is_file() and other.endswith("a.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loss.png", "plots", STATE_FILE]


def test_a_run_without_checkpoints_is_one_line(tmp_path):
    with pytest.raises(TextgenError, match="train it first"):
        plot_run(str(tmp_path))
    (tmp_path / STATE_FILE).write_text(json.dumps({"step": 0, "history": []}))
    with pytest.raises(TextgenError, match="nothing to plot"):
        plot_run(str(tmp_path))
