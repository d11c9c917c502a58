"""The exercise kit: a student's folder, the autograder, its report, results.json and picture."""

import ast
import hashlib
import inspect
import json
import os
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tinygrad_softmax import ops
from tinygrad_softmax.cli import main
from tinygrad_softmax.lecture import exercises
from tinygrad_softmax.lecture.exercises import picture
from tinygrad_softmax.lecture.exercises.catalogue import CLASSIFIER_OPS, EXERCISES
from tinygrad_softmax.lecture.lessons.bugs import BUGS
from tinygrad_softmax.lecture.views.viz import RED

ROOT = Path(__file__).resolve().parents[3]


def _replace_rule(source: str, function: str, new: str) -> str:
    """``source`` with the top-level function ``function`` replaced by the text ``new``."""
    tree = ast.parse(source)
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function)
    lines = source.splitlines(keepends=True)
    return "".join(
        [*lines[: node.lineno - 1], textwrap.dedent(new).strip() + "\n", *lines[node.end_lineno :]]
    )


def _student_file(folder: Path, rules: dict[str, str], names=CLASSIFIER_OPS) -> Path:
    """The reference rules for ``names``, with some replaced by the student's ``rules`` (name → source)."""
    exercises.solution(folder, names, force=True)
    path = folder / "my_rules.py"
    source = path.read_text()
    for name, new in rules.items():
        source = _replace_rule(source, EXERCISES[name].function, new)
    path.write_text(source)
    return path


def _bug_rule(name: str) -> tuple[str, str]:
    """The injected bug ``name`` of bugs.py as a student would write it: (op name, function source).

    Its backward, renamed; the bias bugs' sample axis is the column layout's, 1, as a student
    who wrote them for Z = W X + b would have it.
    """
    op = BUGS[name].make(1)
    source = textwrap.dedent(inspect.getsource(type(op).backward))
    source = source.replace("def backward(", f"def {op.name}_backward(", 1).replace("self.sample_axis", "1")
    source = source.replace("ops.", "")  # the helpers are imported by name in a student's file
    return op.name, source


# ---------------------------------------------------------------- init, solution, check


def test_init_then_check_an_untouched_folder_scores_zero(tmp_path, capsys):
    folder = tmp_path / "hw"
    assert main(["exercise", "init", str(folder)]) == 0
    source = (folder / "my_rules.py").read_text()
    for name in CLASSIFIER_OPS:
        exercise = EXERCISES[name]
        assert f"def {exercise.function}(self, grad: Value" in source
        assert f'raise NotImplementedError("{exercise.function} is not written yet")' in source
        assert exercise.nudge in " ".join(source.split())  # the first hint level, not the answer
        assert exercise.answer.splitlines()[-1] not in source
    readme = (folder / "README.md").read_text()
    assert f"tinygrad-softmax exercise check {folder}" in readme and "What done means" in readme
    capsys.readouterr()

    assert main(["exercise", "check", str(folder)]) == 1
    out = capsys.readouterr().out
    for name in CLASSIFIER_OPS:
        assert re.search(rf"^  {EXERCISES[name].function} +not implemented ", out, re.M), name
    assert f"score: 0 / {len(CLASSIFIER_OPS) + 2}" in out
    report = exercises.check(folder)
    assert [r.status for r in report.rules] == ["not implemented"] * len(CLASSIFIER_OPS)
    assert report.score == 0 and not report.passed


