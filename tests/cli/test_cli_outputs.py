"""The command line never leaves a broken file: paths checked first, files renamed into place,
concurrent runs both succeed, and every bad value is refused with the option's name (exit status 2)."""

import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tinygrad_softmax.cli import main
from tinygrad_softmax.lecture.outputs import TEMP_PREFIX

ROOT = Path(__file__).resolve().parents[2]


def _one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith(f"tinygrad-softmax {command}: error: "), err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


# ---------------------------------------------------------------- unwritable output paths, refused up front


def _forbid(monkeypatch, targets: tuple[str, ...]) -> None:
    """Each command's worker fails the test if it is called.

    Every module is imported before any is patched: a module imported while another is patched
    (demo's ``from .training.train import train``) would keep the stand-in after the test.
    """
    for target in targets:
        importlib.import_module("tinygrad_softmax.lecture." + target.rpartition(".")[0])
    for target in targets:
        monkeypatch.setattr(f"tinygrad_softmax.lecture.{target}", lambda *a, **k: pytest.fail("work started"))


def _paths(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "a-folder").mkdir()
    return {
        "parent is a file": tmp_path / "a-file" / "out.png",
        "a folder given as the file": tmp_path / "a-folder",
        "under /proc": Path("/proc/tinygrad-softmax/out.png"),
    }


FILE_OPTIONS = [
    ["graph", "--out"],
    ["explore", "--out"],
    ["compare", "--markdown"],
    ["compare", "--json"],
    ["epsilon", "--plot"],
    ["bench", "--write"],
]
FOLDER_OPTIONS = [["demo", "--out"], ["animate", "--out"], ["anomaly", "--out"], ["train", "--out"]]


@pytest.mark.parametrize("argv", FILE_OPTIONS, ids=" ".join)
@pytest.mark.parametrize("case", ["parent is a file", "a folder given as the file", "under /proc"])
def test_an_unwritable_output_file_is_refused_before_any_work(argv, case, tmp_path, capsys, monkeypatch):
    if case == "under /proc" and not Path("/proc/self").is_dir():
        pytest.skip("needs /proc")
    # The work itself must never start: each command's worker fails the test if it is called.
    _forbid(
        monkeypatch,
        ("lessons.compare.compare", "lessons.lab.epsilon_sweep", "training.classifier.build_classifier"),
    )
    path = _paths(tmp_path)[case]
    if argv[1] == "--plot" and case == "a folder given as the file":
        path = path.with_suffix(".png")
        path.mkdir()
    assert main([*argv, str(path)]) == 2
    err = _one_line_error(capsys, argv[0])
    assert f"argument {argv[1]}: cannot write" in err and str(path) in err


@pytest.mark.parametrize("argv", FOLDER_OPTIONS, ids=" ".join)
@pytest.mark.parametrize("case", ["a file given as the folder", "parent is a file", "under /proc"])
def test_an_unwritable_output_folder_is_refused_before_any_work(argv, case, tmp_path, capsys, monkeypatch):
    if case == "under /proc" and not Path("/proc/self").is_dir():
        pytest.skip("needs /proc")
    _forbid(
        monkeypatch,
        (
            "training.train.train",
            "lessons.lab.anomaly_demo",
            "demo.run_demo",
            "training.classifier.build_classifier",
        ),
    )
    (tmp_path / "a-file").write_text("x")
    path = {
        "a file given as the folder": tmp_path / "a-file",
        "parent is a file": tmp_path / "a-file" / "out",
        "under /proc": Path("/proc/tinygrad-softmax"),
    }[case]
    assert main([*argv, str(path)]) == 2
    err = _one_line_error(capsys, argv[0])
    assert f"argument {argv[1]}: cannot write" in err and str(path) in err


ALL_FOLDER_OPTIONS = [
    *FOLDER_OPTIONS,
    ["boundaries", "--out"],
    ["hessian", "--out"],
    ["newton", "--out"],
    ["modes", "--out"],
]


