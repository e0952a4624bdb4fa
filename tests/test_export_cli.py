"""The CLI against the export and against a TF Serving REST endpoint (a fake one that
loads the export as TF Serving does)."""

import pytest

import tf_serving as serving
from helpers import cli_in_process, error_lines, run_cli


@pytest.fixture
def fake_tf_serving(served):
    with serving.fake_tf_serving("tiny", served["version_dir"]) as server:
        yield server


def test_cli_export_and_generate_from_saved_model_and_server(served, fake_tf_serving, tmp_path):
    run = served["run"]
    result = cli_in_process("export", "--run", run, "--export-base", tmp_path / "sm" / "tiny")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "sm" / "tiny" / "1")

    args = [
        "--prompt",
        "the ",
        "--num-chars",
        "30",
        "--temperature",
        "0.9",
        "--top-k",
        "8",
        "--seed",
        "11",
        "--batch",
        "2",
    ]
    from_run = cli_in_process("generate", "--run", run, *args)
    from_export = cli_in_process("generate", "--saved-model", tmp_path / "sm" / "tiny", *args)
    port = fake_tf_serving.server_address[1]
    from_server = run_cli(
        "generate", "--server", f"http://127.0.0.1:{port}", "--model-name", "tiny", *args
    )
    for result in (from_run, from_export, from_server):
        assert result.returncode == 0, result.stderr
    assert from_export.stdout == from_run.stdout
    assert from_server.stdout == from_run.stdout
    assert fake_tf_serving.bodies[-1]["inputs"]["seed"] == [11, 12]

    wrong_name = run_cli(
        "generate", "--server", f"http://127.0.0.1:{port}", "--model-name", "other"
    )
    assert wrong_name.returncode == 2
    assert len(error_lines(wrong_name)) == 1 and "answered 404" in wrong_name.stderr
    no_name = run_cli("generate", "--server", f"http://127.0.0.1:{port}")
    assert no_name.returncode == 2 and "--model-name" in no_name.stderr
