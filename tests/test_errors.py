"""One-line errors: what the CLI prints of an exception, and silencing C++ log lines."""

import os
import subprocess
import sys

from lstm_textgen.errors import first_line


class OpLikeError(Exception):
    """Like TensorFlow's OpError: the text is in `.message`, `str()` says more."""

    def __init__(self, message):
        super().__init__(f"{message}\n\t [[node x]]")
        self.message = message


def test_first_line_is_the_first_non_empty_line_or_the_type_name():
    assert first_line(ValueError("\n  bad value  \nmore detail")) == "bad value"
    assert first_line(OpLikeError("seed out of range\nGraph execution error")) == (
        "seed out of range"
    )
    assert first_line(KeyError()) == "KeyError"
    assert first_line(RuntimeError("   \n")) == "RuntimeError"


def test_quiet_stderr_fd_silences_writes_to_fd_2_and_restores_it():
    code = (
        "import os, sys\n"
        "from lstm_textgen.errors import quiet_stderr_fd\n"
        "with quiet_stderr_fd():\n"
        "    os.write(2, b'hidden\\n')\n"
        "os.write(2, b'shown\\n')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ)
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "shown\n"
