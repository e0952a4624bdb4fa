"""The run directory: its config round-trips, its checkpoints are found, and one writer
holds it at a time."""

import json
import os

import pytest

from lstm_textgen.config import ModelConfig, TrainConfig
from lstm_textgen.errors import TextgenError
from lstm_textgen.store import checkpoints, loading
from lstm_textgen.store import run_dir as rundir


def test_the_config_round_trips_and_an_older_config_gains_new_fields(tmp_path):
    model, train = ModelConfig(units=8), TrainConfig(items="lines", max_steps=3)
    rundir.save_run_config(str(tmp_path), model, train)
    assert rundir.load_run_config(str(tmp_path)) == (model, train)
    text = (tmp_path / rundir.CONFIG_FILE).read_text().replace('"items": "lines",', "")
    (tmp_path / rundir.CONFIG_FILE).write_text(text)
    assert rundir.load_run_config(str(tmp_path))[1].items is None


def test_checkpoints_are_found_or_named_in_one_line(tmp_path):
    with pytest.raises(TextgenError, match="does not exist"):
        loading.checkpoint_path(str(tmp_path / "nope"))
    with pytest.raises(TextgenError, match="not a training run directory"):
        loading.checkpoint_path(str(tmp_path))
    rundir.save_run_config(str(tmp_path), ModelConfig(), TrainConfig())
    with pytest.raises(TextgenError, match="holds no trained model"):
        loading.checkpoint_path(str(tmp_path))
    (tmp_path / rundir.LAST_CHECKPOINT).write_bytes(b"")
    assert loading.checkpoint_path(str(tmp_path), "best").endswith(rundir.LAST_CHECKPOINT)


def test_the_writer_lock_admits_one_holder_and_is_free_again_after(tmp_path):
    with rundir.writer_lock(str(tmp_path)):
        assert (tmp_path / rundir.LOCK_FILE).read_text().startswith("pid ")
        with pytest.raises(TextgenError, match="is being trained by pid"):
            with rundir.writer_lock(str(tmp_path)):
                pass
    with rundir.writer_lock(str(tmp_path)):  # released when its holder is done
        pass


@pytest.mark.parametrize(
    ("implementation", "old_group"), [("gates", "vars"), ("keras", "_keras_lstm/cell/vars")]
)
def test_a_checkpoint_in_the_old_weights_layout_still_loads(tmp_path, implementation, old_group):
    # Checkpoints written before GateLSTM had a cell keep its weights in the layer itself
    # (or in its Keras delegate); loading moves them to the cell.
    import zipfile

    import h5py
    import numpy as np
    import tensorflow as tf

    from lstm_textgen.model.language_model import CharLanguageModel

    config = ModelConfig(
        vocab_size=7, units=4, num_layers=2, embedding_dim=3, implementation=implementation
    )
    model = CharLanguageModel.from_model_config(config)
    model(tf.zeros([1, 2], tf.int32))
    path = tmp_path / "new.keras"
    model.save(path)

    old = tmp_path / "old.keras"
    weights_file = tmp_path / "model.weights.h5"
    with zipfile.ZipFile(path) as archive:
        weights_file.write_bytes(archive.read("model.weights.h5"))
        with h5py.File(weights_file, "r+") as weights:
            for name in weights["layers"]:
                group = weights["layers"][name]
                del group["vars"]
                group.move("cell/vars", old_group)
                del group["cell"]
                group.require_group("vars")
        with zipfile.ZipFile(old, "w") as copy:
            for item in archive.infolist():
                data = archive.read(item)
                if item.filename == "model.weights.h5":
                    data = weights_file.read_bytes()
                copy.writestr(item, data)

    with pytest.raises(ValueError):  # Keras alone cannot read the old layout
        import keras

        keras.models.load_model(old)
    loaded = checkpoints.load_checkpoint(str(old), compile=False)
    for a, b in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_lock_names_its_holder_only_while_it_runs_and_is_checked_without_taking_it(tmp_path):
    rundir.check_not_in_use(str(tmp_path))  # no lock file yet: free
    with rundir.writer_lock(str(tmp_path)):
        with pytest.raises(TextgenError, match="is being trained by pid"):
            rundir.check_not_in_use(str(tmp_path))
    assert (tmp_path / rundir.LOCK_FILE).read_text() == ""
    rundir.check_not_in_use(str(tmp_path))


