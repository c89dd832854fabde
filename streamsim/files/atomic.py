"""Atomic writes, the one home for them: readers see the old file or folder or the new one, never half of it.

A file is written to a hidden temporary sibling, flushed to disk and renamed over its target
(``os.replace`` is atomic on one file system). A folder is filled in a hidden temporary sibling,
every file in it flushed, then renamed into place; a folder already there is first moved aside to
``previous`` and removed only once the new one is in place, so a kill at any moment leaves either
the old folder, the new one, or the old one under ``previous``.

>>> import tempfile
>>> from pathlib import Path
>>> root = Path(tempfile.mkdtemp())
>>> write_text_atomic(root / "a.txt", "hello")
>>> (root / "a.txt").read_text()
'hello'
>>> write_folder_atomic(root / "run", lambda tmp: (tmp / "x.txt").write_text("1"), previous=root / ".run.old")
>>> sorted(p.name for p in root.iterdir())
['a.txt', 'run']
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

# What plain open() and mkdir() give under the usual umask; mkstemp and mkdtemp alone would make them private.
FILE_MODE = 0o644
FOLDER_MODE = 0o755


def write_atomic(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write`` with an open binary file, then move that file into place at ``path``.

    ``write`` may be ``numpy.savez`` or ``Figure.savefig``: anything that writes to a file object.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    write_atomic(path, lambda f: f.write(data))


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def partial_prefix(folder: Path) -> str:
    """The name prefix of the temporary siblings :func:`write_folder_atomic` fills (hidden, and findable)."""
    return f".{folder.name}.partial-"


def write_folder_atomic(folder: Path, fill: Callable[[Path], object], previous: Path) -> None:
    """Call ``fill`` with an empty temporary folder, then move it into place at ``folder``.

    A folder already at ``folder`` waits under ``previous`` until the new one is in place, then is
    removed. Whoever reads ``folder`` later should look under ``previous`` when ``folder`` is
    missing (a kill between the two renames).
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=partial_prefix(folder)))
    try:
        os.chmod(tmp, FOLDER_MODE)
        fill(tmp)
        for path in tmp.rglob("*"):
            if path.is_file():
                _fsync(path)
        _fsync(tmp)
        shutil.rmtree(previous, ignore_errors=True)
        if folder.exists():
            os.replace(folder, previous)
        os.replace(tmp, folder)
        _fsync(folder.parent)
        shutil.rmtree(previous, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _fsync(path: Path) -> None:
    """Flush ``path`` (a file or a folder's entries) to disk; a file system that cannot is left as it is."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
