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
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip() == "False", result.stderr


def test_first_line_of_an_error_never_fails():
    # Bug: str(e).splitlines()[0] raised IndexError on an empty message.
    from lstm_textgen.errors import first_line

    class OpError(Exception):
        message = ""

    assert first_line(ValueError("")) == "ValueError"
    assert first_line(OpError("ignored")) == "OpError"
    assert first_line(ValueError("\n  real reason\nmore")) == "real reason"


def test_light_modules_do_not_import_tensorflow():
    # `plot` and `generate --server` need neither TensorFlow nor tfds.
    code = (
        "import sys, lstm_textgen.plot, lstm_textgen.client, lstm_textgen.rundir, "
        "lstm_textgen.config, lstm_textgen.vocab, lstm_textgen.rows; "
        "print(sorted({'tensorflow', 'keras', 'tensorflow_datasets'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


def test_the_package_keeps_benchmarks_and_test_scaffolding_out_of_the_library():
    import pathlib

    package = pathlib.Path(lstm_textgen.__file__).parent
    assert not list(package.glob("bench_*.py"))
    assert (package / "bench" / "__init__.py").exists()
    scaffolding = {"rest_to_inputs", "outputs_to_rest", "read_warmup_requests", "denied_ops"}
    assert not scaffolding & set(lstm_textgen.__all__)
    for module in package.glob("*.py"):
        text = module.read_text(encoding="utf-8")
        assert "lstm_textgen.bench" not in text or module.name == "cli.py", module
        assert not any(f"def {name}" in text for name in scaffolding), module
