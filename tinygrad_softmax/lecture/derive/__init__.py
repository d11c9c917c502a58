"""The engine writes the formula: its backward rules run on symbolic values, then named identities simplify.

``derivation`` walks the graph with the rules of ``ops.py``, ``simplify`` holds
the identities, ``render`` writes Unicode, LaTeX and index notation, ``report``
the texts the command and the demo show, ``elements`` the element view (SymPy,
imported only there) and ``slide`` the PNG (matplotlib's mathtext).
"""

from .derivation import Derivation, DerivationError, Formula, derive
from .models import LOSSES, Problem, derive_model

__all__ = ["LOSSES", "Derivation", "DerivationError", "Formula", "Problem", "derive", "derive_model"]
