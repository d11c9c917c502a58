"""The options of the command line: one validation style for every value, and the options several
subcommands share.

Each type function is an argparse ``type``: argparse calls it while parsing, so a bad value is
refused, with the option's name, before any work starts, and argparse turns the message into exit
status 2 (one line, ``tinygrad-softmax X: error: ...``).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------- numbers


def integer(low: int, high: int | None = None, unit: str = "") -> Callable[[str], int]:
    """An integer in [low, high]."""
    bounds = f"from {low} to {high}" if high is not None else f"at least {low}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number {bounds}{unit}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {bounds}{unit}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def integers(low: int, high: int) -> Callable[[str], tuple[int, ...]]:
    """Whole numbers in [low, high] separated by commas (``1,2``): each once, in the order given."""
    one = integer(low, high)

    def parse(text: str) -> tuple[int, ...]:
        return tuple(dict.fromkeys(one(part.strip()) for part in text.split(",")))

    parse.__name__ = "integers"
    return parse


DPI = integer(24, 600, " dots per inch")  # below 24 text is unreadable; above 600 a PNG runs to 100 MB
SEED = integer(0)  # NumPy's generators take seeds ≥ 0
POSITIVE = integer(1)


def fraction(text: str) -> float:
    """A number in [0, 1) (a momentum)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a number from 0 up to (not including) 1, got {text!r}"
        ) from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be from 0 up to (not including) 1, got {text}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (a learning rate)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return value


DAY = 86_400.0  # a time limit longer than a day is a typo, and past ~1e10 s the clocks overflow


def seconds(text: str) -> float:
    """A time limit: a positive number of seconds, at most a day."""
    value = positive_float(text)
    if value > DAY:
        raise argparse.ArgumentTypeError(f"must be at most {DAY:.0f} seconds (a day), got {text}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number ≥ 0 (a weight decay)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number ≥ 0, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number ≥ 0, got {text}")
    return value


def jacobian_classes(text: str) -> int:
    """C ≥ 2, and small enough that the demo's C×C float64 matrices fit the memory limit."""
    from ..lecture.lessons.lab import JACOBIAN_MATRICES, MAX_JACOBIAN_BYTES, jacobian_demo_bytes

    classes = integer(2)(text)
    need = jacobian_demo_bytes(classes)
    if need > MAX_JACOBIAN_BYTES:
        largest = math.isqrt(MAX_JACOBIAN_BYTES // (8 * JACOBIAN_MATRICES))
        raise argparse.ArgumentTypeError(
            f"{classes} classes need {JACOBIAN_MATRICES} float64 matrices of {classes}×{classes} = "
            f"{need / 2**30:.1f} GiB; at most {largest} classes fit in {MAX_JACOBIAN_BYTES / 2**30:.0f} GiB"
        )
    return classes


# ---------------------------------------------------------------- files and folders


def output_file(*suffixes: str) -> Callable[[str], Path]:
    """A file that can be written (its folder made if needed), with one of ``suffixes`` if given."""

    def parse(text: str) -> Path:
        from ..lecture.outputs import OutputPathError, check_file

        path = Path(text)
        if suffixes and path.suffix.lower() not in suffixes:
            raise argparse.ArgumentTypeError(
                f"cannot write {text!r}: the extension must be {', '.join(suffixes)}"
            )
        try:
            return check_file(path, "")
        except OutputPathError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.__name__ = "output file"
    return parse


# What the commands write: a new folder named like one of these is a file name given by mistake
# (``modes --out modes.png`` would otherwise make a folder modes.png/ with modes.png inside).
FILE_SUFFIXES = (".png", ".svg", ".pdf", ".gif", ".html", ".md", ".json", ".txt", ".py")


def output_folder(text: str) -> Path:
    """A folder that exists or can be made, and accepts new files."""
    from ..lecture.outputs import OutputPathError, check_folder

    path = Path(text)
    if path.suffix.lower() in FILE_SUFFIXES and not path.is_dir():
        raise argparse.ArgumentTypeError(
            f"{text!r} looks like a file name; this option takes the folder to write into "
            f"(e.g. {str(path.parent)!r})"
        )
    try:
        return check_folder(Path(text), "")
    except OutputPathError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


# ---------------------------------------------------------------- options several subcommands take


def add_layout(parser: argparse.ArgumentParser) -> None:
    """--layout: the derivation's column layout or the row layout."""
    parser.add_argument(
        "--layout",
        choices=["column", "row"],
        default="column",
        help="column: the derivation's X D×N, W C×D (default); row: X N×D, W D×C",
    )


def add_model(parser: argparse.ArgumentParser) -> None:
    """--model: the linear softmax classifier or the two-layer net."""
    parser.add_argument(
        "--model",
        choices=["linear", "mlp"],
        default="linear",
        help="linear: the linear softmax classifier (default); mlp: the two-layer net "
        "Z2 = W2 relu(W1 X + b1) + b2",
    )


def labels_list(text: str) -> tuple[int, ...]:
    """``--labels 0,2,1``: the class of each sample, whole numbers from 0."""
    try:
        labels = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected class indices like 0,2,1, got {text!r}") from None
    if any(label < 0 for label in labels):
        raise argparse.ArgumentTypeError(f"class indices start at 0, got {text!r}")
    return labels


SIZE_OPTIONS = ("samples", "classes", "features", "random_seed", "labels")


class Refused(argparse.Action):
    """An option the command takes but cannot use: refused in one line with the reason, never ignored."""

    def __init__(self, *args: Any, reason: str = "", **kwargs: Any) -> None:
        self.reason = reason
        super().__init__(*args, **kwargs)

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: Any, values: Any, option: Any = None
    ) -> None:
        parser.error(f"{option}: {self.reason}")


