"""The exercise subcommand: students write the backward rules (init), an autograder grades them
(check), and the reference rules are the package's own (solution)."""

from __future__ import annotations

import argparse

from .options import output_file, seconds
from .status import report_skipped


def cmd_exercise(args: argparse.Namespace) -> int:
    """The exercise kit: students write the backward rules themselves, an autograder grades them.

    init DIR writes DIR/my_rules.py (one function per op's backward rule, to be written) and a
    README; check DIR grades each rule alone by finite differences, then the linear softmax
    classifier with them (exit status 0 only when everything passes); solution DIR writes the
    reference rules, which are the package's own."""
    from ..lecture import exercises, extras, outputs

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
            print(f"the reference rules ({', '.join(names)}) written to {path}")
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


def exercise_arguments(parser: argparse.ArgumentParser) -> None:
    from .parser import (
        _Parser,  # errors in one line, as every subcommand's (imported here: parser imports us)
    )

    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=_Parser)
    ops_help = (
        "comma-separated ops whose backward rules to write, e.g. exp,log,sum,gather,matmul,add; "
        "'classifier' (default): the ops of the linear softmax classifier; 'all': every op"
    )
    for action, what in (
        ("init", "write DIR/my_rules.py and DIR/README.md for a student"),
        ("solution", "write the reference rules (the package's own) to DIR/my_rules.py"),
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
