"""The XLA choice of a run: timed under `--xla auto`, kept by a resume, bit for bit."""

import json

import pytest

from lstm_textgen.config import ModelConfig, TrainConfig
from lstm_textgen.training.train import train

from helpers import write_corpus


@pytest.fixture
def corpus(tmp_path, small_text):
    return write_corpus(tmp_path, small_text)


@pytest.mark.slow
def test_auto_xla_times_both_modes_keeps_the_faster_and_leaves_the_run_unchanged(
    tmp_path, corpus, monkeypatch
):
    import re

    from lstm_textgen.training import xla_timing

    monkeypatch.setattr(xla_timing, "XLA_TRIAL_MIN_STEPS", 4)
    model = ModelConfig(units=6, num_layers=1, embedding_dim=4, dropout=0.1)
    config = TrainConfig(
        text_files=[str(corpus)], seq_len=12, batch_size=3, max_steps=4, checkpoint_every=2
    )

    def run(name, jit_compile):
        lines = []
        result = train(str(tmp_path / name), model, config, jit_compile=jit_compile, verbose=0,
                       log=lines.append)  # fmt: skip
        return result, " ".join(lines)

    auto, log = run("auto", "auto")
    found = re.search(
        r"train step (compiled with XLA|in graph mode), the faster here: (\d+) ms/step with "
        r"XLA, (\d+) without \(median of 3 steps each\)",
        log,
    )
    assert found, log
    chose_xla = found.group(1) == "compiled with XLA"
    assert chose_xla == (int(found.group(2)) < int(found.group(3))) or (
        found.group(2) == found.group(3)
    )
    # Timing ran 8 train steps, and put every variable back: the run is the one the chosen
    # mode gives from the start, bit for bit, dropout included.
    chosen, _ = run("chosen", chose_xla)
    assert auto.history == chosen.history
    # A resumed run keeps the choice: the two modes round differently.
    assert json.loads((tmp_path / "auto" / "state.json").read_text())["xla"] == chose_xla
    lines = []
    train(str(tmp_path / "auto"), resume=True, max_steps=6, verbose=0, log=lines.append)
    mode = "compiled with XLA" if chose_xla else "in graph mode"
    assert f"train step {mode}, as chosen when the run started" in " ".join(lines)
    # The other mode differs only by rounding, which 4 Adam steps grow to about 1e-4
    # relative (measured 0.4e-4 to 1.3e-4).
    other, _ = run("other", not chose_xla)
    for a, b in zip(auto.history, other.history):
        assert a.train_loss == pytest.approx(b.train_loss, rel=5e-4)
        assert a.val_loss == pytest.approx(b.val_loss, rel=5e-4)
    # Runs too short to pay for two compilations are not timed.
    monkeypatch.setattr(xla_timing, "XLA_TRIAL_MIN_STEPS", 5)
    _, log = run("short", "auto")
    assert "train step in graph mode (XLA not timed for a run of 4 steps)" in log


@pytest.mark.slow
def test_auto_xla_timing_runs_under_a_one_replica_strategy(tmp_path, corpus, monkeypatch):
    # The optimizer's slot variables must be made inside the strategy's scope.
    import tensorflow as tf

    from lstm_textgen.training import xla_timing

    monkeypatch.setattr(xla_timing, "XLA_TRIAL_MIN_STEPS", 2)
    lines = []
    result = train(
        str(tmp_path / "run"),
        ModelConfig(units=4, num_layers=1, embedding_dim=3),
        TrainConfig(text_files=[str(corpus)], seq_len=8, batch_size=2, max_steps=2),
        strategy=tf.distribute.MirroredStrategy(["/cpu:0"]),
        verbose=0,
        log=lines.append,
    )
    assert result.step == 2
    assert "the faster here" in lines[0]


@pytest.mark.parametrize(
    "xla",
    [pytest.param(False, id="xla-off"), pytest.param(True, id="xla-on", marks=pytest.mark.slow)],
)
def test_a_resume_keeps_the_xla_mode_the_run_started_with(tmp_path, corpus, monkeypatch, xla):
    import logging
    import shutil

    from lstm_textgen.training import xla_timing

    # A resume that times both modes could pick the other one: let every run be timed.
    monkeypatch.setattr(xla_timing, "XLA_TRIAL_MIN_STEPS", 1)
    model = ModelConfig(units=6, num_layers=1, embedding_dim=4, dropout=0.1)
    config = TrainConfig(
        text_files=[str(corpus)], seq_len=12, batch_size=3, max_steps=4, checkpoint_every=2
    )

    def run(name, jit_compile, resume=False, max_steps=None):
        return train(str(tmp_path / name), None if resume else model,
                     None if resume else config, resume=resume, max_steps=max_steps,
                     jit_compile=jit_compile, verbose=0, log=lambda _: None)  # fmt: skip

    whole = run("whole", xla, max_steps=8)
    run("part", xla)
    for name in ("no-flag", "other-flag", "no-state"):
        shutil.copytree(tmp_path / "part", tmp_path / name)
    (tmp_path / "no-state" / "state.json").unlink()  # as the corrupt-state error advises

    assert run("no-flag", "auto", resume=True, max_steps=8).history == whole.history
    logger = logging.getLogger("lstm_textgen")
    warnings = []
    handler = logging.Handler()
    handler.emit = lambda record: warnings.append(record.getMessage())
    logger.addHandler(handler)
    try:
        resumed = run("other-flag", not xla, resume=True, max_steps=8)
    finally:
        logger.removeHandler(handler)
    assert resumed.history == whole.history
    flag = {True: "on", False: "off"}
    assert warnings == [f"--xla {flag[not xla]} is ignored with --resume (the run keeps --xla "
                        f"{flag[xla]})"]  # fmt: skip
    after_loss = run("no-state", "auto", resume=True, max_steps=8).history
    assert after_loss == whole.history[2:]  # the history went with state.json; the run did not
