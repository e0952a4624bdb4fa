"""Atomic writes: a reader (or a process restarted after a kill) never sees half a file.

Every file the toolkit writes goes through `atomic_path`: it is written under a temporary
name in the same folder, flushed to disk and renamed over the final name. Temporary names
contain `TMP_MARK`, so a restarted run can find and delete what a kill left behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil

TMP_MARK = ".tmp-"


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = ""):
    """Yield a temporary path beside `path`; on success it is synced and renamed to `path`.

    `suffix` keeps an extension that a writer insists on (Keras wants `.keras`). If the
    body raises, the temporary file is removed and `path` is left as it was.
    """
    tmp = f"{path}{TMP_MARK}{os.getpid()}{suffix}"
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_text(path: str, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


def atomic_copy(src: str, dst: str) -> None:
    """Copy `src` to `dst` atomically."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def remove_partial_writes(*folders: str) -> None:
    """Delete the temporary files a killed process left in `folders` (never a complete
    file: those only ever appear under their final name)."""
    for folder in folders:
        names = os.listdir(folder) if os.path.isdir(folder) else []
        for name in names:
            if TMP_MARK in name:
                try:
                    os.remove(os.path.join(folder, name))
                except OSError:
                    pass
