"""The exercise subcommand: students write the backward rules (init), an autograder grades them
(check) in an isolated process, hints come in three levels (hint), the model rules (solution),
the grader graded (audit), and pen-and-paper sheets (sheet)."""

from __future__ import annotations

import argparse

from .options import output_file, seconds
from .status import report_skipped


def cmd_exercise(args: argparse.Namespace) -> int:
    """The exercise kit: students write the backward rules themselves, an autograder grades them.

    init DIR writes DIR/my_rules.py (one function per op's backward rule, to be written) and a
    README; check DIR grades each rule alone by finite differences, then the linear softmax
    classifier with them (exit status 0 only when everything passes); hint DIR OP gives a nudge,
    the concept (--level 2) or the answer (--level 3); solution DIR writes the model rules;
    audit checks that every catalogued mistake and mutant is caught; sheet writes one
    pen-and-paper sheet and answer key per student of a roster."""
    from ..lecture import exercises, extras, outputs

    if args.action == "hint":
        return _hint(args)
    if args.action == "audit":
        from ..lecture.exercises import audit

        findings = audit.audit(exercises.parse_ops(args.ops) if args.ops else None)
        print(audit.to_text(findings), end="")
        return 0 if all(f.caught for f in findings) else 1
    if args.action == "sheet":
        from ..lecture.exercises import sheet

        written = sheet.write_sheets(args.students, args.out, markdown=args.markdown)
        print(f"{len(written) // 2} sheets and their answer keys written to {args.out}")
        return 0
    if args.action in ("init", "solution"):
        names = exercises.parse_ops(args.ops)
        if args.action == "init":
            written = exercises.init(args.dir, names, force=args.force)
            print(
                f"exercise for {len(names)} rules ({', '.join(names)}) written to "
                + ", ".join(map(str, written))
            )
            print(
                f"next: write the rules in {written[0]}, then run: tinygrad-softmax exercise check {args.dir}"
            )
        else:
            path = exercises.solution(args.dir, names, force=args.force)
            print(f"the model rules ({', '.join(names)}) written to {path}")
        return 0
    assigned = exercises.parse_ops(args.ops) if args.ops else None
    if args.json:
        outputs.check_file(args.json, "--json")
    if args.picture:
        exercises.picture.check_path(args.picture)
    report = exercises.check(args.dir, assigned, time_limit=args.time_limit)
    print(report.to_text(), end="")
    if args.json:
        print(f"Gradescope results written to {exercises.write_json(report, args.json)}")
    status = 0 if report.passed else 1
    if args.picture:
        drawn = exercises.picture.draw(report, args.picture)
        if not drawn:
            return report_skipped([extras.skipped(f"the picture {args.picture}", "dot")]) or status
        where = str(drawn[0]) if len(drawn) == 1 else f"{len(drawn)} slides: " + ", ".join(map(str, drawn))
        print(f"picture written to {where}")
    return status


LEVELS = {1: "a nudge", 2: "the concept", 3: "the answer"}


def _hint(args: argparse.Namespace) -> int:
    from ..lecture.exercises import EXERCISES, files

    if args.op not in EXERCISES:
        raise ValueError(f"exercise hint: unknown op {args.op!r}; choose from {', '.join(EXERCISES)}")
    exercise = EXERCISES[args.op]
    print(f"{exercise.function}, hint {args.level} of 3 ({LEVELS[args.level]}):")
    if args.level == 1:
        print(f"  {exercise.nudge}")
    elif args.level == 2:
        print(f"  {exercise.hint}")
    else:
        print("\n" + files.rule_source(exercise))
    if args.level < 3:
        print(f"more: tinygrad-softmax exercise hint {args.dir} {args.op} --level {args.level + 1}")
    return 0


def exercise_arguments(parser: argparse.ArgumentParser) -> None:
    from .parser import _Parser  # one-line errors, as every subcommand's (parser imports this module)

    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=_Parser)
    ops_help = (
        "comma-separated ops whose backward rules to write, e.g. exp,log,sum,gather,matmul,add; "
        "'classifier' (default): the ops of the linear softmax classifier; 'all': every op"
    )
    for action, what in (
        ("init", "write DIR/my_rules.py and DIR/README.md for a student"),
        ("solution", "write the model rules (hint level 3 of every op) to DIR/my_rules.py"),
    ):
        sub = actions.add_parser(action, help=what, description=what)
        sub.add_argument("dir", metavar="DIR", help="the exercise folder")
        sub.add_argument("--ops", metavar="LIST", help=ops_help)
        sub.add_argument("--force", action="store_true", help="overwrite an existing DIR/my_rules.py")
    what = "grade DIR/my_rules.py: each rule alone, then the classifier with them"
    check = actions.add_parser("check", help=what, description=what)
    check.add_argument("dir", metavar="DIR", help="the exercise folder")
    check.add_argument(
        "--json",
        metavar="FILE",
        type=output_file(),
        help="also write Gradescope's results.json format to FILE",
    )
    check.add_argument(
        "--picture",
        metavar="FILE",
        type=output_file(),
        help="draw the classifier's graph, wrong rules in red (.png, .svg, .pdf), fitted to a 16:9 "
        "slide (FILE-1, FILE-2 when it takes two)",
    )
    check.add_argument(
        "--ops",
        metavar="LIST",
        help="the rules assigned (default: those the file defines); one missing fails",
    )
    check.add_argument(
        "--time-limit", type=seconds, default=10.0, metavar="SECONDS", help="per rule (default: 10)"
    )
    what = "a hint for one rule: --level 1 a nudge, 2 the concept, 3 the answer"
    hint = actions.add_parser("hint", help=what, description=what)
    hint.add_argument("dir", metavar="DIR", help="the exercise folder")
    hint.add_argument("op", metavar="OP", help="the op whose rule it is about, e.g. matmul")
    hint.add_argument("--level", type=int, choices=(1, 2, 3), default=1, help="1 (default), 2 or 3")
    what = "grade every catalogued mistake and mutants of each model rule; all must be caught"
    audit = actions.add_parser("audit", help=what, description=what)
    audit.add_argument(
        "--ops", metavar="LIST", help=ops_help.replace("'classifier' (default)", "'classifier'")
    )
    what = "write a pen-and-paper sheet and its answer key per student of a roster"
    sheet = actions.add_parser("sheet", help=what, description=what)
    sheet.add_argument(
        "--students", metavar="CSV", required=True, help="a roster with a column id (and name)"
    )
    sheet.add_argument("--out", metavar="DIR", default="sheets", help="the folder (default: sheets)")
    sheet.add_argument(
        "--markdown", action="store_true", help="Markdown even where matplotlib can draw a PDF"
    )