def test_a_missing_best_checkpoint_falls_back_to_the_last_with_a_warning(
    trained_text_run, tmp_path, caplog
):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_text_run[0], run)
    (run / rundir.BEST_CHECKPOINT).unlink()
    with caplog.at_level("WARNING", logger="lstm_textgen"):
        assert loading.checkpoint_path(str(run), "best").endswith(rundir.LAST_CHECKPOINT)
    assert f"holds no {rundir.BEST_CHECKPOINT}; using {rundir.LAST_CHECKPOINT}" in caplog.text


def test_the_run_state_round_trips_and_an_older_state_reads_as_not_yet_settled(tmp_path):
    assert rundir.read_state(str(tmp_path)) == rundir.RunState()
    state = rundir.RunState(step=4, best_val_loss=2.5, best_step=4, xla=False, precision="float32")
    state.history.append(rundir.HistoryRecord(step=4, train_loss=2.7, val_loss=2.5))
    state.history.append(rundir.HistoryRecord(8, 2.6, 2.4, val_loss_carried=2.3))
    rundir.write_state(str(tmp_path), state)
    assert rundir.read_state(str(tmp_path)) == state
    saved = json.loads((tmp_path / rundir.STATE_FILE).read_text())
    assert saved["history"][0] == {"step": 4, "train_loss": 2.7, "val_loss": 2.5}
    assert saved["history"][1]["val_loss_carried"] == 2.3
    assert list(saved) == ["step", "best_val_loss", "best_step", "history", "xla", "precision"]
    # A state.json from before the XLA mode and the precision were kept has neither: the
    # resume reads them from the checkpoint instead.
    del saved["xla"], saved["precision"]
    (tmp_path / rundir.STATE_FILE).write_text(json.dumps(saved))
    assert rundir.read_state(str(tmp_path)).xla is None
    assert rundir.read_state(str(tmp_path)).precision is None


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"step": 1, "history": 3, "x": {}}'])
def test_a_damaged_run_state_is_one_line_naming_the_fix(tmp_path, text):
    (tmp_path / rundir.STATE_FILE).write_text(text)
    with pytest.raises(TextgenError, match="corrupt .*; delete it to resume without history"):
        rundir.read_state(str(tmp_path))


def test_a_run_dir_joins_its_paths_and_goes_where_a_path_goes(tmp_path):
    run = rundir.RunDir(str(tmp_path / "run"))
    assert os.fspath(run) == str(tmp_path / "run") == str(run)
    assert run.checkpoint("best") == str(tmp_path / "run" / rundir.BEST_CHECKPOINT)
    assert run.checkpoint("last") == str(tmp_path / "run" / rundir.LAST_CHECKPOINT)
    assert run.config_file == str(tmp_path / "run" / rundir.CONFIG_FILE)
    assert run.ids_file("validation") == str(tmp_path / "run" / "data" / "validation.ids")
    rundir.make_run_dir(run)
    assert os.path.isdir(tmp_path / "run")


def test_checkpoint_info_round_trips_through_a_checkpoint_and_an_old_file_reads_empty(tmp_path):
    import zipfile

    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    info = checkpoints.CheckpointInfo(step=6, train_loss=2.0, val_loss=1.5, xla=False)
    path = str(tmp_path / "last.keras")
    checkpoints.save_checkpoint(model, path, info)
    assert checkpoints.read_checkpoint_info(path) == info
    with zipfile.ZipFile(path) as archive:
        assert json.loads(archive.read(checkpoints.CHECKPOINT_INFO)) == {
            "step": 6,
            "train_loss": 2.0,
            "val_loss": 1.5,
            "xla": False,
        }
    model.save(str(tmp_path / "plain.keras"))
    assert checkpoints.read_checkpoint_info(str(tmp_path / "plain.keras")) == (
        checkpoints.CheckpointInfo()
    )