def test_init_refuses_to_overwrite_a_students_work_without_force(tmp_path, capsys):
    folder = tmp_path / "hw"
    assert main(["exercise", "init", str(folder), "--ops", "exp,log"]) == 0
    (folder / "my_rules.py").write_text("# my work\n")
    assert main(["exercise", "init", str(folder)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (folder / "my_rules.py").read_text() == "# my work\n"
    assert main(["exercise", "solution", str(folder)]) == 2
    assert main(["exercise", "init", str(folder), "--force", "--ops", "exp,log"]) == 0
    assert "def exp_backward" in (folder / "my_rules.py").read_text()
    assert "def sum_backward" not in (folder / "my_rules.py").read_text()


def test_unknown_ops_are_a_one_line_error(tmp_path, capsys):
    assert main(["exercise", "init", str(tmp_path / "hw"), "--ops", "exp,softmax"]) == 2
    err = capsys.readouterr().err
    assert "'softmax'" in err and "gather" in err and "Traceback" not in err


def test_the_solution_scores_full_marks_on_every_op(tmp_path, capsys):
    folder = tmp_path / "sol"
    assert main(["exercise", "solution", str(folder), "--ops", "all"]) == 0
    capsys.readouterr()
    assert main(["exercise", "check", str(folder)]) == 0
    out = capsys.readouterr().out
    assert f"score: {len(EXERCISES) + 2} / {len(EXERCISES) + 2}" in out
    assert "WRONG" not in out and "done" in out


def test_the_model_answers_use_only_numpy_and_the_students_helpers():
    from tinygrad_softmax.lecture.exercises import files

    allowed = {"np", "self", "grad", "out", "x", "a", "b", *files.HELPER_NAMES, "tuple"}
    for exercise in EXERCISES.values():
        tree = ast.parse(files.rule_source(exercise))
        assigned = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        assert loaded <= allowed | assigned, (exercise.name, loaded - allowed - assigned)
    source = exercises.solution_source(tuple(EXERCISES))
    assert "tinygrad_softmax" not in source and "from backward_helpers import" in source


def test_the_template_has_the_same_signatures_as_the_solution():
    template = ast.parse(exercises.template_source(tuple(EXERCISES)))
    solution = ast.parse(exercises.solution_source(tuple(EXERCISES)))

    def signatures(tree):
        return {n.name: ast.dump(n.args) for n in tree.body if isinstance(n, ast.FunctionDef)}

    assert signatures(template) == signatures(solution)


def test_the_template_never_splits_a_call_across_lines():
    """A student copies self.with_kept_axes(grad, x) from the hint: it must be on one line."""
    template = exercises.template_source(tuple(EXERCISES))
    assert "self.with_kept_axes(grad, x)" in template
    split = [line for line in template.splitlines() if re.search(r"[\w.]+\([^()]*$", line)]
    assert split == []
    assert max(len(line) for line in template.splitlines()) <= 100


# ---------------------------------------------------------------- the injected bugs as a student's mistakes


def test_every_injected_bug_is_a_catalogued_mistake():
    catalogued = {m.bug: (name, m) for name, e in EXERCISES.items() for m in e.mistakes if m.bug}
    assert set(catalogued) == set(BUGS)
    for bug in BUGS:
        assert catalogued[bug][0] == _bug_rule(bug)[0]  # the mistake sits in the rule the bug breaks


@pytest.mark.parametrize("bug", list(BUGS))
def test_each_injected_bug_fails_exactly_its_rule_with_its_hint_and_is_red_in_the_picture(bug, tmp_path):
    op, source = _bug_rule(bug)
    _student_file(tmp_path, {op: source})
    report = exercises.check(tmp_path)
    assert report.wrong_rules == [op]
    wrong = next(r for r in report.rules if r.name == op)
    assert wrong.status == "wrong" and wrong.mistake == bug
    assert wrong.hint == next(m.hint for m in EXERCISES[op].mistakes if m.bug == bug)
    assert wrong.worst is not None and wrong.worst["expected"] != wrong.worst["got"]
    assert not any(c.passed for c in report.classifiers)
    assert 0 <= wrong.points < 1 and all(c.points < 1 for c in report.classifiers)
    partial = wrong.points + sum(c.points for c in report.classifiers)
    assert report.score == pytest.approx(report.max_score - 3 + partial)

    red = _red_ops(picture.to_dot(report).source)
    assert red and set(red) == {op}
    first = report.classifiers[0].first_wrong
    assert first is not None and first["op"] == op and first["reason"] == "wrong"
    # A wrong bias rule leaves the way to W right: the first wrong gradient is then b's.
    assert first["toward_w"] == (op != "add") and (first["tensor"] == "b") == (op == "add")


def _red_ops(dot_source: str) -> list[str]:
    """The op names of the op nodes drawn in red."""
    names = []
    for line in dot_source.splitlines():
        if re.match(r"\s*op\d+ \[", line) and f'color="{RED}"' in line:
            names.append(re.search(r"<B>([a-z_]+)</B>", line).group(1))
    return names


# ---------------------------------------------------------------- other typical mistakes get their hints


@pytest.mark.parametrize(
    ("name", "rule", "mistake"),
    [
        (
            "matmul",
            "def matmul_backward(self, grad, a, b, out):\n    return grad @ b, a @ grad\n",
            "transposed-factor",
        ),
        (
            "gather",
            "def gather_backward(self, grad, x, out):\n"
            "    dx = np.zeros(x.shape)\n    dx[self.positions] += grad\n    return (dx,)\n",
            "overwritten-scatter",
        ),
        ("exp", "def exp_backward(self, grad, x, out):\n    return (out,)\n", "no-chain-rule"),
        ("log", "def log_backward(self, grad, x, out):\n    return (-grad / x,)\n", "sign"),
        (
            "sum",
            "def sum_backward(self, grad, x, out):\n    return (expand(grad, x.shape) / 3,)\n",
            "sum-divided",
        ),
    ],
)
def test_typical_mistakes_are_named(name, rule, mistake, tmp_path):
    _student_file(tmp_path, {name: rule}, names=(name,))
    (result,) = exercises.check(tmp_path).rules
    assert result.status == "wrong"
    assert result.mistake == mistake
    assert result.hint


def test_a_wrong_shape_or_a_missing_comma_is_a_clear_message(tmp_path):
    rules = {
        "exp": "def exp_backward(self, grad, x, out):\n    return grad * out\n",
        "sum": "def sum_backward(self, grad, x, out):\n    return (grad,)\n",
        "log": "def log_backward(self, grad, x, out):\n    return ((grad / x).astype(np.float32),)\n",
        "neg": "def neg_backward(self, grad, x, out):\n    return (-grad, -grad)\n",
    }
    _student_file(tmp_path, rules, names=("exp", "sum", "log", "neg"))
    report = exercises.check(tmp_path)
    messages = {r.name: r.message for r in report.rules}
    assert "returned an array; return a tuple (∂L/∂x,) (mind the comma)" in messages["exp"]
    assert "sum_backward returned ∂L/∂x of shape (1, 5); it must have x's shape (3, 5)" in messages["sum"]
    assert "dtype float32; it must be float64" in messages["log"]
    assert "neg_backward returned 2 values; return 1" in messages["neg"]
    assert all("Traceback" not in m and "engine.py" not in m for m in messages.values())


def test_an_exception_names_the_students_line(tmp_path):
    rule = "def exp_backward(self, grad, x, out):\n    return (grad * undefined_name,)\n"
    path = _student_file(tmp_path, {"exp": rule}, names=("exp", "log"))
    line = path.read_text().splitlines().index("    return (grad * undefined_name,)") + 1
    exp, log = exercises.check(tmp_path).rules
    assert exp.status == "wrong" and log.status == "passed"
    assert f"NameError: name 'undefined_name' is not defined (my_rules.py line {line}:" in exp.message


# ---------------------------------------------------------------- safety


def test_an_endless_loop_times_out_that_rule_and_the_rest_are_graded(tmp_path):
    rule = "def exp_backward(self, grad, x, out):\n    while True:\n        pass\n"
    _student_file(tmp_path, {"exp": rule})
    report = exercises.check(tmp_path, time_limit=2)
    statuses = {r.name: r.status for r in report.rules}
    assert statuses.pop("exp") == "timed out"
    assert set(statuses.values()) == {"passed"}
    assert "did not finish within 2 s" in report.rules[CLASSIFIER_OPS.index("exp")].message
    # The classifier is graded too, without running the looping rule again.
    for c in report.classifiers:
        assert c.status == "wrong" and "timed out" in c.message
        assert c.first_wrong["op"] == "exp"


def test_a_crash_fails_that_rule_and_the_rest_are_graded(tmp_path):
    rule = "def log_backward(self, grad, x, out):\n    import os\n    os._exit(3)\n"
    _student_file(tmp_path, {"log": rule})
    report = exercises.check(tmp_path)
    statuses = {r.name: r.status for r in report.rules}
    assert statuses.pop("log") == "crashed"
    assert set(statuses.values()) == {"passed"}
    assert "status 3" in report.rules[CLASSIFIER_OPS.index("log")].message


def test_a_syntax_error_is_one_clear_message(tmp_path, capsys):
    exercises.init(tmp_path)
    path = tmp_path / "my_rules.py"
    source = path.read_text().replace(
        'raise NotImplementedError("exp_backward is not written yet")', "return (grad * out,"
    )
    path.write_text(source)
    line = source.splitlines().index("    return (grad * out,") + 1
    assert main(["exercise", "check", str(tmp_path), "--json", str(tmp_path / "results.json")]) == 1
    out = capsys.readouterr().out
    assert "Traceback" not in out
    problems = [text for text in out.splitlines() if "syntax error" in text]
    assert len(problems) == 1 and problems[0].startswith("my_rules.py line ")
    assert str(line) in problems[0] or str(line + 1) in problems[0]  # Python may point past the open paren
    # The score counts the rules the file meant to define, and the two layouts.
    assert f"score: 0 / {len(CLASSIFIER_OPS) + 2}" in out
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["score"] == 0 and "syntax error" in results["output"]
    assert len(results["tests"]) == len(CLASSIFIER_OPS) + 2
    assert all(t["score"] == 0 and "syntax error" in t["output"] for t in results["tests"])
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(results, _documented_schema())


def test_the_package_is_never_modified(tmp_path):
    before = hashlib.sha256(Path(ops.__file__).read_bytes()).hexdigest()
    rules = {name: ops.Exp.backward for name in ("exp",)}
    op, source = _bug_rule("exp-rule")
    _student_file(tmp_path, {op: source})
    exercises.check(tmp_path)
    assert hashlib.sha256(Path(ops.__file__).read_bytes()).hexdigest() == before
    assert ops.Exp.backward is rules["exp"]
    assert ops.Exp(), "the op still builds"


# ---------------------------------------------------------------- results.json


def _documented_schema() -> dict:
    text = (ROOT / "docs" / "exercises.md").read_text()
    block = re.search(r"<!-- results.json schema -->\s*```json\n(.*?)```", text, re.S)
    assert block, "docs/exercises.md documents the results.json schema"
    return json.loads(block.group(1))


def _documented_sample() -> dict:
    text = (ROOT / "docs" / "exercises.md").read_text()
    block = re.search(r"<!-- results.json sample -->\s*```json\n(.*?)```", text, re.S)
    assert block, "docs/exercises.md shows a sample results.json"
    return json.loads(block.group(1))


def test_results_json_validates_against_the_documented_format(tmp_path, capsys):
    jsonschema = pytest.importorskip("jsonschema")
    op, source = _bug_rule("sign-flip")
    _student_file(
        tmp_path,
        {op: source, "exp": "def exp_backward(self, grad, x, out):\n    raise NotImplementedError\n"},
    )
    results_path = tmp_path / "out" / "results.json"
    assert main(["exercise", "check", str(tmp_path), "--json", str(results_path)]) == 1
    results = json.loads(results_path.read_text())
    schema = _documented_schema()
    jsonschema.validate(results, schema)
    jsonschema.validate(_documented_sample(), schema)
    assert results["score"] == sum(t["score"] for t in results["tests"]) == len(CLASSIFIER_OPS) - 2
    by_name = {t["name"].split(":")[0]: t for t in results["tests"]}
    assert by_name["neg_backward"]["status"] == "failed" and "hint:" in by_name["neg_backward"]["output"]
    assert by_name["matmul_backward"]["score"] == by_name["matmul_backward"]["max_score"] == 1
    # A schema that checks nothing would pass anything: a broken file must fail it.
    del results["tests"][0]["max_score"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(results, schema)


# ---------------------------------------------------------------- the picture


def test_the_picture_is_drawn(tmp_path, capsys):
    from tinygrad_softmax.lecture import extras

    if not extras.have("dot"):
        pytest.skip("Graphviz's dot is not installed")
    op, source = _bug_rule("missing-one-hot")
    _student_file(tmp_path, {op: source})
    picture_path = tmp_path / "wrong.png"
    assert main(["exercise", "check", str(tmp_path), "--picture", str(picture_path)]) == 1
    out = capsys.readouterr().out
    drawn = sorted(tmp_path.glob("wrong*.png"))  # the wrong sub is inside cross_entropy: two slides
    assert [p.name for p in drawn] == ["wrong-1.png", "wrong-2.png"]
    assert "picture written to 2 slides: " + ", ".join(map(str, drawn)) in out
    for path in drawn:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("bugs", "slides_drawn"), [(["bias-not-summed"], 1), (["missing-one-hot", "exp-rule"], 2)]
)
def test_the_picture_fits_a_slide_and_shows_every_red_op(tmp_path, capsys, bugs, slides_drawn):
    from tinygrad_softmax.lecture import extras
    from tinygrad_softmax.lecture.views import slides, viz

    if not extras.have("dot"):
        pytest.skip("Graphviz's dot is not installed")
    rules = dict(_bug_rule(bug) for bug in bugs)
    _student_file(tmp_path, rules)
    report = exercises.check(tmp_path)
    (tmp_path / "wrong-3.png").write_bytes(b"from an earlier check")  # must not be left to mislead
    drawn = picture.draw(report, tmp_path / "wrong.png")
    assert drawn is not None and len(drawn) == slides_drawn
    assert sorted(p.name for p in tmp_path.glob("wrong*.png")) == sorted(p.name for p in drawn)
    root, options = picture._drawing(report)
    sources = viz.rendering.slide_sources(root, options, "16:9", None)  # what draw rendered
    red = []
    for path, source in zip(drawn, sources):
        assert viz.png_size(path) == slides.SLIDE
        assert viz.rendering.slide_text_px(source, None) >= slides.MIN_TEXT_PX
        red += _red_ops(source)
    assert set(red) == set(rules)  # every wrong op in red, none hidden in a collapsed cross_entropy
    assert main(["exercise", "check", str(tmp_path), "--picture", str(tmp_path / "wrong.png")]) == 1
    out = capsys.readouterr().out
    assert ("2 slides: " in out) == (slides_drawn == 2)


def test_a_bad_picture_name_is_refused_before_grading(tmp_path, capsys):
    exercises.init(tmp_path)
    assert main(["exercise", "check", str(tmp_path), "--picture", str(tmp_path / "wrong.jpg")]) == 2
    captured = capsys.readouterr()
    assert "'.jpg' is not one of .png, .svg, .pdf" in captured.err and "Grading" not in captured.out


@pytest.mark.parametrize("action", ["init", "check", "solution", "hint", "audit", "sheet"])
def test_every_action_has_help(action, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["exercise", action, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: tinygrad-softmax exercise {action}" in capsys.readouterr().out


def test_check_without_my_rules_is_a_one_line_error(tmp_path, capsys):
    assert main(["exercise", "check", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "my_rules.py does not exist" in err and "exercise init" in err and "Traceback" not in err


def test_the_report_fits_100_columns(tmp_path):
    rules = {
        "matmul": "def matmul_backward(self, grad, a, b, out):\n    return grad @ b, a @ grad\n",
        "gather": "def gather_backward(self, grad, x, out):\n"
        "    dx = np.zeros(x.shape)\n    dx[self.positions] += grad\n    return (dx,)\n",
    }
    _student_file(tmp_path, rules)
    text = exercises.check(tmp_path).to_text()
    lines = text.splitlines()[1:]  # the first names the file, whose path may be long
    assert max(len(line) for line in lines) <= 100
    assert "hint: a transposed factor" in text and "hint: an entry picked more than once" in text


# ---------------------------------------------------------------- a hostile submission
# One file, one attack per rule; graded once for all the tests below. Each attack must get
# 0 for its rule, change nothing outside the student's process, and leave no process behind.

ROOT_ONLY = pytest.mark.skipif(
    not (hasattr(os, "geteuid") and os.geteuid() == 0),
    reason="the student's process runs as another user only when the grader runs as root",
)

ATTACKS = {
    # rule: (what it tries, the rule's source; RESULTS, SENTINEL, MARKER are filled in)
    "matmul": (
        "patching the grader's functions at import time",
        "def matmul_backward(self, grad, a, b, out):\n    return np.zeros(a.shape), np.zeros(b.shape)\n",
    ),
    "add": (
        "calling the installed package's rule as getattr(..., 'back' + 'ward')",
        "def add_backward(self, grad, a, b, out):\n"
        "    import importlib, os, sys\n"
        "    import numpy\n"
        "    sys.path.append(os.path.dirname(os.path.dirname(os.path.realpath(numpy.__file__))))\n"
        "    module = importlib.import_module('tinygrad_' + 'softmax.ops')\n"
        "    return getattr(module.Add, 'back' + 'ward')(self, grad, a, b, out)\n",
    ),
    "sub": (
        "walking the stack up to the grader's frame for its expected values",
        "def sub_backward(self, grad, a, b, out):\n"
        "    import sys\n"
        "    frame = sys._getframe()\n"
        "    while frame is not None:\n"
        "        for name in ('expected', 'reference', 'want'):\n"
        "            if name in frame.f_locals:\n"
        "                return tuple(frame.f_locals[name])\n"
        "        frame = frame.f_back\n"
        "    return np.zeros(a.shape), np.zeros(b.shape)\n",
    ),
    "exp": (
        "an ndarray subclass whose subtraction lies",
        "class Liar(np.ndarray):\n"
        "    def __sub__(self, other):\n"
        "        return np.zeros(self.shape)\n"
        "    __rsub__ = __sub__\n"
        "    def __eq__(self, other):\n"
        "        return np.ones(self.shape, bool)\n"
        "    def __abs__(self):\n"
        "        return np.zeros(self.shape)\n\n\n"
        "def exp_backward(self, grad, x, out):\n    return (np.zeros(x.shape).view(Liar),)\n",
    ),
    "sum": (
        "deleting a file outside its folder",
        "def sum_backward(self, grad, x, out):\n"
        "    import os\n    os.remove(SENTINEL)\n"
        "    return (expand(self.with_kept_axes(grad, x), x.shape),)\n",
    ),
    "log": (
        "starting 30 processes that outlive the grader",
        "def log_backward(self, grad, x, out):\n"
        "    import subprocess\n"
        "    for _ in range(30):\n"
        "        subprocess.Popen(['sleep', '31.4159'], start_new_session=True)\n"
        "    return (grad / x,)\n",
    ),
    "gather": (
        "allocating 1.6 GB",
        "def gather_backward(self, grad, x, out):\n"
        "    hoard = np.ones(1600 << 20, dtype=np.uint8)\n"
        "    return (scatter_add(grad, self, x.shape) + hoard[0] - 1,)\n",
    ),
    "mean": (
        "flooding stderr with 300 MB",
        "def mean_backward(self, grad, x, out):\n"
        "    import sys\n"
        "    block = 'x' * (1 << 20)\n"
        "    for _ in range(300):\n"
        "        sys.stderr.write(block)\n"
        "    raise RuntimeError('flooded')\n",
    ),
    "neg": (
        "a forked child holding the answer pipe, hanging",
        "def neg_backward(self, grad, x, out):\n"
        "    import os, time\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(3600)\n"
        "    while True:\n"
        "        pass\n",
    ),
    "mul": (
        "a detached grandchild rewriting results.json",
        "def mul_backward(self, grad, a, b, out):\n"
        "    import os, time\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(0.2)\n"
        "            with open(RESULTS, 'w') as file:\n"
        "                file.write('{\"score\": 100}')\n"
        "        os._exit(0)\n"
        "    return sum_to(grad * b, a.shape), sum_to(grad * a, b.shape)\n",
    ),
    "div": (
        "forging answers in the answer pipe",
        "def div_backward(self, grad, a, b, out):\n"
        "    import os\n"
        '    forged = b\'{"id": 0, "grads": "all right", "status": "passed", "score": 1}\\n\'\n'
        "    for fd in range(3, 12):\n"
        "        try:\n"
        "            os.write(fd, forged)\n"
        "        except OSError:\n"
        "            pass\n"
        "    return np.zeros(a.shape), np.zeros(b.shape)\n",
    ),
    "pow": (
        "writing a json.py into its working folder and importing it",
        "def pow_backward(self, grad, x, out):\n"
        "    import importlib, sys\n"
        "    with open('json.py', 'w') as file:\n"
        "        file.write('raise SystemExit(0)')\n"
        "    sys.modules.pop('json', None)\n"
        "    importlib.import_module('json')\n"
        "    return (np.zeros(x.shape),)\n",
    ),
}

ATTACK_HEADER = """
import sys as _sys

try:  # the attack of the first rule: patch whatever grades, at import time
    _main = _sys.modules["__main__"]
    _answer = _main.answer

    def _forged(module, request, path, settings):
        if request["function"] == "matmul_backward":
            return {"status": "passed", "score": 1, "grads": None}
        return _answer(module, request, path, settings)

    _main.answer = _forged
    import tinygrad_softmax.lecture.exercises.grading as _grading

    _grading.grade_rule = lambda *a, **k: {"status": "passed"}
except Exception:
    pass
"""


def _processes_with(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """The hostile submission graded once: the report, results.json's text, and what the attacks touched."""
    import resource
    import time

    folder = tmp_path_factory.mktemp("hostile")
    outside = tmp_path_factory.mktemp("outside")
    sentinel = outside / "keep.txt"
    sentinel.write_text("keep me")
    results = folder / "results.json"
    marker = outside / "json-ran"
    (folder / "json.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    names = (*ATTACKS, "reshape")
    exercises.solution(folder, names, force=True)
    source = (folder / "my_rules.py").read_text()
    source = source.replace("\n\ndef ", ATTACK_HEADER + "\n\ndef ", 1)
    for name, (_, rule) in ATTACKS.items():
        rule = rule.replace("SENTINEL", repr(str(sentinel))).replace("RESULTS", repr(str(results)))
        source = _replace_rule(source, EXERCISES[name].function, rule)
    (folder / "my_rules.py").write_text(source)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.monotonic()
    report = exercises.check(folder, names, time_limit=10)
    seconds = time.monotonic() - start
    exercises.write_json(report, results)
    written = results.read_text()
    time.sleep(0.5)  # a grandchild that slept 0.2 s would have rewritten it by now
    return {
        "report": report,
        "rules": {r.name: r for r in report.rules},
        "written": written,
        "results": results,
        "sentinel": sentinel,
        "marker": marker,
        "grown_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before,
        "seconds": seconds,
    }


# Attacks that only another user id stops: as the grader's own user they would succeed.
NEEDS_ANOTHER_USER = {"sum"}
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


# The hostile submission is graded once per worker: its tests share one worker.
HOSTILE = pytest.mark.xdist_group("hostile-submission")


@HOSTILE
@pytest.mark.parametrize("name", list(ATTACKS))
def test_each_attack_gets_0_for_its_rule(hostile, name):
    if name in NEEDS_ANOTHER_USER and not IS_ROOT:
        pytest.skip("the student's process runs as another user only when the grader runs as root")
    rule = hostile["rules"][name]
    assert rule.points == 0 and not rule.passed, (ATTACKS[name][0], rule.status, rule.message)
    assert "Traceback" not in hostile["report"].to_text()


@HOSTILE
def test_a_hostile_file_still_grades_its_honest_rule_and_scores_only_that(hostile):
    assert hostile["rules"]["reshape"].passed
    honest = 1 if IS_ROOT else 1 + hostile["rules"]["sum"].points
    assert hostile["report"].score == honest
    results = json.loads(hostile["written"])
    assert results["score"] == honest and sum(t["score"] for t in results["tests"]) == honest


@HOSTILE
def test_the_attacks_say_why_they_failed(hostile):
    rules = hostile["rules"]
    assert "No module named 'tinygrad_softmax" in rules["add"].message
    assert "could not be read" in rules["matmul"].message
    if IS_ROOT:
        assert "PermissionError" in rules["sum"].message
    assert (
        "BlockingIOError" in rules["log"].message
        or "Resource temporarily unavailable" in rules["log"].message
    )
    assert "MemoryError" in rules["gather"].message
    # 300 MB through a pipe takes a second or more; on a busy machine it may use up the time limit
    assert "flooded" in rules["mean"].message or rules["mean"].status == "timed out"
    assert rules["neg"].status in ("wrong", "timed out")


@HOSTILE
def test_no_attack_reaches_outside_the_students_process(hostile):
    if IS_ROOT:  # as the grader's own user, its process may delete what that user may
        assert hostile["sentinel"].read_text() == "keep me"
    assert not hostile["marker"].exists(), "the submission folder's json.py ran"
    assert hostile["results"].read_text() == hostile["written"], "results.json was rewritten"
    assert _processes_with("31.4159") == [], "a process the submission started outlived the check"
    assert hostile["grown_kb"] < 100_000, "the stderr flood or an answer grew the grader"
    assert hostile["seconds"] < 60


@ROOT_ONLY
def test_as_root_the_students_process_runs_as_a_fresh_user_who_can_write_nothing_of_ours(tmp_path):
    exercises.solution(tmp_path, ("exp",), force=True)
    probe = tmp_path / "probe.txt"
    source = (
        (tmp_path / "my_rules.py")
        .read_text()
        .replace(
            "    return (grad * out,)",
            f"    import os\n    open({str(probe)!r}, 'w').write(str(os.getuid()))\n    return (grad * out,)",
        )
    )
    (tmp_path / "my_rules.py").write_text(source)
    (result,) = exercises.check(tmp_path).rules
    assert result.points == 0 and "PermissionError" in result.message
    assert not probe.exists()
    report = exercises.check(tmp_path, ("exp",))
    assert report.note == ""


def test_a_nul_byte_is_reported_with_its_line_and_column(tmp_path, capsys):
    exercises.solution(tmp_path, ("exp",), force=True)
    path = tmp_path / "my_rules.py"
    lines = path.read_text().splitlines(keepends=True)
    number = next(i for i, line in enumerate(lines) if "return (grad * out,)" in line)
    lines[number] = lines[number].replace("grad * out", "grad *\x00 out")
    path.write_text("".join(lines))
    column = lines[number].index("\x00") + 1
    assert main(["exercise", "check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"my_rules.py line {number + 1}, column {column} (byte " in out and "NUL byte" in out
    assert "line None" not in out and "Traceback" not in out


def test_a_file_not_in_utf8_is_reported_with_its_line(tmp_path, capsys):
    exercises.solution(tmp_path, ("exp",), force=True)
    path = tmp_path / "my_rules.py"
    path.write_bytes(path.read_bytes().replace(b"return (grad * out,)", b"return (grad * out,)  # \xff"))
    assert main(["exercise", "check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "is not UTF-8" in out and "Traceback" not in out


@pytest.mark.parametrize(
    "expression",
    ["1" + " + 1" * 200_000, "(" * 5_000 + "1" + ")" * 5_000, "-" * 100_000 + "1"],
    ids=["long sum", "deep parentheses", "many signs"],
)
def test_a_long_generated_expression_is_a_grade_and_a_reason(tmp_path, capsys, expression):
    exercises.solution(tmp_path, ("exp",), force=True)
    path = tmp_path / "my_rules.py"
    path.write_text(path.read_text() + f"\nX = {expression}\n")
    assert main(["exercise", "check", str(tmp_path), "--json", str(tmp_path / "r.json")]) == 1
    out = capsys.readouterr().out
    assert "Traceback" not in out and "score: 0 / 3" in out
    assert json.loads((tmp_path / "r.json").read_text())["score"] == 0


def test_json_py_in_the_current_folder_never_runs_under_python_m(tmp_path):
    import subprocess
    import sys

    exercises.solution(tmp_path, ("exp",), force=True)
    marker = tmp_path / "json-ran"
    (tmp_path / "json.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    done = subprocess.run(
        [sys.executable, "-m", "tinygrad_softmax", "exercise", "check", ".", "--json", "r.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert not marker.exists(), done.stdout + done.stderr
    assert done.returncode == 0 and json.loads((tmp_path / "r.json").read_text())["score"] == 3


# ---------------------------------------------------------------- hints, audit, sheets


def test_the_three_hint_levels_go_from_a_nudge_to_the_answer(capsys):
    levels = []
    for level in ("1", "2", "3"):
        assert main(["exercise", "hint", "hw", "matmul", "--level", level]) == 0
        levels.append(capsys.readouterr().out)
    answer = "return grad @ b.T, a.T @ grad"
    assert EXERCISES["matmul"].nudge in levels[0] and answer not in levels[0] and "--level 2" in levels[0]
    assert EXERCISES["matmul"].hint in levels[1] and answer not in levels[1]
    assert answer in levels[2] and "def matmul_backward(self, grad" in levels[2]
    assert main(["exercise", "hint", "hw", "softmax"]) == 2
    assert "unknown op 'softmax'" in capsys.readouterr().err


def test_the_audit_catches_every_catalogued_mistake_and_every_mutant(capsys):
    from tinygrad_softmax.lecture.exercises import audit

    findings = audit.audit()
    survivors = [(f.rule, f.name) for f in findings if not f.caught]
    assert survivors == []
    kinds = {f.name.split(":")[0] for f in findings if f.kind == "mutant"}
    for kind in (
        "a sign",
        "a transpose",
        "a missing sum over the batch",
        "the mean for the sum",
        "the wrong axis",
    ):
        assert kind in kinds
    assert "an assignment instead of an addition" in kinds
    # An injected bug is named as itself, so the student reads its own hint.
    for f in findings:
        if f.kind == "mistake" and any(m.bug and m.name == f.name for m in EXERCISES[f.rule].mistakes):
            assert f.named == f.name, f
    assert len(findings) > 100
    assert main(["exercise", "audit", "--ops", "gather"]) == 0
    out = capsys.readouterr().out
    assert "an assignment instead of an addition" in out and "0 survived" in out


def test_an_equivalent_mutant_would_survive_and_fail_the_audit(monkeypatch):
    """The audit can fail: with only the one-pick-per-line cases, assigning is as good as adding."""
    from tinygrad_softmax.lecture.exercises import audit, grading

    cases = grading.graded_cases("gather")
    monkeypatch.setattr(grading, "graded_cases", lambda name: cases[:2] if name == "gather" else cases)
    monkeypatch.setattr(audit, "graded_cases", grading.graded_cases)
    monkeypatch.setattr(audit, "grade_rule", grading.grade_rule)
    findings = audit.audit(("gather",))
    assert any(not f.caught and "assignment" in f.name for f in findings)


def test_sheets_are_one_per_student_the_same_when_written_again(tmp_path, capsys):
    from tinygrad_softmax import analytic
    from tinygrad_softmax.lecture.exercises import sheet

    roster = tmp_path / "roster.csv"
    roster.write_text("id,name\ns1,Ada\ns2,Alan\n")
    assert (
        main(["exercise", "sheet", "--students", str(roster), "--out", str(tmp_path / "md"), "--markdown"])
        == 0
    )
    first = {p.name: p.read_text() for p in (tmp_path / "md").iterdir()}
    assert sorted(first) == ["s1-key.md", "s1.md", "s2-key.md", "s2.md"]
    assert (
        main(["exercise", "sheet", "--students", str(roster), "--out", str(tmp_path / "md"), "--markdown"])
        == 0
    )
    assert first == {p.name: p.read_text() for p in (tmp_path / "md").iterdir()}
    assert first["s1.md"] != first["s2.md"] and "dZ" in first["s1.md"] and "Ada" in first["s1.md"]
    n = sheet.numbers_for("s1")
    _, dz, dw, db = analytic.linear_classifier(n.W, n.b, n.X, n.y, layout="column")
    assert np.allclose(n.dZ, dz) and np.allclose(n.dW, dw) and np.allclose(n.db, db)
    assert n.dZ.shape == (3, 2)
    assert main(["exercise", "sheet", "--students", str(tmp_path / "none.csv")]) == 2


def test_sheets_are_pdfs_where_matplotlib_draws(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    roster = tmp_path / "roster.csv"
    roster.write_text("id\ns1\n")
    assert main(["exercise", "sheet", "--students", str(roster), "--out", str(tmp_path / "pdf")]) == 0
    assert sorted(p.name for p in (tmp_path / "pdf").iterdir()) == ["s1-key.pdf", "s1.pdf"]
    assert (tmp_path / "pdf" / "s1.pdf").read_bytes()[:5] == b"%PDF-"


def test_partial_credit_names_the_reason_of_each_failed_case(tmp_path, capsys):
    rules = {
        # b's gradient summed over the classes (axis 0) instead of the samples
        "add": "def add_backward(self, grad, a, b, out):\n    return grad, grad.sum(axis=0, keepdims=True)\n",
        # the mean's rule where the sum's belongs
        "sum": "def sum_backward(self, grad, x, out):\n"
        "    return (expand(self.with_kept_axes(grad, x), x.shape) / (x.size // max(1, out.size)),)\n",
        # right on one pick per line, wrong where labels repeat
        "gather": "def gather_backward(self, grad, x, out):\n"
        "    dx = np.zeros(x.shape)\n    dx[self.positions] = grad\n    return (dx,)\n",
    }
    _student_file(tmp_path, rules, names=("add", "sum", "gather"))
    results_path = tmp_path / "results.json"
    assert main(["exercise", "check", str(tmp_path), "--json", str(results_path)]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "a sum over the wrong axis: over axis 0, where axis 1 is the one to sum" in out
    assert "the mean's rule is used for the sum" in out
    assert "right shape, wrong values: an entry picked more than once (repeated labels)" in out
    tests = {t["name"].split(":")[0]: t for t in json.loads(results_path.read_text())["tests"]}
    assert tests["gather_backward"]["score"] == pytest.approx(2 / 3, abs=1e-3)
    assert "repeated labels" in tests["gather_backward"]["output"]
    assert 0 < tests["add_backward"]["score"] < 1 and "wrong axis" in tests["add_backward"]["output"]
    assert tests["sum_backward"]["score"] < 1


def test_the_picture_marks_a_passed_rule_apart_from_the_wrong_gradient_it_carries(tmp_path):
    from tinygrad_softmax.lecture import extras
    from tinygrad_softmax.lecture.views import viz

    if not extras.have("dot"):
        pytest.skip("Graphviz's dot is not installed")
    _student_file(tmp_path, dict([_bug_rule("exp-rule")]))
    report = exercises.check(tmp_path)
    assert report.wrong_rules == ["exp"] and report.classifiers[0].first_wrong["tensor"] == "Z − max"
    root, options = picture._drawing(report)
    lines = [
        line
        for source in viz.rendering.slide_sources(root, options, "16:9", None)
        for line in source.splitlines()
        if re.match(r"\s*op\d+ \[", line) and f'color="{RED}"' in line
    ]
    solid = {re.search(r"<B>([a-z_]+)</B>", line).group(1) for line in lines if "dashed" not in line}
    dashed = {re.search(r"<B>([a-z_]+)</B>", line).group(1) for line in lines if "dashed" in line}
    # exp's rule is wrong: solid red. sub's rule passed; its output's gradient is the first wrong one,
    # sent back by exp: a dashed red border, the op's name in black.
    assert solid == {"exp"} and dashed == {"sub"}
    assert all(f'COLOR="{RED}"><B>sub' not in line for line in lines)
