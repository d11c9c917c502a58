"""The grader: grades the student's file case by case, its code isolated in another process.

:func:`check` reads ``my_rules.py`` without running it (a syntax error is one
clear message), starts the student's process (``sandbox.py``), sends it the
inputs of each case of each rule alone and then of every step of the whole
classifier in both layouts, compares the answers here, and gathers a
:class:`Report`: the text a student reads, Gradescope's ``results.json``, and the
picture of the classifier's graph with the wrong rules in red. A rule earns the
share of its cases it passes. When the student's process hangs past the time
limit or dies, that rule fails and a fresh process grades the rest. The report
exists only after every process the student's code started is gone.
"""

from __future__ import annotations

import ast
import json
import re
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import outputs
from ..views.graph import wrt
from .catalogue import EXERCISES
from .files import RULES_FILE
from .grading import Runner, SandboxRunner, grade_classifier, grade_rule
from .sandbox import Sandbox, WorkerLost, memory_closed

__all__ = ["RuleResult", "ClassifierResult", "Report", "check", "DEFAULT_TIME_LIMIT"]

DEFAULT_TIME_LIMIT = 10.0  # seconds per rule: a rule takes milliseconds, so only a loop reaches it
LOAD_TIME_LIMIT = 60.0  # starting Python and NumPy on a busy machine, then loading the file
LAYOUTS = ("column", "row")
MAX_SOURCE = 1 << 20  # bytes: a rules file is a few KB; a bigger one is not read


@dataclass
class RuleResult:
    """One rule: passed, not implemented, wrong, missing, timed out or crashed."""

    name: str
    status: str
    seconds: float = 0.0
    cases: int = 0
    failed: int = 0
    worst: dict[str, Any] | None = None
    message: str = ""
    hint: str = ""
    mistake: str | None = None
    verdicts: list[dict[str, Any]] = field(default_factory=list)  # per case: case, passed, reason

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def points(self) -> float:
        """1 when passed, the share of cases passed when wrong, else 0."""
        if self.passed:
            return 1.0
        if self.status == "wrong" and self.cases and self.verdicts:
            return round((self.cases - self.failed) / self.cases, 4)
        return 0.0

    @property
    def function(self) -> str:
        return EXERCISES[self.name].function

    def lines(self) -> list[str]:
        """What the report says under the rule's row."""
        out: list[str] = []
        if self.status == "not implemented":
            return out  # the row says it all
        if self.message:
            out += self.message.split("\n")
        if self.worst:
            w = self.worst
            index = ", ".join(map(str, w["index"]))
            out.append(
                f"worst entry: ∂L/∂{w['input']}[{index}] in case {w['case']!r}: "
                f"expected {w['expected']:.6g}, got {w['got']:.6g}"
            )
        failed = [v for v in self.verdicts if not v["passed"]]
        shown = failed[1:] if self.message else failed  # the first failure is the message above
        out += [f"case {v['case']!r}: {v['reason']}" for v in shown]
        if self.hint and not self.passed:
            out.append(f"hint: {self.hint}")
        return out


@dataclass
class ClassifierResult:
    """The whole classifier with the student's rules, in one layout."""

    layout: str
    status: str
    seconds: float = 0.0
    message: str = ""
    checks: list[dict[str, Any]] = field(default_factory=list)
    first_wrong: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def points(self) -> float:
        """1 when passed, else the share of ∂L/∂Z, ∂L/∂W, ∂L/∂b that match the closed form."""
        if self.passed:
            return 1.0
        if self.status == "wrong" and self.checks:
            return round(sum(c["ok"] for c in self.checks) / len(self.checks), 4)
        return 0.0

    @property
    def title(self) -> str:
        return f"the linear softmax classifier, {self.layout} layout"

    def lines(self) -> list[str]:
        out: list[str] = []
        if self.message:
            out.append(self.message)
        for check in self.checks:
            if check["ok"]:
                out.append(f"{check['name']}: matches the closed form")
            else:
                index = ", ".join(map(str, check["index"]))
                got = "a wrong shape" if check["got"] is None else f"{check['got']:.6g}"
                out.append(
                    f"{check['name']}: differs at [{index}]: closed form {check['expected']:.6g}, got {got}"
                )
        if self.first_wrong:
            out.append(first_wrong_line(self.first_wrong))
        return out


def first_wrong_line(first: dict[str, Any]) -> str:
    """The sentence naming the first wrong gradient (on the way to W, or else the first one at all)."""
    if first.get("toward_w", True):
        return "first wrong gradient on the way to W: " + describe_first_wrong(first)
    return "the way to W is right; the first wrong gradient: " + describe_first_wrong(first)


