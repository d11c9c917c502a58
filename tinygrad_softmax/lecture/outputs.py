"""Output files that are whole or absent, never half-written, and output paths checked up front.

Every file a command writes goes through :func:`atomic_path`: the content is
written to a temporary file in the same folder and renamed over the target
only once it is complete. A rename within one folder is atomic, so an
interrupted run (Ctrl-C, a full disk, a crash) leaves the previous file or
the new one, never a mixture, and two runs writing the same file both succeed.

:func:`check_file` and :func:`check_folder` try the destination before the
work starts, so a command that would fail to save its result says so in one
line instead of after minutes of work.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "OutputPathError",
    "atomic_path",
    "write_text",
    "write_bytes",
    "check_file",
    "check_folder",
    "private_folder",
    "TEMP_PREFIX",
]

TEMP_PREFIX = ".tmp-"  # temporary files and folders start with this (hidden, easy to recognise)


class OutputPathError(ValueError):
    """An output path that cannot be written: a file where a folder is needed, no permission, ..."""


def _temporary_name(prefix: str, suffix: str) -> str:
    """A name no other run uses: this process's id and a random part."""
    return f"{TEMP_PREFIX}{prefix}{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; when the block ends normally, rename it to ``path``.

    The caller writes the whole file to the yielded path (with any library:
    ``savefig``, ``write_bytes``, Pillow). If the block raises or is interrupted,
    the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / _temporary_name(f"{path.name}.", ".part")
    try:  # the file is made inside the try, so even a Ctrl-C at any moment leaves no temporary behind
        yield temporary
        # mkstemp makes the file private (0600); give it the permissions a plain open() would.
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)


def _probe(folder: Path, what: str) -> None:
    """Make ``folder`` (and its parents) and create and remove a file in it, or say why not."""
    for parent in [folder, *folder.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise OutputPathError(f"cannot write {what}: {str(parent)!r} is a file, not a folder")
            break
    probe = folder / _temporary_name("", ".probe")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise OutputPathError(f"cannot write {what}: {reason} ({str(folder)!r})") from None
    finally:
        probe.unlink(missing_ok=True)


def check_file(path: str | Path, option: str = "the output") -> Path:
    """Check that a file can be written at ``path`` (its folder is made if needed); returns the path.

    Raises :class:`OutputPathError` naming ``option`` when ``path`` is a folder,
    when a parent is a file, or when the folder does not accept new files.
    """
    path = Path(path)
    what = f"{option} {str(path)!r}".lstrip()
    if path.is_dir():
        raise OutputPathError(f"cannot write {what}: it is a folder; give a file name")
    _probe(path.parent, what)
    return path


def check_folder(path: str | Path, option: str = "the output folder") -> Path:
    """Check that ``path`` is (or can be made) a folder that accepts new files; returns it."""
    path = Path(path)
    what = f"{option} {str(path)!r}".lstrip()
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"cannot write {what}: it is a file, not a folder")
    _probe(path, what)
    return path


@contextmanager
def private_folder(near: str | Path) -> Iterator[Path]:
    """A fresh temporary folder inside ``near``, removed with whatever is left in it at the end.

    Build a set of files here, then move each into place with ``os.replace``:
    another run writing into ``near`` at the same time never sees a half-made set.
    """
    near = Path(near)
    near.mkdir(parents=True, exist_ok=True)
    folder = near / _temporary_name("", "")
    try:
        folder.mkdir()
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
