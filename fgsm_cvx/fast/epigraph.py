"""Projection onto the epigraph K = {(beta, t) : eps sigma_S(beta) <= t} (THEORY.md §2).

For a symmetric set S with a Euclidean projection P_S, the proximal operator of the
support function follows from Moreau's decomposition,

.. math:: \\mathrm{prox}_{c\\,\\sigma_S}(v) = v - c\\,P_S(v / c),

and the KKT conditions of min ||beta - beta0||^2/2 + (t - t0)^2/2 over K give
beta = prox_{lam eps sigma_S}(beta0), t = t0 + lam with lam >= 0 the root of the
decreasing function phi(lam) = eps sigma_S(beta(lam)) - t0 - lam. The same holds with
sigma_S replaced by any convex h >= 0 with a prox (the ridge and L_r penalties of
generalized FGSM): beta = prox_{lam eps h}(beta0).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq

from ..perturbations import Perturbation, prox_support


class SupportShift:
    """The support function sigma_S of a symmetric set S as a shift h: value and prox.

    .. math:: \\mathrm{prox}_{c\\,\\sigma_S}(v) = v - c\\,P_S(v / c)  \\quad (Moreau).
    """

    def __init__(self, perturbation):
        self.perturbation = perturbation

    def __repr__(self):
        return f"SupportShift({self.perturbation!r})"

    def value(self, beta):
        return self.perturbation.support(beta)

    def prox(self, v, c):
        return prox_support(self.perturbation, v, c)


def project_epigraph(shift, beta0, t0, eps):
    """Euclidean projection of (beta0, t0) onto {eps h(beta) <= t}.

    ``shift`` is h: a ``SupportShift`` (or a symmetric ``Perturbation``, wrapped into
    one) or any convex h >= 0 with ``value`` and ``prox`` (a convex ``Penalty``). The KKT
    conditions in the module docstring hold for any such h.
    """
    if isinstance(shift, Perturbation):
        shift = SupportShift(shift)
    if eps == 0.0:
        return beta0, max(t0, 0.0)
    s0 = eps * shift.value(beta0)
    if s0 <= t0:
        return beta0, t0

    def phi(lam):
        return eps * shift.value(shift.prox(beta0, lam * eps)) - t0 - lam

    # phi(0) = s0 - t0 > 0 and phi(lam) <= s0 - t0 - lam (h(prox) <= h(beta0)), so the
    # root lies in [0, s0 - t0].
    hi = s0 - t0
    if phi(hi) >= 0.0:  # only by rounding: the root is at hi
        lam = hi
    else:
        lam = brentq(phi, 0.0, hi, xtol=1e-15 * max(1.0, hi), rtol=4 * np.finfo(float).eps)
    return shift.prox(beta0, lam * eps), t0 + lam
