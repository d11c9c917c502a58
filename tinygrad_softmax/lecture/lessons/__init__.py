"""The lessons: each one a point of the lecture, made from the engine's own numbers.

``compare`` sets autograd beside the closed form and finite differences,
``bugs`` injects wrong backward rules into one graph, ``lab`` holds the Jacobian
demo, the naive softmax and the float32 lesson, ``second_order`` the Hessian,
Newton's method and forward mode, ``hidden_layer`` the slide after the linear
softmax classifier, and ``broadcast`` the adjoint of broadcasting as a picture.
A lesson may use the views and the training room; neither of them uses a lesson.
"""