@pytest.mark.parametrize("argv", ALL_FOLDER_OPTIONS, ids=" ".join)
def test_a_file_name_given_as_the_folder_is_refused(argv, tmp_path, capsys, monkeypatch):
    """`modes --out modes.png` must not make a folder modes.png/ holding modes.png."""
    _forbid(
        monkeypatch,
        (
            "training.train.train",
            "lessons.lab.anomaly_demo",
            "demo.run_demo",
            "training.classifier.build_classifier",
        ),
    )
    path = tmp_path / f"{argv[0]}.png"
    assert main([*argv, str(path)]) == 2
    err = _one_line_error(capsys, argv[0])
    assert f"argument {argv[1]}: {str(path)!r} looks like a file name" in err and "takes the folder" in err
    assert list(tmp_path.iterdir()) == []  # nothing made


def test_an_existing_folder_with_a_dot_in_its_name_is_still_a_folder(tmp_path):
    from tinygrad_softmax.cli.options import output_folder

    (tmp_path / "week-3.md").mkdir()
    assert output_folder(str(tmp_path / "week-3.md")) == tmp_path / "week-3.md"
    assert output_folder(str(tmp_path / "v1.2")) == tmp_path / "v1.2"  # not a file suffix


# ---------------------------------------------------------------- values that must be refused


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["graph", "--dpi", "-5"], "argument --dpi: must be from 24 to 600 dots per inch, got -5"),
        (["graph", "--dpi", "0"], "argument --dpi: must be from 24 to 600"),
        (["animate", "--dpi", "0"], "argument --dpi: must be from 24 to 600"),
        (["train", "--lr", "inf"], "argument --lr: must be a positive finite number, got inf"),
        (["train", "--lr", "nan"], "argument --lr: must be a positive finite number, got nan"),
        (["train", "--epochs", "0"], "argument --epochs: must be at least 1, got 0"),
        (["train", "--seed", "-1"], "argument --seed: must be at least 0, got -1"),
        (["jacobian", "--seed", "-1"], "argument --random-seed/--seed: must be at least 0, got -1"),
        (["bench", "--threads", "0"], "argument --threads: must be from 1 to 256, got 0"),
        (["bench", "--threads", "-1"], "argument --threads: must be from 1 to 256, got -1"),
        (["jacobian", "--classes", "100000"], "argument --classes: 100000 classes need 6 float64 matrices"),
        (["animate", "--delay-ms", "0"], "argument --delay-ms: must be from 20 to 60000 ms, got 0"),
        (["graph", "--dpi", "ten"], "argument --dpi: must be a whole number"),
    ],
)
def test_every_bad_value_is_refused_with_the_option_named(argv, words, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert words in _one_line_error(capsys, argv[0])
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_the_jacobian_limit_says_what_fits(capsys):
    assert main(["jacobian", "--classes", "100000"]) == 2
    err = capsys.readouterr().err
    assert "447.0 GiB" in err and "at most 4729 classes fit in 1 GiB" in err
    assert main(["jacobian", "--classes", "3"]) == 0  # a small one still runs


# ---------------------------------------------------------------- whole files only


def _is_whole(path: Path) -> bool:
    data = path.read_bytes()
    if path.suffix == ".png":
        return data.startswith(b"\x89PNG\r\n\x1a\n") and data.endswith(b"IEND\xaeB`\x82")
    if path.suffix == ".gif":
        return data.startswith(b"GIF8") and data.endswith(b";")
    if path.suffix == ".json":
        json.loads(data)
        return True
    return len(data) > 0 and data.endswith(b"\n")


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.startswith(TEMP_PREFIX)]


# A slow disk, for the subprocesses below: every Path.write_bytes/write_text writes half its data,
# notes the file in $SLOW_WRITES, waits, then writes the rest. An interrupt in the wait is an
# interrupt in the middle of a write, every time, and two runs overlap for certain. With
# $SLOW_WRITE = n only the nth write waits (the one a test interrupts; the others go at full speed).
SLOW_DISK = """
import itertools, os, pathlib, time

_writes = itertools.count(1)
_slow_one = int(os.environ.get("SLOW_WRITE", "0"))  # 0: every write waits

def _slow(write_half):
    def write(self, data, *args, **kwargs):
        raw = data.encode("utf-8") if isinstance(data, str) else data
        with open(self, "wb") as file:
            file.write(raw[: len(raw) // 2])
            file.flush()
            with open(os.environ["SLOW_WRITES"], "a") as log:
                log.write(str(self) + "\\n")
            nth = next(_writes)
            if _slow_one in (0, nth):
                time.sleep(float(os.environ["SLOW_SECONDS"]))
            file.write(raw[len(raw) // 2 :])
        return len(data)
    return write

pathlib.Path.write_bytes = _slow(True)
pathlib.Path.write_text = _slow(False)
"""


