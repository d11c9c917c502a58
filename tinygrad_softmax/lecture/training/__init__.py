"""Training: the linear softmax classifier and the small models, fitted on the shipped data.

``classifier`` builds the linear softmax classifier of the derivation (both
layouts), ``datasets`` loads the data in ``data/`` (iris, digits) and makes the
planar sets, ``train`` runs gradient descent and saves the loss curve and the
weights. Lessons and views build on this room.
"""