def describe_first_wrong(first: dict[str, Any]) -> str:
    """``∂L/∂t9 (1×5), sent back by log: wrong``."""
    reason = {"wrong": "wrong", "not implemented": "not implemented", "failed": "its rule failed"}
    shape = f" ({first['shape']})" if first.get("shape") else ""
    why = reason.get(first["reason"], first["reason"])
    return f"∂L/∂{wrt(first['tensor'])}{shape}, sent back by {first['op']}: {why}"


@dataclass
class Report:
    """Everything one check found: per rule, per layout, and the total score."""

    path: Path
    names: tuple[str, ...]
    rules: list[RuleResult]
    classifiers: list[ClassifierResult]
    problem: str = ""  # a file that cannot be graded at all: the one message to show
    seconds: float = 0.0
    time_limit: float = DEFAULT_TIME_LIMIT
    note: str = ""  # how the student's code ran, when not as the documentation says

    @property
    def score(self) -> float:
        return round(sum(r.points for r in self.rules) + sum(c.points for c in self.classifiers), 4)

    @property
    def max_score(self) -> int:
        return len(self.names) + len(LAYOUTS)

    @property
    def passed(self) -> bool:
        return not self.problem and self.score == self.max_score

    @property
    def wrong_rules(self) -> list[str]:
        """The rules that did not pass, in the catalogue's order."""
        return [r.name for r in self.rules if not r.passed]

    def to_text(self) -> str:
        """The report a student reads."""
        lines = [f"Grading {self.path}"]
        if self.problem:
            return "\n".join([*lines, "", self.problem, "", f"score: 0 / {self.max_score}"]) + "\n"
        lines[0] += f": {len(self.names)} rules alone, then the linear softmax classifier in both layouts"
        lines += ["", f"  {'rule':<20} {'result':<17} {'cases':>7} {'points':>7} {'time':>9}"]
        for r in self.rules:
            cases = f"{r.cases - r.failed}/{r.cases}" if r.cases and r.status in ("passed", "wrong") else ""
            lines.append(
                f"  {r.function:<20} {_shout(r.status):<17} {cases:>7} {_points(r.points):>7} "
                f"{_duration(r.seconds):>9}"
            )
            lines += _details(r.lines())
        lines.append("")
        for c in self.classifiers:
            lines.append(
                f"  {c.title:<46} {_shout(c.status):<9} {_points(c.points):>7} {_duration(c.seconds):>9}"
            )
            lines += _details(c.lines())
        tally = ", ".join(
            f"{n} {status}"
            for status in ("wrong", "not implemented", "missing", "timed out", "crashed")
            if (n := sum(r.status == status for r in self.rules))
        )
        lines += [
            "",
            f"score: {_points(self.score)} / {self.max_score}" + (f"   (rules: {tally})" if tally else ""),
        ]
        if self.note:
            lines.append(f"note: {self.note}")
        if self.passed:
            lines.append("Every rule passed and the engine derives the closed form with them: done.")
        return "\n".join(lines) + "\n"

    def to_gradescope(self) -> dict[str, Any]:
        """Gradescope's ``results.json``: one test per rule and per layout, 1 point each."""
        tests: list[dict[str, Any]] = []
        if self.problem:  # nothing could be graded: every test is there, at 0, saying why
            rows = [f"{EXERCISES[n].function}: the backward rule of {n}" for n in self.names]
            rows += [ClassifierResult(layout, "").title for layout in LAYOUTS]
            tests = [_test(str(k), row, False, [self.problem]) for k, row in enumerate(rows, 1)]
        for k, r in enumerate(self.rules, 1):
            body = [f"{r.status} ({r.cases - r.failed} of {r.cases} cases)" if r.cases else r.status]
            name = f"{r.function}: the backward rule of {r.name}"
            tests.append(_test(f"{k}", name, r.passed, [*body, *r.lines()], r.points))
        for k, c in enumerate(self.classifiers, len(self.rules) + 1):
            tests.append(_test(f"{k}", c.title, c.passed, [c.status, *c.lines()], c.points))
        results: dict[str, Any] = {
            "score": float(self.score),
            "execution_time": round(self.seconds, 3),
            "output": self.problem or f"score {_points(self.score)} / {self.max_score}",
            "visibility": "visible",
            "stdout_visibility": "hidden",
            "tests": tests,
        }
        return results


WIDTH = 100  # the report fits a terminal of 100 columns, like the other tables


