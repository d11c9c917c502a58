import os
import sys

# `python -m` puts the current folder first on the module path: a json.py there (a student's
# folder, say) would replace the standard library's json for the whole run. Nothing the package
# imports has read that folder yet, and from here on nothing will.
if sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]
    _here = os.path.realpath(os.getcwd())
    _package = os.path.dirname(os.path.realpath(__file__))
    _shadowing = sorted(
        name
        for name, module in list(sys.modules.items())
        if (path := getattr(module, "__file__", None))
        and os.path.dirname(os.path.realpath(path)) == _here
        and not os.path.realpath(path).startswith(_package + os.sep)
    )
    if _shadowing:
        sys.exit(
            f"tinygrad-softmax: {', '.join(m + '.py' for m in _shadowing)} in the current folder replaced "
            "the standard library's module; run tinygrad-softmax, or python -P -m tinygrad_softmax"
        )

from .cli import main

sys.exit(main())
