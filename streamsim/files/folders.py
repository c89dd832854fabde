"""Output folders named on the command line (``--out`` of ``run``, ``sweep`` and ``report``), checked
before any work — the one home for it. Torch-free, so a bad ``--out`` is refused at once.

A folder is refused when no folder can have its path (a NUL byte, a name or a path longer than a
file system or the kernel takes), when it lies under a file, or when it cannot be written — which is
tried for real, since permission bits say nothing to root or about read-only mounts (``/proc``,
``/sys``). Each refusal is a :class:`~streamsim.core.errors.ConfigError` naming the folder.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from streamsim.core.errors import ConfigError

MAX_NAME_BYTES = 255  # one file or folder name (ext4, xfs, btrfs, tmpfs)
MAX_PATH_BYTES = 4096  # a whole path (Linux's PATH_MAX)


def check_free(out: Path) -> None:
    """Refuse an output folder that already holds something (or is a file)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"output {out} already exists; choose another --out or remove it")


def probe_writable(path: Path) -> str | None:
    """Why ``path`` (or the folders to be created above it) cannot be written; ``None`` if it can.

    Tries for real (a temporary file in the nearest existing folder): permission bits say
    nothing to root, and nothing about read-only mounts.
    """
    base = Path(path)
    try:
        while not base.exists() and base != base.parent:
            base = base.parent
        if not base.is_dir():
            return f"{base} is not a folder"
        fd, name = tempfile.mkstemp(dir=base, prefix=".streamsim-probe-")
        os.close(fd)
        os.unlink(name)
    except (OSError, ValueError) as e:  # ValueError: a NUL byte in the path
        return f"cannot write in {base} ({getattr(e, 'strerror', None) or e})"
    return None


def check_path(path: Path, what: str) -> None:
    """Refuse a path no folder can have: one holding a NUL byte, a name longer than a file system
    allows (:data:`MAX_NAME_BYTES`), or a path longer than the kernel takes (:data:`MAX_PATH_BYTES`).

    >>> check_path(Path("runs/x" * 1000), "--out")
    Traceback (most recent call last):
    ...
    streamsim.core.errors.ConfigError: --out: the path is 6,000 bytes long, more than the limit of 4,096
    """
    text = str(path)
    if "\x00" in text:
        raise ConfigError(f"{what} {text[:40]!r}...: holds a NUL character")
    size = len(os.fsencode(text))
    if size > MAX_PATH_BYTES:
        raise ConfigError(f"{what}: the path is {size:,} bytes long, more than the limit of {MAX_PATH_BYTES:,}")
    long = next((part for part in path.parts if len(os.fsencode(part)) > MAX_NAME_BYTES), None)
    if long is not None:
        raise ConfigError(f"{what}: the name {long[:40]}... is {len(os.fsencode(long)):,} bytes long, more than a "
                          f"file system allows ({MAX_NAME_BYTES})")


def check_output(out: Path, fresh: bool = True, what: str = "output") -> None:
    """The one check of an output folder (``run``, ``sweep`` and ``report``'s ``--out``): refuse one that
    cannot be created or written, or (``fresh``) that holds something."""
    check_path(out, f"{what} {out}" if len(str(out)) < 100 else what)
    if fresh:
        check_free(out)
    why = probe_writable(out)
    if why is not None:
        raise ConfigError(f"{what} {out}: {why}")
