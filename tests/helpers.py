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


def error_lines(result):
    return [line for line in result.stderr.splitlines() if line.strip()]
