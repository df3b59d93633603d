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

from ..perturbations import Lp, Perturbation, _lp_coordinates, lp_norm, prox_support


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
    pert = getattr(shift, "perturbation", None)
    if type(pert) is Lp and 1.0 < pert.p < np.inf and pert.p != 2.0:
        return _project_lp_epigraph(pert.p, pert.q, beta0, t0, eps)

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


def _project_lp_epigraph(p, q, beta0, t0, eps):
    """Projection onto {eps ||beta||_q <= t} (S the l_p ball, 1 < p < inf) by one root search.

    With c = lam eps, beta = beta0 - P_{c B_p}(beta0), whose coordinates are
    sign(beta0_j) z_j with z_j + mu p z_j^(p-1) = |beta0_j| and ||z||_p = c. Parametrised
    by mu > 0 instead of lam: z(mu) decreases, so c(mu) = ||z(mu)||_p decreases and
    |beta_j| = |beta0_j| - z_j increases, and

    .. math:: g(\\mu) = \\epsilon \\|\\beta(\\mu)\\|_q - t_0 - c(\\mu) / \\epsilon

    is increasing; its root is the projection, t = t0 + lam = t0 + c / eps. One search
    over mu (each step one vectorised Newton solve for z) replaces the nested search
    over lam and, inside it, over the ball projection's multiplier (about 100x faster).
    As mu -> 0, beta -> 0 and g -> -t0 - ||beta0||_p / eps: when that is >= 0 the point
    lies in the polar cone and the projection is the origin. The caller has checked
    eps ||beta0||_q > t0, the limit of g as mu -> inf, so a root exists otherwise.
    """
    a = np.abs(beta0)
    if -t0 - lp_norm(a, p) / eps >= 0.0:
        return np.zeros_like(beta0), 0.0

    def parts(mu):
        z = _lp_coordinates(a, mu, p)
        return z, lp_norm(z, p)

    def g(mu):
        z, c = parts(mu)
        return eps * lp_norm(a - z, q) - t0 - c / eps

    lo, hi = 0.0, 1.0
    for _ in range(2000):  # bracket the root: g(lo) < 0 <= g(hi)
        if g(hi) >= 0.0:
            break
        lo, hi = hi, 4.0 * hi
    mu = brentq(g, lo, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps)
    z, c = parts(mu)
    return np.sign(beta0) * (a - z), t0 + c / eps
