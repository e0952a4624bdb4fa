"""Scaling out: MirroredStrategy over two logical CPUs, MultiWorkerMirroredStrategy over
two processes on 127.0.0.1, and mixed precision. Each distributed run must compute what
one process computes with the same global batch and seed."""

import json
import os
import re
import socket
import subprocess
import sys

import numpy as np
import pytest

from lstm_textgen.config import ModelConfig
from lstm_textgen.model import stepping

from conftest import REPO
from helpers import cli_in_process, error_lines, run_cli, write_corpus

TINY = [
    "--units",
    "8",
    "--layers",
    "2",
    "--embedding-dim",
    "4",
    "--seq-len",
    "8",
    "--batch-size",
    "4",
    "--max-steps",
    "6",
    "--checkpoint-every",
    "2",
    "--seed",
    "5",
]


@pytest.fixture
def corpus(tmp_path, small_text):
    return write_corpus(tmp_path, small_text)


def history(run):
    from lstm_textgen.store.run_dir import read_state

    return read_state(str(run)).history


def assert_same_losses(actual, expected, atol=1e-4):
    assert [h.step for h in actual] == [h.step for h in expected]
    for a, e in zip(actual, expected):
        assert a.train_loss == pytest.approx(e.train_loss, abs=atol)
        assert a.val_loss == pytest.approx(e.val_loss, abs=atol)


@pytest.fixture
def single_process_run(tmp_path, corpus):
    run = tmp_path / "single"
    result = run_cli("train", "--run", run, "--text-file", corpus, *TINY, "--xla", "off")
    assert result.returncode == 0, result.stderr
    return run


