"""The one exception type the toolkit raises for bad user input.

The CLI prints a `TextgenError` as a single line and exits with status 2; anything else is
a bug and keeps its traceback.
"""


class TextgenError(Exception):
    """Bad input or a bad run directory: the message names the problem and the fix."""