def _run(argv: list[str], cwd: Path, slow: float = 0.0, only: int = 0) -> subprocess.Popen:
    """``argv`` in a subprocess; with ``slow``, on the slow disk: every write waits ``slow`` seconds
    half-way, or only the ``only``-th write."""
    env = dict(os.environ)
    if slow:
        (cwd / "slow-disk").mkdir(exist_ok=True)
        (cwd / "slow-disk" / "sitecustomize.py").write_text(SLOW_DISK)
        env["PYTHONPATH"] = os.pathsep.join([str(cwd / "slow-disk"), env.get("PYTHONPATH", "")])
        env["SLOW_WRITES"], env["SLOW_SECONDS"] = str(cwd / "slow-writes.log"), str(slow)
        env["SLOW_WRITE"] = str(only)
    return subprocess.Popen(
        [sys.executable, "-m", "tinygrad_softmax", *argv],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _writes_started(tmp_path: Path) -> int:
    log = tmp_path / "slow-writes.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_ctrl_c_in_the_middle_of_a_write_leaves_every_file_whole(tmp_path, demo_run):
    """SIGINT the demo while a file is half-written (a slow disk makes that moment certain)."""
    out = tmp_path / "demo"
    shutil.copytree(demo_run.out, out)  # the folder a good run left (the shared run of conftest.py)
    assert demo_run.status == 0
    before = {p for p in out.rglob("*") if p.is_file()}
    assert all(_is_whole(p) for p in before)

    for nth in (1, 4, 9, 16):  # interrupt during the nth write of the run: frames, tables, report
        (tmp_path / "slow-writes.log").unlink(missing_ok=True)
        # The nth write waits a minute half-way (the interrupt ends the wait); the others do not wait.
        run = _run(["demo", "--out", str(out)], tmp_path, slow=60.0, only=nth)
        while run.poll() is None and _writes_started(tmp_path) < nth:
            time.sleep(0.01)
        run.send_signal(signal.SIGINT)  # half of the nth file is on disk right now
        code = run.wait(timeout=600)
        after = {p for p in out.rglob("*") if p.is_file()}
        broken = sorted(p.relative_to(out).as_posix() for p in after if not _is_whole(p))
        assert broken == [], f"half-written after SIGINT: {broken}"
        assert code == 130 and run.stderr.read().endswith("demo: interrupted\n")  # one line
        assert _temporaries(out) == []  # the interrupted write cleaned up after itself
        assert after >= before  # nothing from the good run was lost


def test_two_runs_into_one_folder_both_succeed_and_leave_a_complete_set(tmp_path):
    out = tmp_path / "frames"
    argv = ["animate", "--out", str(out), "--gif", "--dpi", "30"]
    first = _run(argv, tmp_path, slow=0.05)
    while first.poll() is None and _writes_started(tmp_path) < 3:  # the first run is mid-set
        time.sleep(0.01)
    second = _run(argv, tmp_path, slow=0.05)
    results = [(run.wait(timeout=600), run.stderr.read()) for run in (first, second)]
    assert [code for code, _ in results] == [0, 0], results
    frames = sorted(p.name for p in out.glob("frame_*.png"))
    assert frames == [f"frame_{k:03d}.png" for k in range(1, 13)]
    assert all(_is_whole(p) for p in out.iterdir())
    assert sorted(p.name for p in out.iterdir()) == [*frames, "frames.gif"]  # no temporary left behind


def test_every_writer_goes_through_the_atomic_helper():
    """No command writes a file in place: every write in the lecture and the CLI is to a temporary
    (``atomic_path``), through ``outputs.write_text``/``write_bytes``, or into a private folder."""
    writers = (".write_text(", ".write_bytes(", ".savefig(", ".save(", "open(")
    package = ROOT / "tinygrad_softmax"
    lecture = package / "lecture"
    rooms = (lecture, lecture / "lessons", lecture / "views", lecture / "training", lecture / "views" / "viz")
    sources = [*(package / "cli").glob("*.py"), *(p for room in rooms for p in room.glob("*.py"))]
    assert package / "cli" / "parser.py" in sources and lecture / "views" / "viz" / "animation.py" in sources
    offenders = []
    for source in sources:
        if source.name == "outputs.py":
            continue
        for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
            code, _, comment = line.partition("#")
            if any(w in code for w in writers) and not (
                any(ok in code for ok in ("temporary", "private", "outputs.", "Image.open", "read_", "``"))
                or "private folder" in comment
            ):
                offenders.append(f"{source.name}:{number}: {line.strip()}")
    assert offenders == []


def test_a_bad_image_extension_for_the_plot_is_refused_before_the_sweep(capsys, monkeypatch):
    monkeypatch.setattr(
        "tinygrad_softmax.lecture.lessons.lab.epsilon_sweep", lambda: pytest.fail("work started")
    )
    assert main(["epsilon", "--plot", "sweep.gif"]) == 2
    assert "the extension must be .png, .svg, .pdf" in _one_line_error(capsys, "epsilon")


def test_anomaly_writes_into_the_current_folder_by_default(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["anomaly"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["anomaly_naive.png", "anomaly_stable.png"]
    assert os.path.exists("anomaly_stable.png")


# ---------------------------------------------------------------- a failed write is one line too


def test_a_time_limit_past_a_day_is_refused_in_one_line(tmp_path, capsys):
    assert main(["exercise", "solution", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["exercise", "check", str(tmp_path), "--time-limit", "1e40"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "tinygrad-softmax exercise check: error: argument --time-limit: must be at most 86400 seconds "
        "(a day), got 1e40 (see tinygrad-softmax exercise check --help)\n"
    )


def test_a_full_disk_during_a_command_is_one_line_and_keeps_the_old_file(small_disk, capsys):
    target = small_disk / "compare.json"
    target.write_text("{}\n")
    (small_disk / "filler").write_bytes(b"\0" * 60_000)
    assert main(["compare", "--json", str(target)]) == 2
    err = _one_line_error(capsys, "compare")
    assert err.endswith(f"cannot write '{target}': No space left on device; the old file is kept\n")
    assert target.read_text() == "{}\n" and _temporaries(small_disk) == []


def test_a_read_only_file_system_is_refused_before_any_work(small_disk, capsys, monkeypatch):
    monkeypatch.setattr(
        "tinygrad_softmax.lecture.lessons.compare.compare", lambda *a, **k: pytest.fail("work started")
    )
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    for argv in (["compare", "--json", str(small_disk / "c.json")], ["demo", "--out", str(small_disk / "d")]):
        assert main(argv) == 2
        err = _one_line_error(capsys, argv[0])
        assert f"argument {argv[1]}: cannot write" in err and "Read-only file system" in err


def test_a_255_byte_output_name_is_written(tmp_path, capsys):
    target = tmp_path / ("c" * 250 + ".json")
    assert main(["compare", "--json", str(target)]) == 0
    assert json.loads(target.read_text()) and _temporaries(tmp_path) == []


def test_sigterm_in_the_middle_of_a_write_leaves_no_temporary(tmp_path):
    """SIGTERM, as a scheduler or `timeout` sends it, unwinds like Ctrl-C: exit 143, nothing left behind."""
    out = tmp_path / "frames"
    run = _run(["animate", "--out", str(out), "--gif", "--dpi", "30"], tmp_path, slow=60.0, only=2)
    while run.poll() is None and _writes_started(tmp_path) < 2:  # a frame half-written in the private folder
        time.sleep(0.01)
    assert _temporaries(out) != []
    run.send_signal(signal.SIGTERM)
    code = run.wait(timeout=600)
    assert code == 143 and run.stderr.read().endswith("animate: terminated\n")
    assert _temporaries(out) == [] and not list(out.glob("frame_*.png"))
