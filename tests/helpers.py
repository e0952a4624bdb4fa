"""Test helpers shared by the test modules."""

import os
import subprocess
import sys

import numpy as np

from conftest import REPO

ATOL = 1e-5
RTOL = 1e-5


def assert_close(actual, expected, atol=ATOL, rtol=RTOL):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), atol=atol, rtol=rtol)


def run_cli(*args, env=None, timeout=300, cwd=REPO):
    """Run `python -m lstm_textgen ARGS` in a fresh process, as a user would."""
    full_env = dict(os.environ)
    full_env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # exercise the CLI's own quiet default
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "lstm_textgen", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        timeout=timeout,
    )


def cli_in_process(*args, cwd=REPO, env=None):
    """`lstm-textgen ARGS` run by `cli.main` in this process, its output captured: the
    same command without a fresh interpreter and TensorFlow start (seconds each). What a
    fresh process adds (the quiet C++ logs, the lock before TensorFlow, exit codes of
    signals) is tested with `run_cli`."""
    import contextlib
    import io

    from lstm_textgen.cli import main

    out, err = io.StringIO(), io.StringIO()
    previous = os.getcwd(), {name: os.environ.get(name) for name in env or {}}
    os.chdir(cwd)
    os.environ.update(env or {})
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main([str(a) for a in args])
    finally:
        os.chdir(previous[0])
        for name, value in previous[1].items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return subprocess.CompletedProcess(args, status, out.getvalue(), err.getvalue())


def error_lines(result):
    return [line for line in result.stderr.splitlines() if line.strip()]


def write_corpus(folder, text, name="corpus.txt"):
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def train_tiny(run, text_file, model_config, *, resume=False, max_steps=None, **train_fields):
    """Train (or resume) a tiny model on one text file, quietly; returns the TrainResult."""
    from lstm_textgen.config import TrainConfig
    from lstm_textgen.training.train import train

    fields = {"seq_len": 16, "batch_size": 4, "max_steps": 4, "checkpoint_every": 2, **train_fields}
    return train(
        str(run),
        None if resume else model_config,
        None if resume else TrainConfig(text_files=[str(text_file)], **fields),
        resume=resume,
        max_steps=max_steps,
        verbose=0,
        log=lambda _: None,
    )


def train_tiny_run(root, text, model_config, **train_fields):
    """`train_tiny` on `text` written to `root/corpus.txt`, into `root/run`; returns the run."""
    run = root / "run"
    train_tiny(run, write_corpus(root, text), model_config, **train_fields)
    return run
