"""The run directory: its config round-trips, its checkpoints are found, and one writer
holds it at a time."""

import pytest

from lstm_textgen import rundir
from lstm_textgen.config import ModelConfig, TrainConfig
from lstm_textgen.errors import TextgenError


def test_the_config_round_trips_and_an_older_config_gains_new_fields(tmp_path):
    model, train = ModelConfig(units=8), TrainConfig(items="lines", max_steps=3)
    rundir.save_run_config(str(tmp_path), model, train)
    assert rundir.load_run_config(str(tmp_path)) == (model, train)
    text = (tmp_path / rundir.CONFIG_FILE).read_text().replace('"items": "lines",', "")
    (tmp_path / rundir.CONFIG_FILE).write_text(text)
    assert rundir.load_run_config(str(tmp_path))[1].items is None


def test_checkpoints_are_found_or_named_in_one_line(tmp_path):
    with pytest.raises(TextgenError, match="does not exist"):
        rundir.checkpoint_path(str(tmp_path / "nope"))
    with pytest.raises(TextgenError, match="not a training run directory"):
        rundir.checkpoint_path(str(tmp_path))
    rundir.save_run_config(str(tmp_path), ModelConfig(), TrainConfig())
    with pytest.raises(TextgenError, match="holds no trained model"):
        rundir.checkpoint_path(str(tmp_path))
    (tmp_path / rundir.LAST_CHECKPOINT).write_bytes(b"")
    assert rundir.checkpoint_path(str(tmp_path), "best").endswith(rundir.LAST_CHECKPOINT)


def test_the_writer_lock_admits_one_holder_and_is_free_again_after(tmp_path):
    with rundir.writer_lock(str(tmp_path)):
        assert (tmp_path / rundir.LOCK_FILE).read_text().startswith("pid ")
        with pytest.raises(TextgenError, match="is being trained by pid"):
            with rundir.writer_lock(str(tmp_path)):
                pass
    with rundir.writer_lock(str(tmp_path)):  # released when its holder is done
        pass