def add_sizes(
    parser: argparse.ArgumentParser,
    *,
    defaults: Mapping[str, int] | None = None,
    highs: Mapping[str, int | None] | None = None,
    refuse: Mapping[str, str] | None = None,
    kinds: Mapping[str, Callable[[str], int]] | None = None,
    what: str = "the linear softmax classifier only",
) -> None:
    """--samples, --classes, --features, --random-seed, --labels: the linear softmax classifier's size.

    ``defaults`` and ``highs`` change a size's default and its largest value; an option named in
    ``refuse`` (``"labels"``, ``"random_seed"``...) is still accepted by the parser but refused with
    its reason, as every lecture command takes the same options.
    """
    chosen = {"samples": 5, "classes": 3, "features": 4, "random_seed": 0, **(defaults or {})}
    top: dict[str, int | None] = {"samples": 50, "classes": 10, "features": 10, **(highs or {})}
    refused = dict(refuse or {})
    sizes = parser.add_argument_group(f"the classifier's size ({what})")
    helps = {
        "samples": ("N", f"N samples (default {chosen['samples']})", integer(1, top["samples"])),
        "classes": ("C", f"C classes (default {chosen['classes']})", integer(2, top["classes"])),
        "features": ("D", f"D features (default {chosen['features']})", integer(1, top["features"])),
        "random_seed": ("S", f"random seed of X, W and y (default {chosen['random_seed']})", integer(0)),
    }
    for name, (metavar, text, kind) in helps.items():
        kind = (kinds or {}).get(name, kind)
        flag = "--" + name.replace("_", "-")
        flags = [flag, "--seed"] if name == "random_seed" and "random_seed" not in refused else [flag]
        if name in refused:
            sizes.add_argument(
                flag, action=Refused, reason=refused[name], metavar=metavar, help=f"refused: {refused[name]}"
            )
        else:
            sizes.add_argument(*flags, dest=name, type=kind, default=chosen[name], metavar=metavar, help=text)
    if "labels" in refused:
        sizes.add_argument(
            "--labels",
            action=Refused,
            reason=refused["labels"],
            metavar="0,2,1",
            help="refused: " + refused["labels"],
        )
    else:
        sizes.add_argument(
            "--labels",
            type=labels_list,
            metavar="0,2,1",
            help="the class of each sample (default: drawn at random)",
        )


def classifier_sizes(args: argparse.Namespace) -> dict[str, Any]:
    """``build_classifier``'s D, N, C, seed and labels from the size options, the labels checked."""
    N, C = args.samples, args.classes
    labels = getattr(args, "labels", None)
    if labels is not None:
        if len(labels) != N:
            raise ValueError(f"--labels: {len(labels)} labels for --samples {N}; give one class per sample")
        if max(labels) >= C:
            raise ValueError(
                f"--labels: class {max(labels)} is out of range for --classes {C} (0 to {C - 1})"
            )
    return {"D": args.features, "N": N, "C": C, "seed": args.random_seed, "labels": labels}


def add_slide(parser: argparse.ArgumentParser) -> None:
    """--ratio and --wide: the slide a picture fits, or none."""
    parser.add_argument(
        "--ratio", choices=["16:9", "4:3"], default="16:9", help="the slide the picture fits (default: 16:9)"
    )
    parser.add_argument(
        "--wide", action="store_true", help="the full drawing at its natural width, not fitted to a slide"
    )
