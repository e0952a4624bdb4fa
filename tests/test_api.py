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
    # `plot`, `generate --server` and `generate --litert` need neither TensorFlow nor tfds.
    code = (
        "import sys, lstm_textgen.plot, lstm_textgen.client, lstm_textgen.rundir, "
        "lstm_textgen.config, lstm_textgen.vocab, lstm_textgen.rows, lstm_textgen.litert; "
        "print(sorted({'tensorflow', 'keras', 'tensorflow_datasets'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


def test_the_package_does_not_need_litert_until_a_litert_model_is_run():
    # ai-edge-litert is an extra: importing the package, the LiteRT module or the
    # exporter must work without it (a stub that fails on import stands in for it).
    code = (
        "import sys; sys.modules['ai_edge_litert'] = None; "
        "import lstm_textgen, lstm_textgen.litert, lstm_textgen.export, lstm_textgen.cli; "
        "from lstm_textgen.litert import LiteRTModel; "
        "LiteRTModel(lstm_textgen.export.__file__)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "pip install 'lstm-textgen[litert]'" in result.stderr.splitlines()[-1], result.stderr


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
