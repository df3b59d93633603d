"""The asymptotic theory of FGSM for GLMs, made checkable (docs/theory.md §4).

* ``GLMDesign``: iid data-generating processes (gaussian features; gaussian with normal,
  centred exponential or t noise; logistic; poisson);
* ``limit_quantities``: C, Sigma_W, kappa and V at the truth (closed form, quadrature or
  Monte Carlo);
* ``sample_limit_law``: draws of argmin_u Z(u), the limit law of sqrt(n)(theta_hat - theta0);
* ``simulate``: Monte Carlo of sqrt(n)(theta_hat - theta0) along eps_n = lam / sqrt(n),
  as a tidy pandas DataFrame (one concern per file: designs, limits, simulate).
"""

from .designs import NOISES, GLMDesign
from .limits import (
    DirectionalDerivative,
    LimitQuantities,
    directional_derivative,
    limit_quantities,
    sample_limit_law,
)
from .simulate import ESTIMATORS, simulate, summarize, zero_threshold

__all__ = ["ESTIMATORS", "NOISES", "DirectionalDerivative", "GLMDesign", "LimitQuantities",
           "directional_derivative", "limit_quantities", "sample_limit_law", "simulate",
           "summarize", "zero_threshold"]
