"""Training never loses work: SIGKILL at random moments, then --resume."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from lstm_textgen.store.checkpoints import load_checkpoint

from conftest import REPO
from helpers import write_corpus

pytestmark = pytest.mark.slow


def start_training(run, corpus, *extra):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    args = [
        sys.executable,
        "-m",
        "lstm_textgen",
        "train",
        "--run",
        str(run),
        "--text-file",
        str(corpus),
        "--units",
        "16",
        "--layers",
        "1",
        "--embedding-dim",
        "8",
        "--seq-len",
        "32",
        "--batch-size",
        "8",
        "--learning-rate",
        "0.01",
        "--max-steps",
        "240",
        "--checkpoint-every",
        "10",
        *extra,
    ]
    return subprocess.Popen(
        args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def checkpointed_step(run):
    try:
        return json.loads((run / "state.json").read_text())["step"]
    except (OSError, ValueError, KeyError):
        return 0


def kill_after(process, run, min_step, rng, timeout=300):
    """SIGKILL `process` at a random moment once it has checkpointed `min_step`."""
    deadline = time.monotonic() + timeout
    while checkpointed_step(run) < min_step:
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "training made no progress"
        time.sleep(0.05)
    time.sleep(rng.uniform(0.0, 1.0))  # anywhere in the next interval, writes included
    process.send_signal(signal.SIGKILL)
    process.wait()


def test_sigkill_at_random_moments_then_resume(tmp_path, small_text):
    corpus = write_corpus(tmp_path, small_text * 3)
    run = tmp_path / "run"
    rng = random.Random(0)

    first = start_training(run, corpus)
    kill_after(first, run, 20, rng)
    # The killed process's lock is left behind, naming it; it does not block --resume.
    assert (run / "train.lock").read_text().startswith(f"pid {first.pid} on ")
    for target in (60, 120):
        for name in ("last.keras", "best.keras"):
            load_checkpoint(str(run / name), compile=False)  # never corrupt
        kill_after(start_training(run, corpus, "--resume"), run, target, rng)

    finish = start_training(run, corpus, "--resume")
    assert finish.wait(timeout=600) == 0, finish.stderr.read()
    state = json.loads((run / "state.json").read_text())
    steps = [h["step"] for h in state["history"]]
    assert state["step"] == 240 == steps[-1]
    assert steps == sorted(steps)
    # Every resume continued from its checkpoint: no interval's loss jumps back to the
    # level of the first one.
    first = state["history"][0]["train_loss"]
    assert all(h["train_loss"] < first - 0.3 for h in state["history"][3:])
    assert not [name for name in os.listdir(run) if ".tmp-" in name]


def whole_and_resumed(tmp_path, corpus, settings, rng):
    """Train `settings` to step 40 in one go (`whole`) and killed after step 10 then
    resumed (`run`): the two histories, and the resuming process's stderr."""
    whole = start_training(tmp_path / "whole", corpus, *settings)
    assert whole.wait(timeout=600) == 0, whole.stderr.read()
    run = tmp_path / "run"
    kill_after(start_training(run, corpus, *settings), run, 10, rng)
    finish = start_training(run, corpus, "--resume", *settings)
    assert finish.wait(timeout=600) == 0, finish.stderr.read()
    expected = json.loads((tmp_path / "whole" / "state.json").read_text())["history"]
    resumed = json.loads((run / "state.json").read_text())["history"]
    assert [h["step"] for h in resumed] == [10, 20, 30, 40]
    return expected, resumed, finish.stderr.read()


def test_a_carry_state_run_killed_and_resumed_equals_an_uninterrupted_one(tmp_path, small_text):
    corpus = write_corpus(tmp_path, small_text * 3)
    settings = ("--carry-state", "--max-steps", "40")
    expected, resumed, _ = whole_and_resumed(tmp_path, corpus, settings, random.Random(1))
    for a, b in zip(expected, resumed, strict=True):
        for key in ("train_loss", "val_loss", "val_loss_carried"):
            assert a[key] == pytest.approx(b[key], abs=1e-6), (a["step"], key)


def test_a_fine_tune_killed_and_resumed_equals_an_uninterrupted_fine_tune(tmp_path, small_text):
    source = start_training(
        tmp_path / "source", write_corpus(tmp_path, small_text), "--max-steps", "10"
    )
    assert source.wait(timeout=600) == 0, source.stderr.read()
    # New characters (ñ, ú, the comma): the resumed run must keep the extended vocabulary.
    corpus = write_corpus(tmp_path, "ñandú ñu, ñame!\n" * 60, "new.txt")
    settings = ("--init-from", str(tmp_path / "source"), "--max-steps", "40")
    expected, resumed, stderr = whole_and_resumed(tmp_path, corpus, settings, random.Random(2))
    assert "ignored" not in stderr  # the same --init-from: no warning
    run = tmp_path / "run"
    for a, b in zip(expected, resumed, strict=True):
        assert (a["train_loss"], a["val_loss"]) == (b["train_loss"], b["val_loss"]), a["step"]
    assert (run / "vocab.json").read_text() == (tmp_path / "whole" / "vocab.json").read_text()


def test_a_second_training_of_a_run_in_use_fails_at_once_and_the_first_completes(
    tmp_path, small_text
):
    corpus = write_corpus(tmp_path, small_text * 3)
    run = tmp_path / "run"
    first = start_training(run, corpus)
    deadline = time.monotonic() + 300
    while checkpointed_step(run) < 10:  # the first holds the lock and has written
        assert first.poll() is None, first.stderr.read()
        assert time.monotonic() < deadline, "training made no progress"
        time.sleep(0.05)
    # Paused mid-run, the first keeps its lock however long the others take to start.
    first.send_signal(signal.SIGSTOP)
    for extra in ((), ("--resume",)):
        second = start_training(run, corpus, *extra)
        assert second.wait(timeout=300) == 2
        lines = [line for line in second.stderr.read().splitlines() if line.strip()]
        assert len(lines) == 1, lines
        assert f"is being trained by pid {first.pid} on " in lines[0]
    # Readers do not take the lock: generate reads the run while it trains.
    result = subprocess.run(
        [sys.executable, "-m", "lstm_textgen", "generate", "--run", str(run), "--num-chars", "5"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr
    first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=600) == 0, first.stderr.read()
    assert json.loads((run / "state.json").read_text())["step"] == 240
