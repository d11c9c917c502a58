"""The subcommands that get a lecture in front of a room: slides (the 50-minute deck) and doctor (what this
machine has, what each part enables, and how to install the rest)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .options import SEED, integer, output_file, output_folder
from .status import report_skipped


def labels(text: str) -> tuple[int, ...]:
    """``0,2,1``: the class of each sample, in order (checked against --samples and --classes later)."""
    parts = [p.strip() for p in text.split(",")]
    try:
        return tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be whole numbers separated by commas, one class per sample, got {text!r}"
        ) from None


def cmd_slides(args: argparse.Namespace) -> int:
    """The 50-minute lecture of docs/lecture-plan.md as one offline HTML deck, OUT/index.html (reveal.js,
    inlined): → / ← or clicks to move, S opens the speaker notes with a timer, F full screen. Every slide
    is computed now by the engine at --samples, --classes, --features and --random-seed: the graph, the
    backward frames, the explorer, the checks, the injected bug, the two-layer net, the Hessian.
    --pdf also prints it, one page per slide, with a headless Chromium, Chrome or Edge
    ($TINYGRAD_SOFTMAX_CHROMIUM, else the first found)."""
    from ..lecture import deck, extras

    options = deck.DeckOptions(
        samples=args.samples,
        classes=args.classes,
        features=args.features,
        seed=args.random_seed,
        labels=args.labels,
        bug=args.inject_bug,
    )
    options.check()  # a bad size or label fails here, before any work
    built = deck.build_deck(options)
    page = deck.write_deck(built, args.out)
    size = page.stat().st_size
    print(f"deck of {len(built.slides)} slides ({options.sizes}) written to {page} ({size / 1e6:.1f} MB)")
    print(
        "open it in a browser; keys: → / ← next / back, S speaker notes and timer, F full screen, "
        "Esc overview"
    )
    skipped = list(built.skipped)
    if args.pdf:
        program = extras.browser()
        if program is None:
            skipped.append(extras.skipped(f"the PDF {args.pdf}", "browser"))
        else:
            pdf = deck.print_pdf(page.with_name("print.html"), Path(args.pdf), program)
            print(f"PDF of {deck.pdf_pages(pdf)} pages written to {pdf}")
    return report_skipped(skipped)


def slides_arguments(parser: argparse.ArgumentParser) -> None:
    from ..lecture.deck import LIMITS
    from ..lecture.lessons.bugs import BUGS

    parser.add_argument(
        "--out",
        type=output_folder,
        default="deck",
        metavar="DIR",
        help="folder of index.html (default: deck)",
    )
    parser.add_argument("--pdf", type=output_file(".pdf"), metavar="FILE", help="also print the deck to FILE")
    for name, default, letter in (("samples", 5, "N"), ("classes", 3, "C"), ("features", 4, "D")):
        low, high = LIMITS[name]
        parser.add_argument(
            f"--{name}",
            type=integer(low, high),
            default=default,
            help=f"{letter}, {low}-{high} (default {default})",
        )
    parser.add_argument(
        "--random-seed", type=SEED, default=0, help="random seed of X, W and the labels (default 0)"
    )
    parser.add_argument(
        "--labels", type=labels, metavar="Y1,Y2,...", help="the class of each sample instead of random ones"
    )
    parser.add_argument(
        "--inject-bug",
        choices=list(BUGS),
        default="missing-one-hot",
        metavar="NAME",
        help=f"the bug the deck catches (default missing-one-hot; one of {', '.join(BUGS)})",
    )


def cmd_doctor(args: argparse.Namespace) -> int:
    """Which parts this machine has: Python and NumPy (the core), Graphviz's dot, matplotlib, Pillow and a
    browser (optional); what each enables, and the install line of each missing one for this system (apt,
    brew, winget, conda, pip). Exit status 0 when the core works, whatever optional part is missing."""
    from ..lecture import doctor

    checks = doctor.diagnose()
    print(doctor.report(checks), end="")
    return 0 if doctor.core_works(checks) else 1


def doctor_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options: it only looks
