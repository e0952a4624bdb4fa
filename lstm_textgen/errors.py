"""The one exception type the toolkit raises for bad user input, and how to print errors.

The CLI prints a `TextgenError` as a single line and exits with status 2; anything else is
a bug and keeps its traceback.

A message names the settings it is about with `setting(...)`, so that it reads right for
whoever called: `str(error)` names the Python argument (`seq_len=100`), and the CLI
names the flag (`--seq-len 100`).
"""

import contextlib
import os
import re
import sys
from collections.abc import Callable

# A setting in a message: name, form and value between private-use characters, which no
# message holds otherwise and which, unlike ASCII's separators, do not end a line.
_OPEN, _SEP, _CLOSE = "\ue000", "\ue001", "\ue002"
_SETTING = re.compile(f"{_OPEN}(\\w+){_SEP}(|=|on){_SEP}(.*?){_CLOSE}", re.S)


def setting(name: str, value: object = None, *, switch: bool = False) -> str:
    """A setting named in an error message, written for the caller who reads it.

    Args:
        name: the Python name, a config field or a keyword argument (`seq_len`).
        value: the value to show beside it, if any.
        switch: the setting is an on/off switch that the message asks to turn on.

    Example: `setting("seq_len", 100)` reads "seq_len=100" in `str(error)` and
    "--seq-len 100" on the command line; `setting("resume", switch=True)` reads
    "resume=True" and "--resume".
    """
    form = "on" if switch else ("" if value is None else "=")
    return f"{_OPEN}{name}{_SEP}{form}{_SEP}{'' if value is None else value}{_CLOSE}"


def _render(message: str, flag_of: Callable[[str], str] | None) -> str:
    def one(match):
        name, form, value = match.groups()
        if flag_of is None:
            return {"": name, "=": f"{name}={value}", "on": f"{name}=True"}[form]
        flag = flag_of(name)
        return f"{flag} {value}" if form == "=" else flag

    return _SETTING.sub(one, message)


def default_flag(name: str) -> str:
    """The flag a setting has when its command names it after the setting: `--seq-len`."""
    return "--" + name.replace("_", "-")


class TextgenError(Exception):
    """Bad input or a bad run directory: the message names the problem and the fix.

    `str(error)` names settings as Python arguments; `for_command_line` as flags.
    """

    def __str__(self) -> str:
        return _render(super().__str__(), None)

    def for_command_line(self, flag_of: Callable[[str], str] = default_flag) -> str:
        """The message with each setting named by its flag (`flag_of(name)`)."""
        return _render(super().__str__(), flag_of)


def first_line(error: BaseException) -> str:
    """The first non-empty line of an error's message, or its type name if it has none.

    TensorFlow's `OpError` keeps its text in `.message`; other exceptions in `str()`. A
    `TextgenError`'s settings stay unrendered, for the error that quotes it to render.
    """
    message = getattr(error, "message", None)
    if isinstance(error, TextgenError):
        message = Exception.__str__(error)  # its settings stay for the outer error to name
    elif not isinstance(message, str):
        message = str(error)
    return first_line_of(message) or type(error).__name__


def first_line_of(message: str) -> str:
    """The one line that tells what went wrong in an error's text: the message of the
    first failed graph assertion (`tf.debugging.assert_*`) where there is one, else the
    first non-empty line ("" if none)."""
    found = re.search(r"assertion failed: \[(.*?)\](?= \[|\s*$)", message, re.MULTILINE)
    if found:
        return found.group(1)
    for line in message.splitlines():
        if line.strip():
            return line.strip()
    return ""


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
