"""The one exception type the toolkit raises for bad user input, and how to print errors.

The CLI prints a `TextgenError` as a single line and exits with status 2; anything else is
a bug and keeps its traceback.
"""


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
