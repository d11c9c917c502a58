"""Training: the linear softmax classifier and the small models, fitted on the shipped data.

``classifier`` builds the linear softmax classifier of the derivation (both
layouts), ``datasets`` loads the data in ``data/`` (iris, digits) and makes the
planar sets, ``train`` runs gradient descent and saves the loss curve, the
weights and, for two features, the decision boundaries that ``boundaries``
draws. The room imports the core and the lecture's shared pieces only: lessons
and views build on it, never the other way round.
"""
