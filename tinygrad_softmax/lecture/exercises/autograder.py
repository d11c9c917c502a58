"""The grader: runs the student's file in a worker process with a time limit per rule, then reports.

:func:`check` reads ``my_rules.py`` without running it (a syntax error is one
clear message), starts the worker (``worker.py``), asks it to grade each rule
alone and then the whole classifier in both layouts, and gathers a
:class:`Report`: the text a student reads, Gradescope's ``results.json``, and the
picture of the classifier's graph with the wrong rules in red. When the worker
hangs past the time limit or dies, that rule fails and a fresh worker grades the rest.
"""

from __future__ import annotations

import ast
import contextlib
import json
import queue
import re
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .. import outputs
from .catalogue import EXERCISES
from .files import RULES_FILE

__all__ = ["RuleResult", "ClassifierResult", "Report", "check", "DEFAULT_TIME_LIMIT"]

DEFAULT_TIME_LIMIT = 10.0  # seconds per rule: a rule takes milliseconds, so only a loop reaches it
LOAD_TIME_LIMIT = 60.0  # starting Python and NumPy on a busy machine, then loading the file
LAYOUTS = ("column", "row")


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

    @property
    def passed(self) -> bool:
        return self.status == "passed"

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
    return f"∂L/∂{first['tensor']}{shape}, sent back by {first['op']}: {why}"


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

    @property
    def score(self) -> int:
        return sum(r.passed for r in self.rules) + sum(c.passed for c in self.classifiers)

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
        lines += ["", f"  {'rule':<20} {'result':<17} {'cases':>7} {'time':>9}"]
        for r in self.rules:
            cases = f"{r.cases - r.failed}/{r.cases}" if r.cases and r.status in ("passed", "wrong") else ""
            lines.append(f"  {r.function:<20} {_shout(r.status):<17} {cases:>7} {_duration(r.seconds):>9}")
            lines += _details(r.lines())
        lines.append("")
        for c in self.classifiers:
            lines.append(f"  {c.title:<46} {_shout(c.status):<9} {_duration(c.seconds):>9}")
            lines += _details(c.lines())
        tally = ", ".join(
            f"{n} {status}"
            for status in ("wrong", "not implemented", "missing", "timed out", "crashed")
            if (n := sum(r.status == status for r in self.rules))
        )
        lines += ["", f"score: {self.score} / {self.max_score}" + (f"   (rules: {tally})" if tally else "")]
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
            tests.append(
                _test(f"{k}", f"{r.function}: the backward rule of {r.name}", r.passed, [*body, *r.lines()])
            )
        for k, c in enumerate(self.classifiers, len(self.rules) + 1):
            tests.append(_test(f"{k}", c.title, c.passed, [c.status, *c.lines()]))
        results: dict[str, Any] = {
            "score": float(self.score),
            "execution_time": round(self.seconds, 3),
            "output": self.problem or f"score {self.score} / {self.max_score}",
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


def _test(number: str, name: str, passed: bool, lines: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "number": number,
        "score": 1.0 if passed else 0.0,
        "max_score": 1.0,
        "status": "passed" if passed else "failed",
        "output": "\n".join(lines),
        "visibility": "visible",
    }


def _shout(status: str) -> str:
    return "WRONG" if status == "wrong" else status


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.0f} s"


# ---------------------------------------------------------------- reading the file without running it


def _syntax_problem(path: Path, source: str) -> str:
    """'' when the file compiles, else one message: where, what, the line with a caret."""
    try:
        compile(source, str(path), "exec")
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
    return ""


def _defined_rules(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    """The rule functions the file defines at its top level, by exercise name."""
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    return {name: functions[e.function] for name, e in EXERCISES.items() if e.function in functions}


def _calls_a_backward(function: ast.FunctionDef) -> bool:
    """Whether a rule calls some ``.backward`` (the package's own rule) instead of being written out."""
    return any(isinstance(node, ast.Attribute) and node.attr == "backward" for node in ast.walk(function))


# ---------------------------------------------------------------- the worker process


class _Worker:
    """One worker process: requests in, one JSON answer per line out, each awaited with a time limit."""

    def __init__(self, path: Path) -> None:
        self.stderr: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 (closed in close())
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tinygrad_softmax.lecture.exercises.worker", str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            encoding="utf-8",
        )
        self.answers: queue.Queue[str | None] = queue.Queue()
        # A thread reads the answers, so a wait can end after a time limit on every platform.
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.answers.put(line)
        self.answers.put(None)  # the process ended

    def receive(self, limit: float) -> dict[str, Any]:
        """The next answer, or ``{"timeout": ...}`` / ``{"crash": ...}``."""
        try:
            line = self.answers.get(timeout=limit)
        except queue.Empty:
            self.close()
            return {"timeout": limit}
        if line is None:
            self.process.wait()
            return {"crash": self._crash_text()}
        return dict(json.loads(line))

    def ask(self, request: dict[str, Any], limit: float) -> dict[str, Any]:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            self.process.wait()
            return {"crash": self._crash_text()}
        return self.receive(limit)

    def _crash_text(self) -> str:
        code = self.process.returncode
        self.stderr.seek(0)
        tail = [line for line in self.stderr.read().splitlines() if line.strip()][-3:]
        how = (
            f"the process ended with status {code}"
            if code is not None and code >= 0
            else "the process was killed"
        )
        return how + (": " + " | ".join(tail) if tail else "")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):  # a pipe the dead process left broken
                    pipe.close()
        self.stderr.close()


