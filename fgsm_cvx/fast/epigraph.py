"""Projection onto the epigraph K = {(beta, t) : eps sigma_S(beta) <= t} (THEORY.md §2).

For a symmetric set S with a Euclidean projection P_S, the proximal operator of the
support function follows from Moreau's decomposition,

.. math:: \\mathrm{prox}_{c\\,\\sigma_S}(v) = v - c\\,P_S(v / c),

and the KKT conditions of min ||beta - beta0||^2/2 + (t - t0)^2/2 over K give
beta = prox_{lam eps sigma_S}(beta0), t = t0 + lam with lam >= 0 the root of the
decreasing function phi(lam) = eps sigma_S(beta(lam)) - t0 - lam. The same holds with
sigma_S replaced by any convex h >= 0 with a prox (the ridge and L_r penalties of
generalized FGSM): beta = prox_{lam eps h}(beta0).

An asymmetric box has two shifts, {eps sigma_S(beta) <= t_up, eps sigma_S(-beta) <= t_dn},
projected onto by ``box.project_box_epigraph`` (two multipliers).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq

from ..perturbations import Group, Lp, Perturbation, _lp_coordinates, lp_norm, prox_support
from .box import BoxShift, project_box_epigraph


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
    conditions in the module docstring hold for any such h. A ``BoxShift`` (or an
    asymmetric ``Box`` / ``Masked`` box) takes t0 = (t0_up, t0_dn) and returns t as a pair
    (``box.project_box_epigraph``).
    """
    if isinstance(shift, Perturbation) and not shift.symmetric:
        box = BoxShift.from_perturbation(shift, np.shape(beta0)[0])
        if box is None:
            raise NotImplementedError(f"no closed-form epigraph projection for {shift!r}")
        shift = box
    if isinstance(shift, BoxShift):
        return project_box_epigraph(shift, beta0, t0, eps)
    if isinstance(shift, Perturbation):
        shift = SupportShift(shift)
    if eps == 0.0:
        return beta0, max(t0, 0.0)
    s0 = eps * shift.value(beta0)
    if s0 <= t0:
        return beta0, t0
    pert = getattr(shift, "perturbation", None)
    general_p = isinstance(pert, (Lp, Group)) and 1.0 < pert.p < np.inf and pert.p != 2.0
    if general_p and type(pert) is Lp:
        return _project_lp_epigraph(pert.p, pert.q, beta0, t0, eps)
    if general_p and type(pert) is Group:
        return _project_group_lp_epigraph(pert, beta0, t0, eps)

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


def _group_ball_coordinates(a, gid, n_groups, c, p):
    """|P_{c B_p}(a_g)| for every group g at once (a >= 0, ``gid`` the group labels).

    z_g = a_g where ||a_g||_p <= c; otherwise z_j = z_j(mu_g) solves
    z + mu_g p z^(p-1) = a_j with mu_g the root of the decreasing
    F_g(mu) = sum_{j in g} z_j(mu)^p - c^p, found for all groups together by Newton's
    method safeguarded by a bracket [0, ||a_g||_q / (p c^(p-1))] (z_j <= (a_j / (mu p))^(1/(p-1))
    gives F_g <= 0 there), with dz/dmu = -p z^(p-1) / (1 + mu p (p-1) z^(p-2)).
    """
    q = p / (p - 1.0)
    norms = np.bincount(gid, a**p, n_groups) ** (1.0 / p)
    active = norms > c
    if not np.any(active):
        return a.copy()
    if c <= 0.0:
        return np.zeros_like(a)
    lo = np.zeros(n_groups)
    hi = np.where(active, np.bincount(gid, a**q, n_groups) ** (1.0 / q) / (p * c ** (p - 1.0)),
                  0.0)
    mu = 0.5 * hi
    target = c**p
    for _ in range(200):
        m = mu[gid]
        z = _lp_coordinates(a, m, p)
        F = np.bincount(gid, z**p, n_groups) - target
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            dz = -p * z ** (p - 1.0) / (1.0 + m * p * (p - 1.0) * z ** (p - 2.0))
            dF = np.bincount(gid, np.nan_to_num(p * z ** (p - 1.0) * dz), n_groups)
            lo, hi = np.where(F > 0, mu, lo), np.where(F < 0, mu, hi)
            new = mu - F / dF
        outside = ~((new > lo) & (new < hi))  # also catches NaN
        new = np.where(active, np.where(outside, 0.5 * (lo + hi), new), 0.0)
        done = np.all(np.abs(new - mu) <= 1e-15 * np.maximum(mu, 1e-300))
        mu = new
        if done:
            break
    return _lp_coordinates(a, mu[gid], p)


def _project_group_lp_epigraph(pert, beta0, t0, eps):
    """Projection onto {eps sum_g ||beta_g||_q <= t} for ``Group`` with general p.

    With c = lam eps the radius of the dual balls, beta_g = beta0_g - P_{c B_p}(beta0_g)
    for every group (features in no group are free: they keep beta0), and

    .. math:: g(c) = \\epsilon \\sum_g \\|\\beta_g(c)\\|_q - t_0 - c / \\epsilon

    decreases from s0 - t0 > 0 at c = 0; a Brent search over c, each step one vectorised
    multiplier search over all groups (``_group_ball_coordinates``), replaces a search
    over lam with one nested search per group inside. At c = max_g ||beta0_g||_p every
    beta_g = 0; if g is still >= 0 there the point lies in the polar cone and the
    projection is beta_g = 0, t = 0.
    """
    idx = np.concatenate(pert.groups)
    gid = np.repeat(np.arange(len(pert.groups)), [len(g) for g in pert.groups])
    n_groups, p, q = len(pert.groups), pert.p, pert.q
    a = np.abs(beta0[idx])
    c_max = float(np.max(np.bincount(gid, a**p, n_groups) ** (1.0 / p)))

    def covered(c):  # |beta_j| = a_j - z_j >= 0 (clipped: z <= a up to rounding)
        return np.maximum(a - _group_ball_coordinates(a, gid, n_groups, c, p), 0.0)

    def g(c):
        b = covered(c)
        return eps * float(np.sum(np.bincount(gid, b**q, n_groups) ** (1.0 / q))) - t0 - c / eps

    beta = np.array(beta0, dtype=float)
    if g(c_max) >= 0.0:
        beta[idx] = 0.0
        return beta, 0.0
    c = brentq(g, 0.0, c_max, xtol=1e-300, rtol=4 * np.finfo(float).eps)
    beta[idx] = np.sign(beta0[idx]) * covered(c)
    return beta, t0 + c / eps
