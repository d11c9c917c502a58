"""Output files are whole or absent; output paths are checked before the work starts."""

import os
import stat

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
