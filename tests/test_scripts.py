"""scripts/: the reproduction scripts pass their arguments through, resume, and tabulate.

`lstm-textgen` is replaced on PATH by a stub that logs its arguments, so these tests check
the scripts' own logic in well under a second; the commands they call are tested elsewhere.
"""

import os
import stat
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

STUB = """#!/usr/bin/env bash
echo "$*" >> "$STUB_LOG"
case "$1" in
  evaluate) echo "validation: 1.2345 nats/char = 1.7810 bits/char over 55770 characters" ;;
  generate) echo "ROMEO: stub text" ;;
esac
"""


def run_script(tmp_path, *args):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stub = bin_dir / "lstm-textgen"
    stub.write_text(STUB)
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "calls.log"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "STUB_LOG": str(log),
        "LSTM_TEXTGEN_TFDS_MANUAL_DIR": str(tmp_path / "corpus"),
    }
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "reproduce_shakespeare.sh"), *args],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    return result.stdout, log.read_text().splitlines()


def test_reproduce_shakespeare_passes_train_flags_after_the_preset(tmp_path):
    (tmp_path / "corpus").mkdir()
    run = str(tmp_path / "run")
    stdout, calls = run_script(tmp_path, run, "--carry-state", "--max-steps", "10")
    corpus = f"--tfds-manual-dir {tmp_path / 'corpus'}"
    train = f"train --preset shakespeare --run {run} {corpus}"
    assert calls[0] == f"{train} --carry-state --max-steps 10"
    evaluations = [call for call in calls if call.startswith("evaluate")]
    assert len(evaluations) == 9  # three splits x (windows of 100, of 256, carried)
    assert f"evaluate --run {run} --split validation+test --seq-len 256 {corpus}" in evaluations
    assert "| validation+test | 1.2345 nats (1.7810 bits) |" in stdout
    assert calls[-1].startswith(f"generate --run {run} --prompt ROMEO:")


def test_reproduce_shakespeare_resumes_a_run_it_started(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.keras").write_text("")
    _, calls = run_script(tmp_path, str(run))
    # No corpus folder here: tfds is left to download.
    assert calls[0] == f"train --preset shakespeare --run {run} --resume"


def test_score_rate_prints_the_cpu_and_each_backend_against_the_floor():
    import sys

    import pytest

    pytest.importorskip("ai_edge_litert")
    result = subprocess.run(
        [sys.executable, "scripts/score_rate.py", "--chars", "400", "--backends", "litert"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("CPU: ") and "400 characters" in lines[0]
    assert lines[2].split()[0] == "floor" and lines[2].endswith("100%")
    name, rate, share = lines[3].split()
    assert name == "litert" and float(rate.replace(",", "")) > 0 and share.endswith("%")
