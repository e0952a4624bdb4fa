"""The (input, target) windows fed to training and evaluation."""

import numpy as np
import pytest

from lstm_textgen.data import windows as data
from lstm_textgen.errors import TextgenError


def test_windows_shift_targets_by_one_and_cover_every_character_once():
    ids = np.arange(23, dtype=np.int32)
    batches = list(data.make_dataset(ids, seq_len=5, batch_size=2))
    inputs = np.concatenate([x.numpy() for x, _ in batches])
    targets = np.concatenate([y.numpy() for _, y in batches])
    assert inputs.shape == (4, 5)  # (23 - 1) // 5 windows
    np.testing.assert_array_equal(targets, inputs + 1)
    np.testing.assert_array_equal(np.sort(targets.ravel()), np.arange(1, 21))


def windows_of(dataset, count):
    return [x.numpy()[:, 0] // 4 for x, _ in dataset.take(count)]  # window numbers


def test_training_batches_cover_each_window_once_per_epoch_and_restart_exactly():
    ids = np.arange(50, dtype=np.int32)  # 12 windows of 4, batches of 3: 4 steps per epoch
    stream = data.make_train_dataset(ids, 4, 3, seed=1)
    for x, y in stream.take(10):
        assert x.shape == (3, 4)
        np.testing.assert_array_equal(y.numpy(), x.numpy() + 1)
    batches = windows_of(stream, 12)
    for epoch in range(3):
        assert sorted(np.concatenate(batches[4 * epoch : 4 * epoch + 4])) == list(range(12))
    assert not np.array_equal(np.concatenate(batches[:4]), np.concatenate(batches[4:8]))
    for start in (1, 4, 7):  # a run resumed at step `start` sees the same batches
        resumed = windows_of(data.make_train_dataset(ids, 4, 3, seed=1, start_step=start), 3)
        np.testing.assert_array_equal(resumed, batches[start : start + 3])
    other_seed = windows_of(data.make_train_dataset(ids, 4, 3, seed=2), 4)
    assert not np.array_equal(other_seed, batches[:4])


def test_batches_larger_than_an_epoch_straddle_epochs():
    ids = np.arange(13, dtype=np.int32)  # 3 windows of 4, batches of 5
    stream = windows_of(data.make_train_dataset(ids, 4, 5, seed=0), 3)
    flat = np.concatenate(stream)
    for epoch in range(5):
        assert sorted(flat[3 * epoch : 3 * epoch + 3]) == [0, 1, 2]
    resumed = windows_of(data.make_train_dataset(ids, 4, 5, seed=0, start_step=2), 1)
    np.testing.assert_array_equal(resumed[0], stream[2])


def test_stream_batches_continue_each_row_where_the_batch_before_ended():
    ids = np.arange(71, dtype=np.int32)  # 14 windows of 5: 3 streams of 4 windows, 2 left out
    assert data.stream_batches(len(ids), 5, 3) == 4
    stream = [(x.numpy(), y.numpy()) for x, y in data.make_stream_dataset(ids, 5, 3).take(9)]
    for x, y in stream:
        assert x.shape == (3, 5)
        np.testing.assert_array_equal(y, x + 1)
    for (_, y), (next_x, _) in zip(stream[:3], stream[1:4]):
        np.testing.assert_array_equal(next_x[:, 0], y[:, -1])  # row b goes on where it ended
    # Row b reads stream b: characters b * 20 ... b * 20 + 20, in order.
    text = np.concatenate([x for x, _ in stream[:4]], axis=1)
    np.testing.assert_array_equal(text, np.arange(60).reshape(3, 20))
    for start in (4, 8):  # each pass starts the streams again
        np.testing.assert_array_equal(stream[start][0], stream[0][0])
    for start in (2, 5):  # a run resumed at step `start` sees the same batches
        resumed = next(iter(data.make_stream_dataset(ids, 5, 3, start_step=start)))[0]
        np.testing.assert_array_equal(resumed.numpy(), stream[start][0])
    with pytest.raises(TextgenError, match="smaller batch_size or seq_len"):
        data.make_stream_dataset(ids, 5, 15)


def test_text_too_short_for_one_window():
    with pytest.raises(TextgenError, match="seq_len"):
        data.check_length("abc", 3, "training")
    with pytest.raises(TextgenError, match="a smaller seq_len") as raised:
        data.make_dataset(np.arange(3, dtype=np.int32), 3, 1)
    assert "a smaller --seq-len or more text" in raised.value.for_command_line()
