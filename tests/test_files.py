"""Atomic writes: a file appears whole or not at all, and a kill's leftovers are found."""

import os

import pytest

from lstm_textgen.files import (
    TMP_MARK,
    atomic_copy,
    atomic_path,
    atomic_write_text,
    remove_partial_writes,
)


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path):
    path = tmp_path / "state.json"
    atomic_write_text(str(path), "old")
    with pytest.raises(RuntimeError):
        with atomic_path(str(path)) as tmp:
            with open(tmp, "w") as f:
                f.write("half")
            raise RuntimeError("killed mid-write")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["state.json"]


def test_writes_and_copies_replace_the_file_whole(tmp_path):
    src, dst = tmp_path / "a.txt", tmp_path / "b.txt"
    atomic_write_text(str(src), "Ωmega\n")
    atomic_copy(str(src), str(dst))
    assert dst.read_text(encoding="utf-8") == "Ωmega\n"
    with atomic_path(str(tmp_path / "m.keras"), suffix=".keras") as tmp:
        assert tmp.endswith(".keras") and TMP_MARK in tmp
        open(tmp, "wb").close()
    assert sorted(os.listdir(tmp_path)) == ["a.txt", "b.txt", "m.keras"]


def test_remove_partial_writes_deletes_only_temporaries(tmp_path):
    (tmp_path / "last.keras").write_bytes(b"whole")
    (tmp_path / f"last.keras{TMP_MARK}123.keras").write_bytes(b"half")
    remove_partial_writes(str(tmp_path), str(tmp_path / "missing"))
    assert os.listdir(tmp_path) == ["last.keras"]