@pytest.mark.slow
def test_mirrored_over_two_logical_cpus_matches_one_device_and_resumes(
    tmp_path, corpus, single_process_run
):
    run = tmp_path / "mirrored"
    mirrored = ["--strategy", "mirrored", "--cpu-replicas", "2"]
    result = run_cli(
        "train", "--run", run, "--text-file", corpus, *TINY, *mirrored, "--max-steps", "4"
    )
    assert result.returncode == 0, result.stderr
    assert "MirroredStrategy: 2 replicas, 2 windows each per global batch of 4" in result.stderr
    resumed = run_cli("train", "--run", run, "--resume", "--max-steps", "6", *mirrored)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_losses(history(run), history(single_process_run))
    uneven = run_cli(
        "train",
        "--run",
        tmp_path / "uneven",
        "--text-file",
        corpus,
        *TINY,
        *mirrored,
        "--batch-size",
        "3",
    )
    assert (
        uneven.returncode == 2 and "does not split evenly over 2 replicas" in error_lines(uneven)[0]
    ), uneven.stderr


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_workers(train_args):
    """Run `lstm-textgen train ARGS --strategy multi-worker` as two workers on 127.0.0.1;
    returns their stderr."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    workers = []
    for index in range(2):
        env = dict(
            os.environ,
            TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
        )
        env.pop("TF_CPP_MIN_LOG_LEVEL", None)
        workers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "lstm_textgen",
                    "train",
                    *map(str, train_args),
                    "--strategy",
                    "multi-worker",
                ],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = [worker.communicate(timeout=600)[1] for worker in workers]
    for worker, err in zip(workers, outputs):
        assert worker.returncode == 0, err
    return outputs


@pytest.mark.slow
def test_two_workers_on_localhost_match_one_process_resume_then_export_and_generate(
    tmp_path, corpus, single_process_run
):
    run = tmp_path / "workers"
    first = run_workers(["--run", run, "--text-file", corpus, *TINY, "--max-steps", "4"])
    assert "MultiWorkerMirroredStrategy: 2 replicas" in first[0]
    assert "step 4/4" in first[0] and "step 4/4" not in first[1]  # the chief reports
    run_workers(["--run", run, "--resume", "--max-steps", "6"])  # both workers resume
    assert_same_losses(history(run), history(single_process_run))
    assert not list(run.glob("*.tmp-*"))

    exported = run_cli("export", "--run", run, "--export-base", tmp_path / "export")
    assert exported.returncode == 0, exported.stderr
    texts = [
        run_cli(*source, "--prompt", "the ", "--num-chars", "30", "--seed", "3").stdout
        for source in (
            ["generate", "--run", run],
            ["generate", "--saved-model", tmp_path / "export"],
        )
    ]
    assert texts[0] == texts[1] and len(texts[0]) == len("the ") + 30 + 1


def test_multi_worker_without_tf_config_is_a_clear_error(tmp_path, corpus):
    def train_multi_worker(tf_config):
        args = ("train", "--run", tmp_path / "run", "--text-file", corpus)
        return cli_in_process(*args, "--strategy", "multi-worker", env={"TF_CONFIG": tf_config})

    result = train_multi_worker("")
    lines = error_lines(result)
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "needs TF_CONFIG" in lines[0]
    bad = train_multi_worker('{"cluster": {}}')
    assert bad.returncode == 2 and "TF_CONFIG is not valid" in error_lines(bad)[0], bad.stderr


def test_mixed_precision_keeps_logits_and_the_gate_loop_in_float32():
    import keras

    from lstm_textgen.model.language_model import CharLanguageModel

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = CharLanguageModel(vocab_size=7, embedding_dim=4, units=3, num_layers=2)
        model.build()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.embedding.compute_dtype == "bfloat16"
    assert [layer.compute_dtype for layer in model.lstm_layers] == ["float32", "float32"]
    assert model.head.compute_dtype == "float32"
    assert model(np.array([[1, 2, 3]])).dtype == "float32"
    logits, state = stepping.step(model, np.array([1, 2]), model.initial_state(2))
    assert logits.dtype == "float32" and state[0][0].dtype == "float32"


@pytest.mark.parametrize("bfloat16_cpu", [True, False])
def test_mixed_precision_trains(tmp_path, corpus, monkeypatch, bfloat16_cpu):
    import keras

    from lstm_textgen.config import TrainConfig
    from lstm_textgen.generation.backends.keras import TextGenerator
    from lstm_textgen.store.loading import load_trained_model
    from lstm_textgen.training import precision
    from lstm_textgen.training.train import train

    # This project's CPUs differ: pretend to have (or lack) bfloat16 instructions. With
    # them, the bfloat16 products run here too, only slower where they are emulated.
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: bfloat16_cpu)
    if bfloat16_cpu:  # and measure bfloat16 products faster, as such a CPU does
        monkeypatch.setattr(precision, "bfloat16_speed", lambda: 1.8)
    messages = []
    result = train(
        str(tmp_path / "run"),
        ModelConfig(units=8, num_layers=2, embedding_dim=4),
        TrainConfig(
            text_files=[str(corpus)],
            seq_len=8,
            batch_size=4,
            max_steps=40,
            checkpoint_every=20,
            learning_rate=0.02,
            mixed_precision=True,
        ),
        verbose=0,
        log=messages.append,
    )
    if bfloat16_cpu:
        assert messages[0].endswith(
            "; dtype policy mixed_bfloat16; GateLSTM products on bfloat16 operands"
        )
    else:
        assert "dtype policy" not in messages[0]
        assert re.fullmatch(
            r"--mixed-precision: this CPU has no bfloat16 instructions \(AVX512_BF16 or AMX\); "
            r"a bfloat16 product of a 512-unit step ran at \d+\.\d\dx the speed of float32 "
            r"here, so training stays in float32",
            messages[1],
        ), messages[1]
    assert keras.mixed_precision.global_policy().name == "float32"  # restored afterwards
    losses = [h.val_loss for h in result.history]
    assert all(np.isfinite(losses)) and losses[-1] < np.log(30) - 0.3  # below a uniform guess
    model, vocab = load_trained_model(str(tmp_path / "run"))  # loads for inference in float32
    text = TextGenerator(model, vocab).generate("the ", num_chars=10, seed=1)[0]
    assert len(text) == 10 and set(text) <= set(vocab.characters)


def test_auto_precision_stays_float32_without_instructions_a_wide_model_or_a_gain(monkeypatch):
    from lstm_textgen.training import precision

    def never(*args):
        raise AssertionError("measured a model too small to try")

    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: False)
    none = precision.choose_precision("auto", units=512, batch=64)
    assert (none.policy, none.matmul_dtype) == ("float32", None)
    assert none.note == (
        "--mixed-precision auto: float32, as this CPU has no bfloat16 instructions "
        "(AVX512_BF16 or AMX)"
    )
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: True)
    monkeypatch.setattr(precision, "product_times", never)
    small = precision.choose_precision("auto", units=64, batch=64)
    assert small.policy == "float32" and "64-unit model's products are too small" in small.note
    monkeypatch.setattr(precision, "product_times", lambda dtype, units, batch: (2e-3, 1.9e-3))
    slight = precision.choose_precision("auto", units=256, batch=64)
    assert slight.policy == "float32" and slight.note.endswith(
        "2.000 ms in float32 and 1.900 ms in bfloat16 (1.05x), under the 1.2x it takes"
    )
    assert precision.choose_precision("off", units=512).note is None
    assert precision.choose_precision(False, units=512).policy == "float32"


def test_auto_precision_takes_bfloat16_where_it_measures_faster_and_a_resume_keeps_it(
    tmp_path, corpus, monkeypatch
):
    import keras

    from lstm_textgen.config import TrainConfig
    from lstm_textgen.training import precision
    from lstm_textgen.training.train import train

    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: True)
    monkeypatch.setattr(precision, "product_times", lambda dtype, units, batch: (3e-3, 2e-3))
    run = tmp_path / "run"
    config = TrainConfig(text_files=[str(corpus)], seq_len=8, batch_size=4, max_steps=2)
    messages = []
    train(
        str(run),
        ModelConfig(units=128, num_layers=1, embedding_dim=4),
        config,
        jit_compile=False,
        verbose=0,
        log=messages.append,
    )
    assert "; dtype policy mixed_bfloat16; GateLSTM products on bfloat16 operands" in messages[0]
    assert messages[1] == (
        "--mixed-precision auto: mixed_bfloat16, as a 128-unit step's product took 3.000 ms "
        "in float32 and 2.000 ms in bfloat16 (1.50x)"
    )
    assert json.loads((run / "state.json").read_text())["precision"] == "mixed_bfloat16"
    # Measured slower now, the resumed run keeps what it started with.
    monkeypatch.setattr(precision, "product_times", lambda dtype, units, batch: (2e-3, 3e-3))
    messages.clear()
    train(str(run), resume=True, max_steps=4, jit_compile=False, verbose=0, log=messages.append)
    assert "; dtype policy mixed_bfloat16" in messages[0]
    assert messages[1] == "precision mixed_bfloat16, as chosen when the run started"
    assert keras.mixed_precision.global_policy().name == "float32"  # restored afterwards
