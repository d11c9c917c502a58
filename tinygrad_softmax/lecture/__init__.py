"""The lecture tools: they build the linear softmax classifier on the engine and show its graph.

Pictures (``viz``), the chain-rule ledger (``ledger``), the comparison table
(``compare``), the injected bugs (``bugs``), the lab lessons (``lab``),
training (``train``, ``datasets``) and the whole demo (``demo``). They import
the core (``tinygrad_softmax.tensor``, ``ops``, ...); the core never imports them.
"""

from .classifier import Classifier, build_classifier

__all__ = ["Classifier", "build_classifier"]
