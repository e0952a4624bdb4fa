"""Shared fixtures: tiny random models and vocabularies, the offline corpus, a trained run."""

import fcntl
import json
import os
import shutil
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_CORPUS = REPO.parent / "shared" / "data" / "tinyshakespeare"


def tfds_manual_dir():
    """Where tiny_shakespeare's input.txt lies: env var, then ../shared; None = download."""
    env = os.environ.get("LSTM_TEXTGEN_TFDS_MANUAL_DIR")
    if env:
        return env
    return str(SHARED_CORPUS) if (SHARED_CORPUS / "input.txt").is_file() else None


def built_once(tmp_path_factory, name, build):
    """`build(folder)` run once in a test session, by whichever pytest-xdist worker asks
    first; the other workers wait for it and read its result (paths, as JSON) instead of
    training and exporting the same model again."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the folder of this session that every worker shares
    folder, lock_path = base / name, base / f"{name}.lock"
    done = folder / "built.json"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            done.write_text(json.dumps({k: str(v) for k, v in build(folder).items()}))
    return {k: Path(v) for k, v in json.loads(done.read_text()).items()}


@pytest.fixture(scope="session")
def manual_dir():
    return tfds_manual_dir()


@pytest.fixture(autouse=True)
def library_log_as_it_was():
    """Put the `lstm_textgen` logger back after each test: `cli.main` run in-process sets
    it up to print warnings, which would hide them from the next test's `caplog`."""
    import logging

    log = logging.getLogger("lstm_textgen")
    saved = log.handlers[:], log.propagate, log.level
    yield
    log.handlers[:], log.propagate = saved[0], saved[1]
    log.setLevel(saved[2])


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def small_text():
    return (
        "the quick brown fox jumps over the lazy dog.\npack my box with five dozen liquor jugs!\n"
    ) * 30


@pytest.fixture(scope="session")
def trained_text_run(tmp_path_factory, small_text):
    """A tiny model trained for a few steps on a small text file (seconds, not minutes)."""
    from lstm_textgen.config import ModelConfig

    from helpers import train_tiny, write_corpus

    def build(root):
        corpus = write_corpus(root, small_text)
        run = root / "run"
        cwd = os.getcwd()
        os.chdir(root)  # train on a relative path: the run must store it absolute
        try:
            train_tiny(run, "corpus.txt", ModelConfig(units=8, num_layers=1, embedding_dim=4))
        finally:
            os.chdir(cwd)
        return {"run": run, "corpus": corpus}

    paths = built_once(tmp_path_factory, "text_run", build)
    return paths["run"], paths["corpus"]


@pytest.fixture(scope="session")
def served(tmp_path_factory, small_text):
    """One tiny run, trained and exported once for every SavedModel test (see saved_model)."""
    from saved_model import make_served

    return make_served(tmp_path_factory, small_text)


@pytest.fixture(scope="session")
def litert_exported(tmp_path_factory, small_text):
    """One tiny run exported to LiteRT for every LiteRT test (see litert_model)."""
    from litert_model import make_litert_exports

    return make_litert_exports(tmp_path_factory, small_text)


SHARED_BUILDS = ("served", "litert_exported", "trained_text_run")


@pytest.fixture(scope="session", autouse=True)
def shared_builds_split_between_workers(request):
    """Under pytest-xdist, each worker starts with its share of the `built_once` fixtures
    that the session's tests use (worker k builds every n-th, from the k-th), so the
    builds run side by side instead of one worker waiting on the other's lock."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return
    index, count = int(worker[2:]), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    used = [
        name
        for name in SHARED_BUILDS
        if any(name in item.fixturenames for item in request.session.items)
    ]
    for name in used[index::count]:
        request.getfixturevalue(name)


def pytest_collection_modifyitems(items):
    """The tests marked slow first (in their order): the workers of `-n auto` then end
    on short tests, instead of one of them on the longest while the other waits."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
