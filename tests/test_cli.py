"""The CLI as a user meets it: bad input ends in one clear line, never a traceback."""

import json
import os

import pytest

from lstm_textgen.errors import TextgenError

from helpers import cli_in_process, error_lines, run_cli


def assert_one_line_error(result, *fragments):
    lines = error_lines(result)
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("lstm-textgen: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize(
    "command", ["train", "generate", "evaluate", "export", "plot", "inspect", "bench"]
)
def test_every_command_documents_itself(command):
    result = run_cli(command, "--help")
    assert result.returncode == 0
    assert "usage:" in result.stdout
    assert command == "bench" or "--run" in result.stdout


def in_process_error(capsys, *argv):
    """`lstm-textgen ARGV` run in this process: its one error line (exit status 2)."""
    from lstm_textgen.cli import main

    status = main([str(a) for a in argv])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert status == 2 and len(lines) == 1, lines
    assert lines[0].startswith("lstm-textgen: error: "), lines[0]
    return lines[0]


def test_train_bad_corpora_are_one_line_errors_and_leave_no_run_folder(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("d\xe9j\xe0 vu\n".encode("latin-1") * 50)
    binary = tmp_path / "image.bin"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 20)
    short = tmp_path / "short.txt"
    short.write_text("To be, or not to be.\n")
    cases = [
        (tmp_path / "missing.txt", "does not exist"),
        (tmp_path / "none-*.txt", "matches no file"),
        (tmp_path, "is not a regular file"),
        (empty, "is empty"),
        (latin1, "not UTF-8"),
        (binary, "is a binary file, not text"),
        (short, "fewer than seq_len + 1"),
    ]
    for path, fragment in cases:
        line = in_process_error(
            capsys, "train", "--run", tmp_path / "run", "--text-file", path, "--seq-len", "100"
        )
        assert fragment in line
        assert "iconv" not in line or fragment == "not UTF-8"
        assert not (tmp_path / "run").exists(), fragment


def test_bad_command_lines_are_one_line_errors_that_name_the_argument(capsys):
    line = in_process_error(capsys, "generate", "--bogus")
    assert "unrecognized arguments: --bogus" in line and "generate --help" in line
    line = in_process_error(capsys, "train", "--bogus", "1")
    assert "unrecognized arguments: --bogus" in line
    assert "--run" in in_process_error(capsys, "train")
    assert "invalid int value: 'x'" in in_process_error(capsys, "generate", "--num-chars", "x")
    assert "invalid choice" in in_process_error(capsys, "train", "--run", "r", "--items", "words")
    line = in_process_error(capsys, "generate", "--model-name", "m", "--num-chars", "1")
    assert "--model-name names a model on a TF Serving server; give --server too" in line


def test_a_run_in_use_is_refused_before_tensorflow_starts(tmp_path):
    import subprocess
    import sys

    from lstm_textgen.store.run_dir import writer_lock

    # TensorFlow cannot be imported in the child: the refusal must come before it.
    code = (
        "import sys; sys.modules['tensorflow'] = None; from lstm_textgen.cli import main; "
        f"sys.exit(main(['train', '--run', {str(tmp_path)!r}, '--text-file', 'x.txt']))"
    )
    with writer_lock(str(tmp_path)):
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert "is being trained by pid" in result.stderr and "Traceback" not in result.stderr


def test_generate_bad_requests(trained_text_run, tmp_path):
    run, _ = trained_text_run
    assert_one_line_error(run_cli("generate", "--run", run, "--temperature", "-0.5"), "temperature")
    assert_one_line_error(cli_in_process("generate", "--run", run, "--top-p", "1.5"), "top-p")
    assert_one_line_error(cli_in_process("generate", "--run", run, "--top-p", "0"), "top-p")
    assert_one_line_error(cli_in_process("generate", "--run", tmp_path), "not a training run")
    assert_one_line_error(cli_in_process("generate", "--run", tmp_path / "nope"), "does not exist")


def test_run_dir_without_a_model(trained_text_run, tmp_path):
    run, _ = trained_text_run
    half = tmp_path / "half"
    half.mkdir()
    for name in ("config.json", "vocab.json"):
        (half / name).write_text((run / name).read_text())
    assert_one_line_error(cli_in_process("generate", "--run", half), "holds no trained model")
    assert_one_line_error(cli_in_process("train", "--run", half, "--resume"), "nothing to resume")


