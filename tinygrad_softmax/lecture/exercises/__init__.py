"""The exercise kit: students write the backward rules, an autograder grades them.

    init(folder, ops)        my_rules.py (one rule per op, raise NotImplementedError) and README.md
    check(folder)            grade each rule alone, then the classifier with them: a Report
    solution(folder, ops)    the model rules (each op's third hint level)

The rooms inside: ``catalogue`` (the ops, their cases, typical mistakes and hint
levels), ``files`` (the student's folder), ``grading`` (the expected values and
the verdicts, in the grader's process), ``sandbox``, ``worker`` and
``backward_helpers`` (the isolated process, the only place the student's code
runs, and all it may import), ``autograder`` (time limits, the report,
Gradescope's results.json), ``audit`` (the grader graded), ``sheet``
(pen-and-paper sheets) and ``picture``.
"""

from . import picture
from .autograder import DEFAULT_TIME_LIMIT, ClassifierResult, Report, RuleResult, check, write_json
from .catalogue import CLASSIFIER_OPS, EXERCISES, parse_ops
from .files import init, solution, solution_source, template_source

__all__ = [
    "CLASSIFIER_OPS",
    "DEFAULT_TIME_LIMIT",
    "EXERCISES",
    "ClassifierResult",
    "Report",
    "RuleResult",
    "check",
    "init",
    "parse_ops",
    "picture",
    "solution",
    "solution_source",
    "template_source",
    "write_json",
]
