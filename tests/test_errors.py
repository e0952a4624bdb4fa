"""One-line errors: what the CLI prints of an exception, settings named for Python callers
or as flags, and silencing C++ log lines."""

import os
import subprocess
import sys

import pytest

from lstm_textgen.errors import TextgenError, first_line, setting


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


def test_a_setting_reads_as_a_python_argument_or_as_a_flag():
    error = TextgenError(
        f"{setting('seq_len', 100)} is too long; pass {setting('resume', switch=True)} "
        f"or change {setting('num_layers')}"
    )
    assert str(error) == "seq_len=100 is too long; pass resume=True or change num_layers"
    assert (
        error.for_command_line()
        == "--seq-len 100 is too long; pass --resume or change --num-layers"
    )
    flags = {"num_layers": "--layers"}.get
    assert error.for_command_line(lambda n: flags(n) or "--" + n).endswith("change --layers")
    with pytest.raises(TextgenError, match=r"^seq_len=100 is too long"):
        raise error


def test_an_error_quoting_another_keeps_its_settings_for_the_reader():
    inner = TextgenError(f"{setting('text_files')} pattern 'x*' matches no file")
    outer = TextgenError(f"cannot read the corpus: {first_line(inner)}")
    assert str(outer) == "cannot read the corpus: text_files pattern 'x*' matches no file"
    assert (
        outer.for_command_line()
        == "cannot read the corpus: --text-files pattern 'x*' matches no file"
    )


def test_the_library_names_arguments_and_the_cli_names_flags(tmp_path, capsys):
    from lstm_textgen.cli import main
    from lstm_textgen.data.corpus import expand_text_files

    with pytest.raises(TextgenError, match=r"^text_files pattern '.*nothing\*\.txt' matches no"):
        expand_text_files([str(tmp_path / "nothing*.txt")])
    argv = ["train", "--run", str(tmp_path / "run"), "--text-file", str(tmp_path / "nothing*.txt")]
    assert main(argv) == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith("lstm-textgen: error: --text-file pattern") and "text_files" not in line
    argv = ["inspect", "--text", "ab", "--layer", "7", "--out", str(tmp_path / "x.html")]
    assert main(argv) == 2
    assert "error: --layer must be in [0, 1], got 7" in capsys.readouterr().err
