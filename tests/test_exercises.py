"""The exercise kit: a student's folder, the autograder, its report, results.json and picture."""

import ast
import hashlib
import inspect
import json
import re
import textwrap
from pathlib import Path

import pytest

from tinygrad_softmax import ops
from tinygrad_softmax.cli import main
from tinygrad_softmax.lecture import exercises
from tinygrad_softmax.lecture.bugs import BUGS
from tinygrad_softmax.lecture.exercises import picture
from tinygrad_softmax.lecture.exercises.catalogue import CLASSIFIER_OPS, EXERCISES
from tinygrad_softmax.lecture.viz import RED

ROOT = Path(__file__).resolve().parents[1]


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
    source = source.replace(
        "from __future__ import annotations\n",
        "from __future__ import annotations\n\nimport numpy as np\n\nfrom tinygrad_softmax import ops\n",
        1,
    )
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
        assert exercise.hint.split(":")[0][:30] in " ".join(source.split())
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


def test_the_solution_is_the_packages_own_rules_word_for_word():
    tree = ast.parse(exercises.solution_source(tuple(EXERCISES)))
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    for exercise in EXERCISES.values():
        own = ast.parse(textwrap.dedent(inspect.getsource(exercise.op.backward))).body[0]
        own.name = exercise.function
        assert ast.dump(functions[exercise.function]) == ast.dump(own), exercise.name


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
    assert report.score == report.max_score - 3

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
    from tinygrad_softmax.lecture import extras, slides, viz

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


@pytest.mark.parametrize("action", ["init", "check", "solution"])
def test_every_action_has_help(action, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["exercise", action, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: tinygrad-softmax exercise {action}" in capsys.readouterr().out


def test_check_without_my_rules_is_a_one_line_error(tmp_path, capsys):
    assert main(["exercise", "check", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "my_rules.py does not exist" in err and "exercise init" in err and "Traceback" not in err


def test_a_rule_that_calls_the_packages_own_rule_is_marked_wrong(tmp_path):
    rule = "def exp_backward(self, grad, x, out):\n    return ops.Exp.backward(self, grad, x, out)\n"
    _student_file(tmp_path, {"exp": rule}, names=("exp", "log"))
    exp, log = exercises.check(tmp_path).rules
    assert exp.status == "wrong" and "calls a .backward method" in exp.message
    assert log.status == "passed"


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
