"""The one exception type the toolkit raises for bad user input, and how to print errors.

The CLI prints a `TextgenError` as a single line and exits with status 2; anything else is
a bug and keeps its traceback.
"""

import contextlib
import os
import sys


class TextgenError(Exception):
    """Bad input or a bad run directory: the message names the problem and the fix."""


def first_line(error: BaseException) -> str:
    """The first non-empty line of an error's message, or its type name if it has none.

    TensorFlow's `OpError` keeps its text in `.message`; other exceptions in `str()`.
    """
    message = getattr(error, "message", None)
    if not isinstance(message, str):
        message = str(error)
    for line in message.splitlines():
        if line.strip():
            return line.strip()
    return type(error).__name__


@contextlib.contextmanager
def quiet_stderr_fd():
    """Silence C++ log lines written straight to fd 2 (TensorFlow starting up, LiteRT
    starting its CPU delegate): they are not the user's business."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            sys.stderr.flush()
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