def test_prompt_with_unseen_characters_is_skipped_with_a_warning(trained_text_run):
    run, _ = trained_text_run
    result = cli_in_process(
        "generate", "--run", run, "--prompt", "the Ωfox", "--num-chars", "20", "--seed", "1"
    )
    assert result.returncode == 0, result.stderr
    assert error_lines(result) == [
        "warning: the model never saw 'Ω' in training; those prompt characters are skipped"
    ]
    assert result.stdout.startswith("the Ωfox")
    assert len(result.stdout.rstrip("\n")) >= len("the Ωfox")


def test_generate_is_reproducible_and_batched(trained_text_run):
    run, _ = trained_text_run
    args = (
        "generate",
        "--run",
        run,
        "--prompt",
        "the",
        "--num-chars",
        "40",
        "--seed",
        "5",
        "--batch",
        "2",
    )
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    assert first.stdout == cli_in_process(*args).stdout  # another process, the same text
    assert first.stdout.count("----- sample") == 2


def test_training_twice_into_one_run_dir_needs_resume(trained_text_run):
    run, corpus = trained_text_run
    result = cli_in_process("train", "--run", run, "--text-file", corpus)
    assert_one_line_error(result, "--resume")


def test_evaluate_reports_nats_and_bits(trained_text_run):
    run, corpus = trained_text_run
    result = cli_in_process("evaluate", "--run", run, "--text-file", corpus)
    assert result.returncode == 0, result.stderr
    words = result.stdout.split()
    nats, bits = float(words[2]), float(words[5])
    assert words[3] == "nats/char" and words[6] == "bits/char"
    assert abs(bits - nats / 0.6931471805599453) < 1e-3
    state = json.loads((run / "state.json").read_text())
    assert state["step"] == 4
    assert_one_line_error(
        cli_in_process("evaluate", "--run", run, "--split", "test"), "no test split"
    )


def test_damaged_checkpoint_and_state_are_one_line_errors(trained_text_run, tmp_path):
    import shutil

    run, _ = trained_text_run
    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    (broken / "best.keras").write_bytes(b"not a zip file")
    assert_one_line_error(cli_in_process("generate", "--run", broken), "cannot load checkpoint")
    (broken / "state.json").write_text("{truncated")
    assert_one_line_error(
        cli_in_process("train", "--run", broken, "--resume", "--max-steps", "9"),
        "state.json is corrupt",
    )


def test_out_of_range_numbers_are_one_line_errors(trained_text_run):
    run, corpus = trained_text_run
    assert_one_line_error(
        cli_in_process("evaluate", "--run", run, "--text-file", corpus, "--batch-size", "0"),
        "--batch-size",
    )
    assert_one_line_error(cli_in_process("generate", "--run", run, "--seed", str(2**70)), "--seed")
    assert_one_line_error(
        cli_in_process("generate", "--server", "localhost:8501", "--model-name", "m"), "http://"
    )
    assert_one_line_error(
        cli_in_process("generate", "--saved-model", run, "--num-chars", "20000"), "10,000"
    )


def test_carry_state_on_several_replicas_is_a_one_line_error(tmp_path, small_text):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(small_text, encoding="utf-8")
    result = run_cli(
        *("train", "--run", tmp_path / "run", "--text-file", corpus, "--carry-state"),
        *("--units", "4", "--layers", "1", "--max-steps", "2"),
        *("--strategy", "mirrored", "--cpu-replicas", "2"),
    )
    assert_one_line_error(result, "--carry-state trains on one device")


def test_resume_keeps_the_config_and_warns_about_ignored_flags(trained_text_run, tmp_path):
    import shutil

    run, corpus = trained_text_run
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    config_before = (copy / "config.json").read_text()
    # Relative --text-file paths were stored absolute, so resuming from elsewhere works,
    # and the same file named relatively is not reported as ignored.
    result = cli_in_process(
        "train",
        "--run",
        copy,
        "--resume",
        "--max-steps",
        "2",
        "--units",
        "999",
        "--text-file",
        corpus.name,
        cwd=corpus.parent,
    )
    assert result.returncode == 0, result.stderr
    assert error_lines(result)[0] == "warning: --units is ignored with --resume (the run keeps 8)"
    assert "--text-file" not in result.stderr
    assert "nothing to do" in result.stderr
    assert (copy / "config.json").read_text() == config_before


