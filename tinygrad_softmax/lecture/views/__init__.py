"""The views: they read a finished graph or program and show it, and never change it.

``graph`` reads a recorded graph (order, names, shapes, the backward steps),
``viz`` draws it (pictures, slides, the backward frames), ``explorer`` writes the
offline page that steps through the walk (its HTML, CSS and script in ``web/``,
with the vendored reveal.js), ``ledger`` prints the chain-rule ledger,
``slides`` holds the rule a picture meets to fit a slide, ``dot`` runs Graphviz's
``dot`` program and ``program`` reads the compiled program as a student would.
A view may use the training room (the classifier it draws), never a lesson.
"""
