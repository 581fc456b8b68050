"""Inference shared by every model: priors, the estimator base (NUTS, Laplace, MAP, MLE),
nutpie driven natively on numba kernels, and convergence diagnostics."""