def test_plot_and_tensorboard_logs(trained_text_run, tmp_path):
    run, _ = trained_text_run
    out = tmp_path / "curves.png"
    result = cli_in_process("plot", "--run", run, "--out", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000
    for split in ("train", "validation"):
        assert any(
            name.startswith("events.out.tfevents") for name in os.listdir(run / "logs" / split)
        )
    assert_one_line_error(cli_in_process("plot", "--run", tmp_path), "holds no state.json")


def parse_train(*flags):
    """The configs `lstm-textgen train` builds from these flags."""
    from lstm_textgen.cli import build_parser
    from lstm_textgen.cli.train import config_settings
    from lstm_textgen.config import make_configs

    args = build_parser().parse_args(["train", "--run", "r", *flags])
    return make_configs(args.preset, **config_settings(args))


def test_a_preset_sets_the_defaults_and_given_flags_override_it():
    from lstm_textgen.config import PRESETS, ModelConfig, TrainConfig, preset_configs

    preset_model, preset_train = preset_configs("shakespeare")
    assert (preset_model.units, preset_train.lr_schedule) == (
        PRESETS["shakespeare"]["model"]["units"],
        "cosine",
    )
    model, train = parse_train("--preset", "shakespeare", "--units", "100")
    assert model.units == 100 and model.num_layers == preset_model.num_layers
    assert model.dropout == preset_model.dropout and train.max_steps == preset_train.max_steps
    # Without a preset, the dataclass defaults are the flags' defaults.
    assert parse_train() == (ModelConfig(), TrainConfig())
    model, train = parse_train(
        "--layers", "3", "--tfds", "x", "--text-file", "a", "--text-file", "b"
    )
    assert (model.num_layers, train.tfds_name, train.text_files) == (3, "x", ["a", "b"])
    with pytest.raises(Exception, match="unknown preset"):
        preset_configs("nope")


def test_mixed_precision_is_auto_by_default_and_the_bare_flag_means_on():
    from lstm_textgen.config import TrainConfig
    from lstm_textgen.errors import TextgenError

    assert parse_train()[1].mixed_precision == "auto"
    assert parse_train("--mixed-precision")[1].mixed_precision == "on"
    assert parse_train("--mixed-precision", "off")[1].mixed_precision == "off"
    # The config.json of a run from before auto held a switch.
    assert TrainConfig(mixed_precision=True).mixed_precision == "on"
    assert TrainConfig(mixed_precision=False).mixed_precision == "off"
    with pytest.raises(TextgenError, match="must be one of auto, on, off"):
        TrainConfig(mixed_precision="sometimes").validate()


def test_a_preset_length_is_replaced_by_epochs_but_both_given_is_an_error():
    from lstm_textgen.config import PRESETS

    # Bug: --max-steps equal to the preset's value was silently dropped beside --epochs.
    model, train = parse_train("--preset", "shakespeare", "--epochs", "2")
    assert (train.epochs, train.max_steps) == (2, None)
    preset_steps = str(PRESETS["shakespeare"]["train"]["max_steps"])
    _, train = parse_train("--preset", "shakespeare", "--epochs", "2", "--max-steps", preset_steps)
    with pytest.raises(TextgenError, match="either epochs or max_steps"):
        train.validate()


def test_resume_ignores_only_flags_that_differ_from_the_run(tmp_path, monkeypatch):
    # Bug: a relative --text-file was compared with the absolute path the run stores.
    from lstm_textgen.config import ModelConfig, TrainConfig, ignored_on_resume

    monkeypatch.chdir(tmp_path)
    saved = (ModelConfig(units=8), TrainConfig(text_files=[str(tmp_path / "corpus.txt")]))
    assert ignored_on_resume(saved, {"text_files": ["corpus.txt"], "max_steps": 9}) == []
    assert ignored_on_resume(saved, {"units": 9, "text_files": ["other.txt"]}) == [
        "--units is ignored with --resume (the run keeps 8)",
        f"--text-file is ignored with --resume (the run keeps {[str(tmp_path / 'corpus.txt')]!r})",
    ]


def test_main_called_twice_in_one_process_prints_each_warning_once(tmp_path, capsys):
    # Bug: every main() call added another log handler.
    import logging

    from lstm_textgen.cli import main

    library_log = logging.getLogger("lstm_textgen")
    saved = library_log.handlers[:], library_log.propagate, library_log.level
    try:
        for _ in range(2):
            assert main(["plot", "--run", str(tmp_path)]) == 2
        library_log.warning("once")
        assert capsys.readouterr().err.count("warning: once") == 1
    finally:
        library_log.handlers[:], library_log.propagate = saved[0], saved[1]
        library_log.setLevel(saved[2])


def test_stream_prints_the_text_that_generate_prints_and_refuses_a_batch(trained_text_run):
    run, _ = trained_text_run
    args = ["generate", "--run", run, "--prompt", "th", "--num-chars", "50"]
    args += ["--seed", "3", "--stop", "xyz", "--show-finish-reason"]
    plain = cli_in_process(*args)
    streamed = cli_in_process(*args, "--stream")
    assert plain.returncode == 0 and streamed.returncode == 0, streamed.stderr
    assert streamed.stdout == plain.stdout
    refused = cli_in_process(*args, "--stream", "--batch", "2")
    assert refused.returncode != 0 and "--stream prints one sample" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


def test_show_logprobs_prints_the_totals_and_least_likely_characters(trained_text_run):
    run, _ = trained_text_run
    shown = cli_in_process(
        "generate", "--run", run, "--num-chars", "30", "--seed", "1",
        "--show-logprobs", "--temperature", "0",
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    text, report = shown.stdout.splitlines()[-2:]
    assert report.startswith("[logprob: -") and "least likely: " in report
    assert "0.00 as sampled" in report  # greedy: every pick is certain


@pytest.mark.slow  # two fresh processes that start TensorFlow
def test_a_prompt_with_a_byte_that_is_not_utf8_is_skipped_with_the_warning(litert_exported):
    """The shell hands Python such a byte as a lone surrogate (surrogateescape)."""
    import subprocess
    import sys

    from conftest import REPO

    settings = ["--num-chars", "20", "--seed", "1"]
    clean = cli_in_process(
        "generate", "--run", litert_exported["run"], "--prompt", "the ", *settings
    )
    assert clean.returncode == 0, clean.stderr
    for source, path in (("--run", "run"), ("--saved-model", "saved_model")):
        args = ["generate", source, str(litert_exported[path]), *settings, "--prompt", b"th\xffe "]
        result = subprocess.run(
            [sys.executable, "-m", "lstm_textgen", *args],
            capture_output=True,
            cwd=REPO,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr.decode()
        assert b"never saw" in result.stderr and b"skipped" in result.stderr, source
        # The prompt is echoed as given; the text after it is the clean prompt's.
        assert result.stdout == b"th\xffe " + clean.stdout[len("the ") :].encode(), source


def test_save_state_and_continue_give_the_text_of_one_long_request(litert_exported, tmp_path):
    run, state = litert_exported["run"], tmp_path / "state.json"
    settings = ["--temperature", "0.9", "--seed", "5", "--batch", "2"]
    whole = cli_in_process(
        "generate", "--run", run, "--prompt", "the ", "--num-chars", "30", *settings
    )
    assert whole.returncode == 0, whole.stderr
    first = cli_in_process(
        "generate", "--run", run, "--prompt", "the ", "--num-chars", "12", *settings,
        "--save-state", state,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert json.loads(state.read_text())["rows"][1]["seed"] == 6
    # The seeds come from the file; a LiteRT export of the same model goes on as well.
    for source in (("--run", run), ("--litert", litert_exported["fp32"])):
        rest = cli_in_process(
            "generate", *source, "--num-chars", "18", "--temperature", "0.9", "--continue", state
        )
        assert rest.returncode == 0, rest.stderr
        samples = [p.split("\n", 1)[1] for p in first.stdout.split("----- sample ")[1:]]
        tails = [p.split("\n", 1)[1] for p in rest.stdout.split("----- sample ")[1:]]
        joined = [a.rstrip("\n") + b for a, b in zip(samples, tails)]
        assert "----- sample 1 -----\n" + "----- sample 2 -----\n".join(joined) == whole.stdout


def test_a_state_file_that_is_not_one_is_refused_in_one_line(litert_exported, tmp_path):
    run, state = litert_exported["run"], tmp_path / "state.json"
    made = cli_in_process("generate", "--run", run, "--num-chars", "5", "--save-state", state)
    assert made.returncode == 0, made.stderr
    good = json.loads(state.read_text())
    nan_h = [[float("nan")] * len(row) for row in good["rows"][0]["h"]]
    cases = {
        "truncated.json": (state.read_text()[:40], "it is truncated or damaged"),
        "other.json": (json.dumps({"rows": []}), "is not a generation state"),
        "model.json": (json.dumps({**good, "model": "9x9:0123456789ab"}), "another model"),
        "shape.json": (
            json.dumps({**good, "rows": [{**good["rows"][0], "h": [[0.0]], "c": [[0.0]]}]}),
            "cannot continue this model",
        ),
        "nan.json": (
            json.dumps({**good, "rows": [{**good["rows"][0], "h": nan_h}]}),
            "finite",
        ),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text)
        result = cli_in_process("generate", "--run", run, "--continue", tmp_path / name)
        assert result.returncode == 2, (name, result.stderr)
        lines = error_lines(result)
        assert len(lines) == 1 and message in lines[0], (name, lines)
    missing = cli_in_process("generate", "--run", run, "--continue", tmp_path / "none.json")
    assert "cannot read the state" in missing.stderr
