"""The process that runs the student's code: ``python -m tinygrad_softmax.lecture.exercises.worker FILE``.

It loads the file, says which rules it defines, then answers one request per
line on stdin (a rule to grade, or the classifier in one layout) with one JSON
line on its own copy of stdout. Whatever the student's code prints goes to
stderr instead, so it cannot garble the answers. The grader (``autograder.py``)
gives each request a time limit and starts a new worker when one hangs or dies.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, TextIO

from .catalogue import EXERCISES
from .grading import grade_classifier, grade_rule, load, where_raised


def _send(channel: TextIO, message: dict[str, Any]) -> None:
    channel.write(json.dumps(message) + "\n")
    channel.flush()


def main(path: str) -> int:
    # The answers go to a copy of stdout; fd 1 itself now leads to stderr.
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        module = load(path)
    except BaseException as error:  # a student's file may raise anything while it loads, even SystemExit
        _send(channel, {"load_error": where_raised(error, path)})
        return 0
    defined = [name for name, e in EXERCISES.items() if callable(getattr(module, e.function, None))]
    _send(channel, {"ready": True, "defined": defined})
    for line in sys.stdin:
        request = json.loads(line)
        try:
            if "rule" in request:
                answer = grade_rule(module, request["rule"], path)
            else:
                answer = grade_classifier(module, request["names"], request["skip"], request["layout"], path)
        except BaseException as error:  # SystemExit or worse from the student's code: report, keep serving
            answer = {"error": where_raised(error, path)}
        _send(channel, answer)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
