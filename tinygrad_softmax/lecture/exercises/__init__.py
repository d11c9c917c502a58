"""The exercise kit: students write the backward rules, an autograder grades them.

    init(folder, ops)        my_rules.py (one rule per op, raise NotImplementedError) and README.md
    check(folder)            grade each rule alone, then the classifier with them: a Report
    solution(folder, ops)    the reference rules, which are ops.py's own

The rooms inside: ``catalogue`` (the ops, their cases and typical mistakes),
``files`` (the student's folder), ``grading`` and ``worker`` (run in a separate
process, the only place the student's code runs), ``autograder`` (time limits,
the report, Gradescope's results.json) and ``picture``.
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
