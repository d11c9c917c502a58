"""The lecture tools: they build the linear softmax classifier on the engine and show its graph.

Grouped by what things are: ``lessons`` (compare, bugs, lab, second order,
hidden layer, broadcast), ``views`` (the pictures, the explorer, the ledger,
slides), ``training`` (the classifier, the data, training), ``derive`` (the
engine writes the formula) and ``exercises`` (the exercise kit). At the top sit
the shared pieces (``outputs``, ``extras``, ``numbers``, ``doctor``) and what
composes the rooms: the whole demo (``demo``) and the lecture deck (``deck``).
They import the core (``tinygrad_softmax.tensor``, ``ops``, ...); the core never
imports them.
"""

from .training.classifier import Classifier, build_classifier

__all__ = ["Classifier", "build_classifier"]
