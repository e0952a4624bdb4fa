"""The public API: every name in `__all__` resolves, and importing stays cheap."""

import subprocess
import sys

import lstm_textgen


def test_every_public_name_resolves():
    missing = [name for name in lstm_textgen.__all__ if getattr(lstm_textgen, name, None) is None]
    assert missing == []
    assert lstm_textgen.GateLSTM.__module__ == "lstm_textgen.layers"


def test_importing_the_cli_does_not_start_tensorflow():
    code = "import sys, lstm_textgen.cli; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr
