"""Output files that are whole or absent, never half-written, and output paths checked up front.

Every file a command writes goes through :func:`atomic_path`: the content is
written to a temporary file in the same folder and renamed over the target
only once it is complete. A rename within one folder is atomic, so an
interrupted run (Ctrl-C, SIGTERM, a full disk, a crash) leaves the previous file
or the new one, never a mixture, and two runs writing the same file both succeed.
A write that fails (a full disk, a read-only file system) is one
:class:`OutputPathError` line, and the previous file is left as it was.

The new file takes the place of the old one as the old one was: it keeps the
old file's permissions (a private 0600 file stays private), and a symbolic link
is written through, so the link stays and its target gets the content. A file
with more than one hard link is refused: a rename would cut it off from its
other names, and writing it in place could leave it half-written, so
:func:`check_file` says so before the work starts.

:func:`check_file` and :func:`check_folder` try the destination before the
work starts, so a command that would fail to save its result says so in one
line instead of after minutes of work.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

__all__ = [
    "SLIDE_FIGSIZE",
    "SLIDE_DPI",
    "OutputPathError",
    "atomic_path",
    "write_text",
    "write_bytes",
    "check_file",
    "check_folder",
    "private_folder",
    "TEMP_PREFIX",
]

# The size every lecture picture drawn with matplotlib is saved at: 16:9, and at 10-point text on a
# 9.6-inch figure the smallest label is 28 px tall on a 1920 px slide.
SLIDE_FIGSIZE = (9.6, 5.4)
SLIDE_DPI = 200  # 9.6 in × 200 dpi = 1920 px: drawn at a slide's own size, not blown up from a smaller one

TEMP_PREFIX = ".tmp-"  # temporary files and folders start with this (hidden, easy to recognise)


class OutputPathError(ValueError):
    """An output path that cannot be written: a file where a folder is needed, no permission, ..."""


# A folder entry is at most 255 bytes on Linux, macOS and Windows; the temporary's own part (prefix,
# process id, random part, suffix) stays under 40, so a target name is cut to this many bytes in it.
_NAME_BYTES = 200


def _temporary_name(prefix: str, suffix: str) -> str:
    """A name no other run uses: this process's id and a random part (``prefix`` cut to fit)."""
    return f"{TEMP_PREFIX}{_cut(prefix)}{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}"


def _cut(name: str) -> str:
    """``name`` cut to at most :data:`_NAME_BYTES` bytes on disk, whole characters only."""
    while len(os.fsencode(name)) > _NAME_BYTES:
        name = name[:-1]
    return name


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _reason(error: OSError) -> str:
    return error.strerror or type(error).__name__


def _destination(path: Path) -> Path:
    """Where the content goes: a symbolic link's final target (written through), else ``path`` itself."""
    try:
        return Path(os.path.realpath(path)) if path.is_symlink() else path
    except OSError:  # a name too long to look up: the write itself will say so
        return path


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:
        return False


def _refuse_hard_links(path: Path, what: str) -> None:
    try:
        links = path.stat().st_nlink
    except OSError:  # absent (or unreadable: the write itself will say why)
        return
    if links > 1 and path.is_file():
        raise OutputPathError(
            f"cannot write {what}: it has {links} hard links (names of one file), which replacing it "
            "would break; write to a new name, or remove the other links first"
        )


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; when the block ends normally, rename it to ``path``.

    The caller writes the whole file to the yielded path (with any library:
    ``savefig``, ``write_bytes``, Pillow). If the block raises or is interrupted,
    the temporary file is removed and ``path`` is untouched. An ``OSError`` while
    writing or renaming (a full disk, a read-only file system) becomes one
    :class:`OutputPathError` line. The file keeps an existing file's permissions;
    a symbolic link is written through to its target; a file with several hard
    links is refused (see the module's docstring).
    """
    given = Path(path)
    path = _destination(given)
    what = repr(str(given))
    _refuse_hard_links(path, what)
    temporary = path.parent / _temporary_name(f"{path.name}.", ".part")
    try:  # the file is made inside the try, so even a Ctrl-C at any moment leaves no temporary behind
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            yield temporary
            try:  # an existing file's permissions, else those a plain open() would give
                mode = stat.S_IMODE(path.stat().st_mode)
            except FileNotFoundError:
                mode = 0o666 & ~_umask()
            os.chmod(temporary, mode)
            os.replace(temporary, path)
        except OSError as error:
            kept = "the old file is kept" if _exists(path) else "nothing was written"
            raise OutputPathError(f"cannot write {what}: {_reason(error)}; {kept}") from None
    finally:
        with suppress(OSError):  # a read-only file system refuses even that; nothing was made there then
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
        probe.unlink()
    except OSError as error:
        raise OutputPathError(f"cannot write {what}: {_reason(error)} ({str(folder)!r})") from None


def check_file(path: str | Path, option: str = "the output") -> Path:
    """Check that a file can be written at ``path`` (its folder is made if needed); returns the path.

    Raises :class:`OutputPathError` naming ``option`` when ``path`` is a folder,
    when a parent is a file, when the folder does not accept new files, when
    the name is too long, or when the file has several hard links.
    """
    path = Path(path)
    what = f"{option} {str(path)!r}".lstrip()
    size = len(os.fsencode(path.name))
    if size > 255:  # asked first: even asking whether such a path is a folder fails
        raise OutputPathError(
            f"cannot write {what}: {os.strerror(errno.ENAMETOOLONG)} "
            f"({size} bytes; a file name has at most 255)"
        )
    if path.is_dir():
        raise OutputPathError(f"cannot write {what}: it is a folder; give a file name")
    destination = _destination(path)
    _refuse_hard_links(destination, what)
    _probe(destination.parent, what)
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
    folder = near / _temporary_name("", "")
    try:
        try:
            near.mkdir(parents=True, exist_ok=True)
            folder.mkdir()
        except OSError as error:
            raise OutputPathError(f"cannot write into {str(near)!r}: {_reason(error)}") from None
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