def _details(lines: list[str]) -> list[str]:
    """The lines under a row, indented, wrapped at :data:`WIDTH` (a long path or number stays whole)."""
    return [
        wrapped
        for line in lines
        for wrapped in textwrap.wrap(
            line, WIDTH, initial_indent=" " * 6, subsequent_indent=" " * 8, break_long_words=False
        )
    ]


def _test(number: str, name: str, passed: bool, lines: list[str], points: float = 0.0) -> dict[str, Any]:
    return {
        "name": name,
        "number": number,
        "score": 1.0 if passed else float(points),
        "max_score": 1.0,
        "status": "passed" if passed else "failed",
        "output": "\n".join(lines),
        "visibility": "visible",
    }


def _shout(status: str) -> str:
    return "WRONG" if status == "wrong" else status


def _points(points: float) -> str:
    """``3``, ``0.67``: a whole number plainly, a share to two places."""
    return f"{points:g}" if float(points).is_integer() else f"{points:.2f}"


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.0f} s"


# ---------------------------------------------------------------- reading the file without running it


def _line_and_column(data: bytes, offset: int) -> str:
    """``line 3, column 7 (byte 41)`` for a byte offset into the file."""
    line = data.count(b"\n", 0, offset) + 1
    column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return f"line {line}, column {column} (byte {offset})"


def _unreadable(path: Path, data: bytes) -> str:
    """'' when the bytes can be read as Python source text, else one message saying where they cannot."""
    if len(data) > MAX_SOURCE:
        return (
            f"{path.name} has {len(data):,} bytes; a rules file is a few KB (at most {MAX_SOURCE:,} are read)"
        )
    if b"\x00" in data:
        where = _line_and_column(data, data.index(b"\x00"))
        return f"{path.name} {where}: a NUL byte (\\x00), which Python source cannot hold; delete it"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        where = _line_and_column(data, error.start)
        return f"{path.name} {where}: the byte {data[error.start]:#04x} is not UTF-8; save the file as UTF-8"
    return ""


def _syntax_problem(path: Path, source: str) -> str:
    """'' when the file compiles, else one message: where, what, the line with a caret."""
    try:
        compile(source, str(path), "exec", dont_inherit=True)
    except SyntaxError as error:
        where = f"{path.name} line {error.lineno}"
        text = (error.text or "").rstrip("\n")
        caret = ""
        if text and error.offset:
            stripped = text.lstrip()
            caret = (
                "\n    "
                + stripped
                + "\n    "
                + " " * max(0, error.offset - 1 - (len(text) - len(stripped)))
                + "^"
            )
        return f"{where}: {error.msg} (a syntax error: nothing in the file could be graded){caret}"
    except (RecursionError, MemoryError, ValueError, OverflowError) as error:
        what = (
            "nested too deeply" if isinstance(error, RecursionError) else str(error) or type(error).__name__
        )
        return f"{path.name} cannot be read: {what} (nothing in the file could be graded)"
    return ""


