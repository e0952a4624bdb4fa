"""The shipped model (saved_models/shakespeare): its files are the ones its card lists, it
scores what its card says, every backend gives the same text from it, TF Serving's loader
serves it, and `generate` uses it when no model is named."""

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lstm_textgen.evaluation.run import evaluate_run
from lstm_textgen.generation import open_model as backends
from lstm_textgen.generation.backends.litert import LiteRTModel
from lstm_textgen.generation.backends.saved_model import SavedModelGenerator
from lstm_textgen.generation.open_model import open_generator, open_shipped_generator
from lstm_textgen.generation.request import GenerationRequest
from lstm_textgen.store.shipped import shipped_model

from conftest import REPO
from helpers import error_lines, run_cli
from saved_model import generate_request, outputs_of, serve_tf1, texts

SHIPPED = shipped_model()
CARD = json.loads((Path(SHIPPED.folder) / "card.json").read_text(encoding="utf-8"))
REQUEST = GenerationRequest(
    ["ROMEO:", "JULIET:\n", ""],
    num_chars=120,
    temperature=[0.8, 0.0, 1.0],
    top_k=[0, 0, 20],
    top_p=[1.0, 1.0, 0.9],
    seed=7,
    stop=[["\n\n"], [], ["."]],
)


def test_the_shipped_model_lies_in_the_repository_checkout():
    assert Path(SHIPPED.folder) == REPO / "saved_models" / "shakespeare"


def test_the_shipped_files_are_the_ones_the_card_lists():
    folder = Path(SHIPPED.folder)
    found = {
        str(path.relative_to(folder))
        for path in folder.rglob("*")
        if path.is_file() and path.name not in ("README.md", "card.json")
    }
    assert found == set(CARD["files"])
    for relative, entry in CARD["files"].items():
        content = (folder / relative).read_bytes()
        assert len(content) == entry["bytes"], relative
        assert hashlib.sha256(content).hexdigest() == entry["sha256"], relative
    assert sum(e["bytes"] for e in CARD["files"].values()) < 35 * 2**20


def test_the_card_page_is_made_from_card_json():
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        from build_shipped_model import render
    finally:
        sys.path.pop(0)
    assert (Path(SHIPPED.folder) / "README.md").read_text(encoding="utf-8") == render(CARD)


def test_the_shipped_model_scores_the_test_split_as_its_card_says(manual_dir):
    result = evaluate_run("shakespeare", split="test", manual_dir=manual_dir)
    assert abs(result.nats_per_char - CARD["losses"]["test"]["100"]) < 0.01


def test_savedmodel_and_litert_give_the_same_text_from_the_shipped_model():
    saved = SavedModelGenerator(SHIPPED.saved_model).complete(REQUEST)
    litert = LiteRTModel(SHIPPED.litert).complete(REQUEST)
    assert [(c.text, c.finish_reason) for c in saved] == [(c.text, c.finish_reason) for c in litert]
    assert saved[0].finish_reason in ("stop", "length") and len(saved[1].text) == 120
    assert CARD["sample"]["text"].startswith(CARD["sample"]["prompt"])


def test_the_default_generator_is_the_shipped_litert_file_or_else_its_savedmodel(monkeypatch):
    generator = open_generator()
    assert isinstance(generator, LiteRTModel) and generator.path == SHIPPED.litert
    monkeypatch.setattr(backends, "litert_installed", lambda: False)
    fallback = open_shipped_generator()
    assert isinstance(fallback, SavedModelGenerator)
    assert fallback.complete(REQUEST) == generator.complete(REQUEST)


def test_generate_with_no_model_uses_the_shipped_one_from_any_folder(tmp_path):
    args = ("generate", "--prompt", "ROMEO:", "--num-chars", "60", "--temperature", "0.8")
    result = run_cli(*args, "--seed", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [line] = error_lines(result)
    assert "shipped model" in line and "LiteRT" in line
    request = GenerationRequest("ROMEO:", num_chars=60, temperature=0.8, seed=1)
    expected = SavedModelGenerator(SHIPPED.saved_model).complete(request)[0].text
    assert result.stdout == "ROMEO:" + expected + "\n"


def test_tf_servings_loader_serves_the_shipped_export(tmp_path):
    version_dir = os.path.join(SHIPPED.saved_model, "1")
    request = GenerationRequest(
        ["ROMEO:", ""],
        num_chars=[80, 40],
        temperature=[0.8, 0.0],
        top_k=[0, 5],
        top_p=[0.95, 1.0],
        seed=[1, 2],
        stop=[["\n\n"], []],
    )
    [response] = serve_tf1(version_dir, [generate_request(request)], tmp_path)
    expected = [c.text for c in LiteRTModel(SHIPPED.litert).complete(request)]
    assert texts(outputs_of(response)["text"]) == expected


@pytest.mark.slow
def test_a_plain_pip_install_carries_the_shipped_model(tmp_path):
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(REPO)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-2000:]
    code = "from lstm_textgen.store.shipped import shipped_model; print(shipped_model().folder)"
    env = {**os.environ, "PYTHONPATH": str(target)}
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert found.stdout.strip() == str(target / "lstm_textgen" / "saved_models" / "shakespeare")
    args = ("generate", "--num-chars", "30", "--seed", "3")
    result = run_cli(*args, env={"PYTHONPATH": str(target)}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert str(target) in result.stderr and len(result.stdout) == 31


def test_inspect_and_the_litert_export_start_from_the_shipped_model(tmp_path):
    from lstm_textgen.export.litert import export_litert
    from lstm_textgen.reports.inspect_gates import inspect_run

    text = "ROMEO:\nWhat light through yonder window breaks?"
    html, png, _ = inspect_run(None, text, str(tmp_path / "gates.html"), units=[0, 1])
    shown = "".join(re.findall(r">([^<])</span>", Path(html).read_text(encoding="utf-8")))
    assert "yonder window" in shown and Path(png).is_file()
    path = export_litert(None, str(tmp_path / "again.tflite"))
    request = GenerationRequest("KING", num_chars=50, temperature=0.5, seed=4)
    assert LiteRTModel(path).complete(request) == LiteRTModel(SHIPPED.litert).complete(request)
