"""A deliberately small purchase model that plugs into clvkit with only its own files.

Poisson purchases at one rate ``lam`` while alive and an exponential lifetime with rate ``mu``
(both shared by all customers). ``spec.py`` holds its math on the model contract and
``model.py`` its estimator, registered under the name ``"poisson_exp"`` when ``model`` is
imported. See docs/adding-a-model.md.
"""
