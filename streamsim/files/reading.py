"""Reading a file that a run folder, a sweep folder, a checkpoint or the artifact cache should hold —
the one home for it: regular files only, and only up to a size.

Those folders are input too. A FIFO put where ``state.json`` belongs blocks a plain ``open`` forever
(no writer ever comes), a symlink to ``/dev/zero`` feeds a reader without end, a directory or a
socket raises an error of the wrong kind deep inside pandas or numpy. Here the file is opened
without blocking, checked to be a regular file (after following symlinks: a link to a real file
is fine), and read only if it is no larger than the caller's limit. Every refusal is an
:class:`OSError`, so the callers' existing ``except OSError`` turns it into their typed error
naming the file.

>>> import os, tempfile
>>> folder = tempfile.mkdtemp()
>>> path = os.path.join(folder, "a.json")
>>> with open(path, "w") as f:
...     _ = f.write("{}")
>>> read_text(path, limit=10)
'{}'
>>> os.mkfifo(os.path.join(folder, "fifo"))
>>> read_bytes(os.path.join(folder, "fifo"), limit=10)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
streamsim.files.reading.NotARegularFile: [Errno 22] not a regular file (a FIFO): '.../fifo'
>>> read_bytes(path, limit=1)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
streamsim.files.reading.NotARegularFile: [Errno 27] larger than 1 bytes (2 bytes): '.../a.json'
"""

from __future__ import annotations

import errno
import os
import stat

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


class NotARegularFile(OSError):
    """The path is not a regular file, or is larger than the reader allows."""


def read_bytes(path: str | os.PathLike[str], limit: int) -> bytes:
    """The contents of the regular file ``path``, at most ``limit`` bytes; :class:`OSError` otherwise."""
    name = os.fspath(path)
    fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO opens at once instead of waiting
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            what = next((w for test, w in _KINDS if test(info.st_mode)), "a special file")
            raise NotARegularFile(errno.EINVAL, f"not a regular file ({what})", name)
        if info.st_size > limit:
            raise NotARegularFile(errno.EFBIG, f"larger than {limit:,} bytes ({info.st_size:,} bytes)", name)
        chunks, total = [], 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # it grew while being read
                raise NotARegularFile(errno.EFBIG, f"larger than {limit:,} bytes", name)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_text(path: str | os.PathLike[str], limit: int) -> str:
    """:func:`read_bytes` decoded as UTF-8 (:class:`UnicodeDecodeError`, a ``ValueError``, if it is not)."""
    return read_bytes(path, limit).decode("utf-8")
