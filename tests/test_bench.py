"""`lstm-textgen bench`: each benchmark runs on a tiny model and prints its table."""

import importlib.util
import os
import sys

import pytest

from helpers import run_cli


@pytest.mark.slow
def test_benchmarks_run_and_apply_thread_settings():
    result = run_cli(
        "bench",
        "train",
        "--units",
        "4",
        "--steps",
        "1",
        "--warmup",
        "1",
        "--batch",
        "2",
        "--seq-len",
        "3",
        "--inter-op",
        "1",
        "--intra-op",
        "2",
        "--ceiling-size",
        "64",
    )
    assert result.returncode == 0, result.stderr
    assert "TF threads inter/intra: 1/2" in result.stdout
    assert "fp32 64^3 matmul GFLOP/s: tf.matmul " in result.stdout
    assert "tf.matmul+xla" in result.stdout and "numpy" in result.stdout
    rows = [line.split() for line in result.stdout.splitlines() if line.strip().startswith("4 ")]
    assert [row[1] for row in rows] == [
        "gates+xla",
        "gates",
        "keras",
        "keras+xla",
        "floor",
        "floor+xla",
    ]
    assert [row[-2] for row in rows][2] == "1.00x"  # keras against itself
    floor_ratios = [float(row[-1].rstrip("x")) for row in rows[4:]]
    assert min(floor_ratios) == 1.0  # the faster floor is the floor

    result = run_cli(
        "bench",
        "generate",
        "--units",
        "4",
        "--layers",
        "1",
        "--chars",
        "5",
        "--batches",
        "1",
        "--repeats",
        "1",
    )
    assert result.returncode == 0, result.stderr
    variants = [
        line.split()[1] for line in result.stdout.splitlines() if line.strip().startswith("1 ")
    ]
    assert variants == ["in-graph", "py-loop", "floor", "litert", "litert-i8"]
    assert "ops in the loop body, run once per character" in result.stdout
    assert "cold start" in result.stdout

    result = run_cli(
        *("bench", "serve", "--units", "4", "--layers", "1", "--chars", "5"),
        *("--clients", "1", "3", "--rounds", "1"),
    )
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    modes = [row[:2] for row in rows if row and row[0] in ("1", "3")]
    assert modes == [
        ["1", "separate"],
        ["1", "merged"],
        ["3", "separate"],
        ["3", "merged"],
        ["3", "halves"],
    ]
    assert "rows alone and merged: 3 of 3 texts equal" in result.stdout
    assert "300,006-character prompt" in result.stdout


@pytest.mark.slow
def test_memory_benchmark_trains_on_each_corpus_size(tmp_path, small_text):
    source = tmp_path / "source.txt"
    source.write_text(small_text, encoding="utf-8")
    result = run_cli(
        "bench", "memory", "--sizes-mb", "0.05", "0.02", "--steps", "1", "--source", source
    )
    assert result.returncode == 0, result.stderr
    rows = [line.split("|")[1:4] for line in result.stdout.splitlines() if line.startswith("| 0.0")]
    assert len(rows) == 2
    assert all(
        float(peak.split()[0].replace(",", "")) > 50 for _, peak, _ in rows
    )  # MB, TF alone is more


@pytest.mark.slow
def test_profile_splits_the_step_into_parts_beside_their_products():
    result = run_cli(
        *("bench", "profile", "--units", "4", "--batch", "2", "--seq-len", "3"),
        *("--steps", "1", "--warmup", "1"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("CPU: ")
    for mode in ("graph", "xla"):
        assert f"H = 4, {mode}" in result.stdout
    labels = ("layer", "head+loss", "optimizer+rest", "step")
    rows = [
        line.rsplit(maxsplit=4)
        for line in result.stdout.splitlines()
        if line.split()[:1] and line.split()[0] in labels
    ]
    parts = ["layer 1 fwd", "layer 1 bwd", "layer 2 fwd", "layer 2 bwd", "head+loss fwd"]
    parts += ["head+loss bwd", "optimizer+rest", "step"]
    assert [row[0] for row in rows] == parts * 2  # graph, then XLA
    for row in rows:
        total, products, other = map(float, row[1:4])
        assert abs(total - products - other) < 0.11
        if row[0] == "step":
            assert total > 0 and products > 0


def test_the_loop_body_ops_are_counted_per_kind_of_rows(served):
    from lstm_textgen.bench.generate import BRANCH_NAMES, loop_body_ops

    rows = loop_body_ops(served["version_dir"])
    assert [name for name, _, _ in rows] == list(BRANCH_NAMES)
    counts = dict((name, nodes) for name, nodes, _ in rows)
    # Each step of the loop runs the LSTM step of both layers, whatever the rows.
    assert all(ops["MatMul"] >= 2 * 2 for _, _, ops in rows)
    assert counts["greedy"] < counts["sampled"] < counts["sampled, top-k/p"]
    # Where rows end together, the loop leaves out stop matching and keeping ended rows.
    assert all(counts[name] < counts[f"{name}, uneven"] for name in BRANCH_NAMES[5:])
    assert all(nodes == sum(ops.values()) for _, nodes, ops in rows)


def _fake_torch(tmp_path, monkeypatch, source):
    """Make the torch worker import `source` as torch (PYTHONPATH reaches its process)."""
    (tmp_path / "torch.py").write_text(source)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), *sys.path]))


def _torch_step(**overrides):
    from lstm_textgen.bench.torch_worker import TorchStep

    settings = dict(vocab=6, embed=3, layers=1, threads=1) | overrides
    return TorchStep(4, 2, 3, **settings)


def test_the_torch_worker_says_when_torch_is_missing(tmp_path, monkeypatch):
    from lstm_textgen.bench.torch_worker import TorchStepError

    _fake_torch(tmp_path, monkeypatch, "raise ImportError('No module named torch')\n")
    with pytest.raises(TorchStepError, match=r"^torch is not installed \(No module named torch\)$"):
        _torch_step()


def test_the_torch_worker_reports_a_failing_first_step(tmp_path, monkeypatch):
    from lstm_textgen.bench.torch_worker import TorchStepError

    # The first step fails as oneDNN's missing bfloat16 LSTM does on some CPUs.
    _fake_torch(
        tmp_path,
        monkeypatch,
        "def set_num_threads(n):\n    raise RuntimeError('no bfloat16 LSTM\\nhere')\n",
    )
    with pytest.raises(TorchStepError, match=r"^no bfloat16 LSTM$"):
        _torch_step(bfloat16=True)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_the_torch_worker_runs_steps_beside_tensorflow():
    import tensorflow as tf  # loaded here first, as in `bench train`

    assert tf.constant(1).numpy() == 1
    step = _torch_step()
    process = step._process
    step()
    step()
    step.close()
    assert process.returncode == 0
