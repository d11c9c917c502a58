"""The student's process: ``python -I -S worker.py SUBMISSION LIB LIMITS``, from a private folder.

The grader (``sandbox.py``) copies this file, ``backward_helpers.py`` and the
submission into a folder of their own and starts it there. It lowers its own
resource limits, puts on the module path only that folder, the standard
library and a folder holding NumPy alone (so the package, and with it the
reference rules, cannot be imported), loads the submission, says which rules it
defines, then answers one request per line on stdin: the inputs of one case, as
plain numbers; the answer is the gradients the student's rule returned, as
plain numbers too (a shape and float64 bytes). It never sees an expected value:
the grader compares. Whatever the student's code prints goes to stderr.

It imports only the standard library at its top: the grader imports it too,
for :func:`encode` and :func:`decode`.
"""

from __future__ import annotations

import base64
import importlib.abc
import importlib.util
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any, BinaryIO

HELPERS = "backward_helpers"  # what a student's file imports its helpers from
PACKAGE = "tinygrad_softmax"


def encode(array: Any) -> dict[str, Any]:
    """An array as plain data: its shape, its dtype and its bytes (base64)."""
    import numpy as np

    array = np.asarray(array)
    kind = "<i8" if array.dtype.kind in "iub" else "<f8"
    data = np.ascontiguousarray(array, dtype=kind).tobytes()
    return {"shape": list(array.shape), "dtype": kind, "data": base64.b64encode(data).decode("ascii")}


def decode(message: Any, shape: tuple[int, ...] | None = None) -> Any:
    """The array ``encode`` made, copied into a new array; ValueError when it is anything else.

    With ``shape`` the array must have that shape. Nothing but a list of ints, a
    dtype name and base64 text is read: no object of the sender's crosses.
    """
    import numpy as np

    if not isinstance(message, dict) or set(message) != {"shape", "dtype", "data"}:
        raise ValueError("not an array (a shape, a dtype and data)")
    dims, kind, data = message["shape"], message["dtype"], message["data"]
    if not isinstance(dims, list) or not all(type(n) is int and 0 <= n <= 1 << 24 for n in dims):
        raise ValueError("its shape is not a list of sizes")
    if len(dims) > 32 or kind not in ("<f8", "<i8") or not isinstance(data, str):
        raise ValueError("its dtype or data is not float64 or int64")
    count = 1
    for n in dims:
        count *= n
    if len(data) != 4 * ((8 * count + 2) // 3):  # base64 of exactly count 8-byte numbers
        raise ValueError(f"its data does not hold {count} numbers of shape {tuple(dims)}")
    raw = base64.b64decode(data, validate=True)
    array = np.frombuffer(raw, dtype=kind).reshape(dims).astype(np.float64 if kind == "<f8" else np.int64)
    if shape is not None and array.shape != tuple(shape):
        raise ValueError(f"its shape is {array.shape}, not {tuple(shape)}")
    return array


# ---------------------------------------------------------------- inside the student's process


class _NoPackage(importlib.abc.MetaPathFinder):
    """Refuses the package by name, should its folder be put on the path by hand."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == PACKAGE or name.startswith(PACKAGE + "."):
            raise ModuleNotFoundError(
                f"No module named {name!r}: the rules run without the package; "
                f"import the helpers from {HELPERS}"
            )
        return None


def _limit(limits: dict[str, int]) -> None:
    """Lower this process's limits, soft and hard alike, so no code run later can raise them."""
    import resource

    for name, value in limits.items():
        resource.setrlimit(getattr(resource, name), (value, value))


def where_raised(error: BaseException, path: str) -> str:
    """``ValueError: ... (my_rules.py line 12: return (grad @ b,))``: the error and its line in the file."""
    said = str(error).replace("\n", " ")
    if " with gufunc signature " in said:  # NumPy's matmul speaks of gufuncs
        said = said.split(", with gufunc signature ")[0] + said.split(")")[-1]
    text = f"{type(error).__name__}: {said}".strip().rstrip(":")
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == path]
    if frames:
        frame = frames[-1]
        text += f" (my_rules.py line {frame.lineno}: {(frame.line or '').strip()})"
    return text[:2000]


def answer(module: Any, request: dict[str, Any], path: str, settings_class: Any) -> dict[str, Any]:
    """Run one rule on one case's inputs; its gradients as plain data, or what went wrong."""
    import numpy as np

    function = getattr(module, request["function"], None)
    if not callable(function):
        return {"rule_error": f"my_rules.py has no function {request['function']}"}
    settings = {
        key: decode(value["array"])
        if isinstance(value, dict)
        else tuple(value)
        if isinstance(value, list)
        else value
        for key, value in request["settings"].items()
    }
    op = settings_class(request["op"], settings)
    grad = decode(request["grad"])
    inputs = [decode(x) for x in request["inputs"]]
    out = decode(request["out"])
    names = request["names"]
    who = request["function"]
    try:
        result = function(op, grad, *inputs, out)
    except NotImplementedError:
        return {"not_implemented": f"{who} raises NotImplementedError"}
    except BaseException as error:  # SystemExit or worse from the student's code: report, keep serving
        return {"raised": where_raised(error, path)}
    wanted = "(" + ", ".join(f"∂L/∂{n}" for n in names) + ("," if len(names) == 1 else "") + ")"
    if not isinstance(result, (tuple, list)):
        if isinstance(result, np.ndarray) and len(names) == 1:
            return {"rule_error": f"{who} returned an array; return a tuple {wanted} (mind the comma)"}
        return {"rule_error": f"{who} returned {type(result).__name__}; return a tuple {wanted}"}
    if len(result) != len(names):
        return {"rule_error": f"{who} returned {len(result)} values; return {len(names)}: {wanted}"}
    grads: list[dict[str, Any] | None] = []
    for name, g, x in zip(names, result, inputs):
        if g is None:
            grads.append(None)
            continue
        if not isinstance(g, (np.ndarray, np.generic)):
            return {"rule_error": f"{who} returned a {type(g).__name__} for ∂L/∂{name}; return a NumPy array"}
        if g.dtype != x.dtype:
            return {
                "rule_error": f"{who} returned ∂L/∂{name} of dtype {g.dtype}; "
                f"it must be {x.dtype}, like {name}"
            }
        grads.append(encode(np.array(g, dtype=np.float64)))
    return {"grads": grads}


def _send(channel: BinaryIO, message: dict[str, Any]) -> None:
    channel.write(json.dumps(message).encode("utf-8") + b"\n")
    channel.flush()


def main(argv: list[str]) -> int:
    submission, lib, limits = argv[1], argv[2], json.loads(argv[3])
    # The answers go to a copy of stdout; fd 1 itself now leads to stderr.
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    _limit(limits)
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [here, *[p for p in sys.path if p and "-packages" not in p], lib]
    sys.meta_path.insert(0, _NoPackage())
    sys.dont_write_bytecode = True
    import numpy  # noqa: F401  (before the student's code, which cannot then shadow it)

    try:
        spec = importlib.util.spec_from_file_location("my_rules", submission)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except BaseException as error:  # a student's file may raise anything while it loads, even SystemExit
        _send(channel, {"load_error": where_raised(error, submission)})
        return 0
    defined = [name for name in vars(module) if name.endswith("_backward") and callable(vars(module)[name])]
    _send(channel, {"ready": True, "defined": defined})
    from backward_helpers import OpSettings

    for line in sys.stdin:
        request = json.loads(line)
        _send(channel, {"id": request["id"], **answer(module, request, submission, OpSettings)})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
