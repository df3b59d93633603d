"""Projection onto the epigraph K = {(beta, t) : eps sigma_S(beta) <= t} (THEORY.md §2).

For a symmetric set S with a Euclidean projection P_S, the proximal operator of the
support function follows from Moreau's decomposition,

.. math:: \\mathrm{prox}_{c\\,\\sigma_S}(v) = v - c\\,P_S(v / c),

and the KKT conditions of min ||beta - beta0||^2/2 + (t - t0)^2/2 over K give
beta = prox_{lam eps sigma_S}(beta0), t = t0 + lam with lam >= 0 the root of the
decreasing function phi(lam) = eps sigma_S(beta(lam)) - t0 - lam.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq

from ..perturbations import prox_support  # noqa: F401  (re-exported: it lived here first)


def project_epigraph(perturbation, beta0, t0, eps):
    """Euclidean projection of (beta0, t0) onto {eps sigma_S(beta) <= t}."""
    if eps == 0.0:
        return beta0, max(t0, 0.0)
    s0 = eps * perturbation.support(beta0)
    if s0 <= t0:
        return beta0, t0

    def phi(lam):
        return eps * perturbation.support(prox_support(perturbation, beta0, lam * eps)) - t0 - lam

    # phi(0) = s0 - t0 > 0 and phi(lam) <= s0 - t0 - lam, so the root lies in [0, s0 - t0].
    hi = s0 - t0
    if phi(hi) >= 0.0:  # only by rounding: the root is at hi
        lam = hi
    else:
        lam = brentq(phi, 0.0, hi, xtol=1e-15 * max(1.0, hi), rtol=4 * np.finfo(float).eps)
    return prox_support(perturbation, beta0, lam * eps), t0 + lam
