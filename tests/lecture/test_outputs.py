"""Output files are whole or absent; output paths are checked before the work starts."""

import errno
import os
import stat
import subprocess
from pathlib import Path

import pytest

from tinygrad_softmax.lecture import outputs
from tinygrad_softmax.lecture.outputs import OutputPathError, atomic_path, check_file, check_folder


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "graph.png"
    target.write_bytes(b"the good file from the last run")
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as temporary:
        temporary.write_bytes(b"half a pic")
        raise KeyboardInterrupt  # Ctrl-C in the middle of writing
    assert target.read_bytes() == b"the good file from the last run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["graph.png"]


def test_the_temporary_is_in_the_same_folder_and_renamed_into_place(tmp_path):
    target = tmp_path / "sub" / "report.md"
    with atomic_path(target) as temporary:
        assert temporary.parent == target.parent  # a rename within one folder is atomic
        assert not target.exists()
        temporary.write_text("done", encoding="utf-8")
    assert target.read_text(encoding="utf-8") == "done"
    assert [p.name for p in target.parent.iterdir()] == ["report.md"]


def test_the_file_gets_ordinary_permissions_not_the_private_temporary_ones(tmp_path):
    path = outputs.write_text(tmp_path / "a.md", "x")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


@pytest.mark.parametrize(
    ("make", "given", "words"),
    [
        (lambda d: (d / "folder").mkdir(), "folder", "it is a folder"),
        (lambda d: (d / "file").write_text("x"), "file/graph.png", "'{d}/file' is a file, not a folder"),
        (lambda d: (d / "file").write_text("x"), "file/deeper/graph.png", "'{d}/file' is a file"),
    ],
)
def test_check_file_names_what_is_wrong(tmp_path, make, given, words):
    make(tmp_path)
    with pytest.raises(OutputPathError, match="--out") as caught:
        check_file(tmp_path / given, "--out")
    assert words.format(d=tmp_path) in str(caught.value)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
def test_a_folder_that_refuses_new_files_is_refused_before_any_work():
    with pytest.raises(OutputPathError, match=r"cannot write --out '/proc/graph\.png'"):
        check_file("/proc/graph.png", "--out")
    with pytest.raises(OutputPathError, match="cannot write --out '/proc/frames'"):
        check_folder("/proc/frames", "--out")


def test_check_folder_refuses_a_file_and_makes_a_missing_folder(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputPathError, match="it is a file, not a folder"):
        check_folder(tmp_path / "f", "--out")
    made = check_folder(tmp_path / "new" / "frames", "--out")
    assert made.is_dir() and list(made.iterdir()) == []  # the probe file is gone


def test_private_folder_is_removed_with_its_contents(tmp_path):
    with outputs.private_folder(tmp_path) as private:
        (private / "frame_001.png").write_bytes(b"x")
        assert private.parent == tmp_path and private.name.startswith(outputs.TEMP_PREFIX)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------ failed writes are one line, the old file kept


def test_a_full_disk_is_one_line_and_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "report.md"
    target.write_text("the good file from the last run")

    def full(self, data, *args, **kwargs):
        with open(self, "w") as file:
            file.write(data[:3])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(OutputPathError) as caught:
        outputs.write_text(target, "a new report")
    assert str(caught.value) == f"cannot write '{target}': No space left on device; the old file is kept"
    monkeypatch.undo()
    assert target.read_text() == "the good file from the last run"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]  # no temporary left


def test_a_read_only_file_system_is_one_line_up_front(tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(args[0]))

    monkeypatch.setattr(os, "open", read_only)
    monkeypatch.setattr(Path, "unlink", read_only)  # on a read-only file system even removing nothing fails
    with pytest.raises(OutputPathError, match=r"cannot write --out '.*g\.png': Read-only file system"):
        check_file(tmp_path / "g.png", "--out")
    with pytest.raises(OutputPathError, match=r"cannot write --out '.*frames': Read-only file system"):
        check_folder(tmp_path / "frames", "--out")


def test_on_a_real_full_disk_the_old_file_is_kept(small_disk):
    target = small_disk / "report.md"
    target.write_text("old\n")
    (small_disk / "filler").write_bytes(b"\0" * 60_000)
    with pytest.raises(OutputPathError, match="No space left on device; the old file is kept"):
        outputs.write_text(target, "new line\n" * 2_000)
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "report.md"]


def test_on_a_real_read_only_file_system_the_check_says_so(small_disk):
    (small_disk / "report.md").write_text("old\n")
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    with pytest.raises(OutputPathError, match="Read-only file system"):
        check_file(small_disk / "report.md", "--out")
    with pytest.raises(OutputPathError, match="Read-only file system; the old file is kept"):
        outputs.write_text(small_disk / "report.md", "new\n")
    assert (small_disk / "report.md").read_text() == "old\n"


# ------------------------------------------------ the new file takes the old place as it was


@pytest.mark.parametrize("name", ["a" * 251 + ".png", "é" * 125 + ".png", "b" * 255])
def test_a_long_legal_name_is_written(tmp_path, name):
    assert len(os.fsencode(name)) >= 254
    check_file(tmp_path / name)
    path = outputs.write_bytes(tmp_path / name, b"picture")
    assert path.read_bytes() == b"picture" and [p.name for p in tmp_path.iterdir()] == [name]


def test_a_name_too_long_for_the_file_system_is_one_line(tmp_path):
    with pytest.raises(
        OutputPathError, match=r"File name too long \(256 bytes; a file name has at most 255\)"
    ):
        check_file(tmp_path / ("c" * 256), "--out")
    with pytest.raises(OutputPathError, match=r"File name too long; nothing was written$"):
        outputs.write_text(tmp_path / ("c" * 256), "x")
    assert list(tmp_path.iterdir()) == []


def test_a_private_file_stays_private(tmp_path):
    target = tmp_path / "grades.json"
    target.write_text("{}")
    target.chmod(0o600)
    outputs.write_text(target, '{"score": 1}')
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    target.chmod(0o640)
    outputs.write_text(target, '{"score": 2}')
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_a_symbolic_link_is_written_through_to_its_target(tmp_path):
    (tmp_path / "real").mkdir()
    real = tmp_path / "real" / "graph.svg"
    real.write_text("old")
    link = tmp_path / "graph.svg"
    link.symlink_to(real)
    check_file(link, "--out")
    outputs.write_text(link, "new")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == "new"
    assert [p.name for p in (tmp_path / "real").iterdir()] == ["graph.svg"]
    dangling = tmp_path / "later.svg"
    dangling.symlink_to(tmp_path / "real" / "later.svg")
    outputs.write_text(dangling, "made")
    assert dangling.is_symlink() and (tmp_path / "real" / "later.svg").read_text() == "made"


def test_a_file_with_hard_links_is_refused_and_left_as_it_was(tmp_path):
    target = tmp_path / "graph.png"
    target.write_bytes(b"old")
    os.link(target, tmp_path / "copy.png")
    message = r"cannot write --out '.*graph\.png': it has 2 hard links \(names of one file\)"
    with pytest.raises(OutputPathError, match=message):
        check_file(target, "--out")
    with pytest.raises(OutputPathError, match="hard links"):
        outputs.write_bytes(target, b"new")
    assert target.read_bytes() == b"old" and (tmp_path / "copy.png").read_bytes() == b"old"
    assert target.stat().st_ino == (tmp_path / "copy.png").stat().st_ino
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.png", "graph.png"]