def check(
    folder: str | Path, names: tuple[str, ...] | None = None, time_limit: float = DEFAULT_TIME_LIMIT
) -> Report:
    """Grade ``folder/my_rules.py``: each rule alone, then the classifier in both layouts.

    ``names`` are the assigned rules (default: the ones the file defines); an
    assigned rule the file lacks is "missing". The package is never modified.
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
    source = path.read_text(encoding="utf-8")

    def finished(report: Report) -> Report:
        report.seconds = time.perf_counter() - start
        report.time_limit = time_limit
        return report

    problem = _syntax_problem(path, source)
    if problem:  # the rules it meant to define, read from the def lines, so the score counts them
        meant = {m for m in re.findall(r"^def (\w+)_backward\(", source, re.M) if m in EXERCISES}
        return finished(Report(path, names or tuple(n for n in EXERCISES if n in meant), [], [], problem))
    defined = _defined_rules(ast.parse(source))
    names = names or tuple(defined)
    if not names:
        functions = ", ".join(e.function for e in list(EXERCISES.values())[:3])
        return finished(Report(path, (), [], [], f"{path.name} defines no rule ({functions}, ...)"))

    worker = _Worker(path.resolve())
    try:
        hello = worker.receive(LOAD_TIME_LIMIT)
        if "ready" not in hello:
            why = hello.get("load_error") or (
                f"it did not finish loading within {LOAD_TIME_LIMIT:.0f} s "
                "(an endless loop at the top level?)"
                if "timeout" in hello
                else hello.get("crash", "")
            )
            return finished(Report(path, names, [], [], f"{path.name} could not be loaded: {why}"))
        rules: list[RuleResult] = []
        for name in names:
            if name not in defined:
                rules.append(
                    RuleResult(
                        name, "missing", message=f"{path.name} has no function {EXERCISES[name].function}"
                    )
                )
                continue
            if _calls_a_backward(defined[name]):
                message = f"{EXERCISES[name].function} calls a .backward method: write the rule itself"
                rules.append(RuleResult(name, "wrong", message=message, hint=EXERCISES[name].hint))
                continue
            answer = worker.ask({"rule": name}, time_limit)
            rules.append(_rule_result(name, answer, time_limit))
            if "timeout" in answer or "crash" in answer:
                worker.close()
                worker = _Worker(path.resolve())
                worker.receive(LOAD_TIME_LIMIT)
        unsafe = {
            r.name: r.status for r in rules if r.status in ("timed out", "crashed") or "calls a" in r.message
        }
        classifiers = []
        for layout in LAYOUTS:
            answer = worker.ask({"layout": layout, "names": list(names), "skip": unsafe}, time_limit)
            classifiers.append(_classifier_result(layout, answer, time_limit))
            if "timeout" in answer or "crash" in answer:
                worker.close()
                worker = _Worker(path.resolve())
                worker.receive(LOAD_TIME_LIMIT)
    finally:
        worker.close()
    return finished(Report(path, names, rules, classifiers))


def _rule_result(name: str, answer: dict[str, Any], limit: float) -> RuleResult:
    if "timeout" in answer:
        return RuleResult(
            name,
            "timed out",
            limit,
            message=f"{EXERCISES[name].function} did not finish within {limit:g} s (an endless loop?)",
        )
    if "crash" in answer:
        return RuleResult(name, "crashed", message=f"{EXERCISES[name].function} crashed: {answer['crash']}")
    if "error" in answer:
        return RuleResult(
            name, "wrong", message=f"{EXERCISES[name].function} stopped the grader: {answer['error']}"
        )
    answer.pop("rule", None)
    return RuleResult(name, **answer)


def _classifier_result(layout: str, answer: dict[str, Any], limit: float) -> ClassifierResult:
    if "timeout" in answer:
        return ClassifierResult(layout, "timed out", limit, message=f"did not finish within {limit:g} s")
    if "crash" in answer:
        return ClassifierResult(layout, "crashed", message=answer["crash"])
    if "error" in answer:
        return ClassifierResult(layout, "wrong", message=answer["error"])
    answer.pop("layout", None)
    return ClassifierResult(layout, **answer)


# ---------------------------------------------------------------- writing the results


def write_json(report: Report, path: str | Path) -> Path:
    """Gradescope's ``results.json``, written whole or not at all."""
    return outputs.write_text(path, json.dumps(report.to_gradescope(), indent=2, ensure_ascii=False) + "\n")