def _defined_rules(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    """The rule functions the file defines at its top level, by exercise name."""
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    return {name: functions[e.function] for name, e in EXERCISES.items() if e.function in functions}


# ---------------------------------------------------------------- grading in the student's process


def _cpu_seconds(names: tuple[str, ...], time_limit: float) -> float:
    """The student's process's CPU time limit: loading, then every rule and both layouts at their limit."""
    return LOAD_TIME_LIMIT + time_limit * (len(names) + len(LAYOUTS)) + 5


class _Session:
    """The student's process for one check: started again after a timeout or a crash."""

    def __init__(self, path: Path, names: tuple[str, ...], time_limit: float) -> None:
        self.path, self.cpu = path, _cpu_seconds(names, time_limit)
        self.sandbox: Sandbox | None = None
        self.runner: Runner = Runner()
        self.note = ""

    def start(self) -> dict[str, Any]:
        """Start a process and wait until it has loaded the file: its hello, or what went wrong."""
        self.close()
        try:
            self.sandbox = Sandbox(self.path, self.cpu)
        except OSError as error:  # this machine, not the submission: say so, as a grade of 0
            return {"lost": "crashed", "message": f"the grader could not start its process ({error})"}
        self.note = self.sandbox.note
        self.runner = SandboxRunner(self.sandbox)
        try:
            return self.sandbox.receive(LOAD_TIME_LIMIT)
        except WorkerLost as lost:
            return {"lost": lost.kind, "message": str(lost)}

    def close(self) -> None:
        if self.sandbox is not None:
            self.sandbox.close()
            self.sandbox = None


def check(
    folder: str | Path, names: tuple[str, ...] | None = None, time_limit: float = DEFAULT_TIME_LIMIT
) -> Report:
    """Grade ``folder/my_rules.py``: each rule alone, then the classifier in both layouts.

    ``names`` are the assigned rules (default: the ones the file defines); an
    assigned rule the file lacks is "missing". The student's code runs in an
    isolated process (``sandbox.py``), which is gone when this returns.
    """
    if time_limit <= 0:
        raise ValueError(f"exercise check: the time limit must be positive, got {time_limit}")
    folder = Path(folder)
    path = folder / RULES_FILE
    if not path.is_file():
        raise ValueError(
            f"exercise check: {path} does not exist; make it with: tinygrad-softmax exercise init {folder}"
        )
    start = time.perf_counter()
    data = path.read_bytes()

    def finished(report: Report) -> Report:
        report.seconds = time.perf_counter() - start
        report.time_limit = time_limit
        return report

    problem = _unreadable(path, data)
    source = "" if problem else data.decode("utf-8")
    problem = problem or _syntax_problem(path, source)
    if problem:  # the rules it meant to define, read from the def lines, so the score counts them
        text = data[:MAX_SOURCE].decode("utf-8", "replace")
        meant = {m for m in re.findall(r"^def (\w+)_backward\(", text, re.M) if m in EXERCISES}
        return finished(Report(path, names or tuple(n for n in EXERCISES if n in meant), [], [], problem))
    try:
        defined = _defined_rules(ast.parse(source))
    except (RecursionError, MemoryError, SyntaxError, ValueError):
        return finished(Report(path, names or (), [], [], f"{path.name} cannot be read: nested too deeply"))
    names = names or tuple(defined)
    if not names:
        functions = ", ".join(e.function for e in list(EXERCISES.values())[:3])
        return finished(Report(path, (), [], [], f"{path.name} defines no rule ({functions}, ...)"))

    session = _Session(path.resolve(), names, time_limit)
    with memory_closed():
        return finished(_grade(session, path, names, defined, time_limit))


def _grade(
    session: _Session, path: Path, names: tuple[str, ...], defined: dict[str, Any], time_limit: float
) -> Report:
    """The rules and the classifier graded through ``session``; the student's process gone at the end."""
    try:
        hello = session.start()
        if "ready" not in hello:
            why = hello.get("load_error") or (
                f"it did not finish loading within {LOAD_TIME_LIMIT:.0f} s "
                "(an endless loop at the top level?)"
                if hello.get("lost") == "timed out"
                else hello.get("message", "its first answer was not the expected one")
            )
            why = str(why)[:2000]
            if "No module named 'tinygrad_softmax" in why:
                why += "; import the helpers with: from backward_helpers import expand, scatter_add, sum_to"
            return Report(path, names, [], [], f"{path.name} could not be loaded: {why}", note=session.note)
        rules: list[RuleResult] = []
        for name in names:
            if name not in defined:
                message = f"{path.name} has no function {EXERCISES[name].function}"
                rules.append(RuleResult(name, "missing", message=message))
                continue
            session.runner.deadline = time.monotonic() + time_limit
            try:
                answer = grade_rule(session.runner, name)
            except WorkerLost as lost:
                rules.append(_lost_rule(name, lost, time_limit))
                session.start()
                continue
            rules.append(RuleResult(name, **answer))
        unsafe = {r.name: r.status for r in rules if r.status in ("timed out", "crashed")}
        classifiers = []
        for layout in LAYOUTS:
            session.runner.deadline = time.monotonic() + time_limit
            try:
                answer = grade_classifier(session.runner, list(names), unsafe, layout)
            except WorkerLost as lost:
                classifiers.append(ClassifierResult(layout, lost.kind, time_limit, message=str(lost)))
                session.start()
                continue
            answer.pop("layout", None)
            classifiers.append(ClassifierResult(layout, **answer))
    finally:
        session.close()  # every process the student's code started is gone before the report exists
    return Report(path, names, rules, classifiers, note=session.note)


def _lost_rule(name: str, lost: WorkerLost, limit: float) -> RuleResult:
    function = EXERCISES[name].function
    if lost.kind == "timed out":
        return RuleResult(
            name,
            "timed out",
            limit,
            message=f"{function} did not finish within {limit:g} s (an endless loop?)",
        )
    return RuleResult(name, "crashed", message=f"{function} crashed: {lost}")


# ---------------------------------------------------------------- writing the results


def write_json(report: Report, path: str | Path) -> Path:
    """Gradescope's ``results.json``, written whole or not at all."""
    return outputs.write_text(path, json.dumps(report.to_gradescope(), indent=2, ensure_ascii=False) + "\n")
