"""Projection onto the epigraph K = {(beta, t) : eps sigma_S(beta) <= t} (docs/theory.md §2).

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

The common sets need no nested search (``_closed_form``): for a sum of weighted norms
h = sum_g w_g ||beta_g||_2 (Linf, WeightedLinf and Group with p = inf: singletons; L2:
one group; Group with p = 2) the prox shrinks every group by the same c = lam eps, and
the root is found among the sorted breakpoints; for L1 (h = ||beta||_inf) the same
holds for the clipping level; an Ellipsoid reduces to one secular equation in the thin
SVD's coordinates; ``Masked`` projects its sub-vector by its base's rule (whichever:
``project_epigraph``). The root
search above (``_project_by_root``) serves the rest, and the tests check the closed
forms against it.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq

from ..perturbations import (
    Ellipsoid,
    Group,
    Lp,
    Masked,
    Perturbation,
    WeightedLinf,
    _lp_coordinates,
    _lp_coordinates_log,
    lp_norm,
    prox_support,
)
from .box import BoxShift, project_box_epigraph

# Brent's method's iteration cap in ``root_from_zero`` (scipy's default is 100): from a
# bracket [m, 16 m] a relative tolerance of 4 machine epsilons takes at most ~56
# bisections, and Brent's rule forces one at least every other step
ROOT_MAXITER = 200
_RTOL = 4 * np.finfo(float).eps


def root_from_zero(f, hi):
    """The root of f on [0, hi] (f(0) and f(hi) of opposite signs in exact arithmetic),
    to rounding relative to the root itself.

    Brent's method from [0, hi] first. With a relative tolerance it needs about
    log2(hi / root) + 52 bisections where its interpolation fails, which is where
    the root lies many orders of magnitude below hi and f is of the size of its own
    rounding near it (a point on the boundary of the polar cone, or barely outside
    K): there scipy's brentq ran out of its 100 iterations ("failed to converge", an
    l_p projection on the path of a nearly separable hinge problem). Then the
    bracket is narrowed geometrically, [hi / 16, hi] and down, one evaluation per
    factor of 16, to [m, 16 m] around the root, and searched again. Where f(0) has
    f(hi)'s sign (only by rounding), or the root lies below 1e-150 hi, it is 0 to
    double precision: a change that small in the multiplier is invisible next to
    the data the bracket was set from (and the searches' maps underflow further
    down).
    """
    known = {0.0: f(0.0), hi: f(hi)}  # brentq evaluates the ends again

    def g(x):
        return known[x] if x in known else f(x)

    if known[hi] == 0.0:
        return hi
    if known[0.0] == 0.0 or (known[0.0] > 0.0) == (known[hi] > 0.0):
        return 0.0
    root, info = brentq(g, 0.0, hi, xtol=1e-300, rtol=_RTOL, maxiter=ROOT_MAXITER,
                        full_output=True, disp=False)
    if info.converged:
        return root
    above, lo = known[hi] > 0.0, hi / 16.0
    while True:
        if lo < 1e-150 * hi:
            return 0.0
        f_lo = f(lo)
        if f_lo == 0.0:
            return lo
        if (f_lo > 0.0) != above:  # a sign change in [lo, hi]
            break
        lo, hi = lo / 16.0, lo
    return brentq(f, lo, hi, xtol=1e-300, rtol=_RTOL, maxiter=ROOT_MAXITER)


class SupportShift:
    """The support function sigma_S of a symmetric set S as a shift h: value and prox.

    .. math:: \\mathrm{prox}_{c\\,\\sigma_S}(v) = v - c\\,P_S(v / c)  \\quad (Moreau).

    ``root`` keeps the last epigraph projection's root for the general-p sets
    (``_lp_log_root``): FISTA projects nearby points in turn, and the search starts there
    (one instance per solve, so a solve does not depend on earlier ones); ``base`` the
    masked set's base as a shift of its own (``project_epigraph``).
    """

    def __init__(self, perturbation):
        self.perturbation = perturbation
        self.root, self.base = None, None

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
    if type(pert) is Masked:
        # sigma_S(beta) = sigma_base(beta_M): the immutable features are free (they keep
        # beta0) and the masked sub-vector is projected by its base's own rule, whichever
        # it is (a Masked(Lp(3)) went through the nested search over lam, a ball
        # projection's search inside each step: 10 ms a projection, 7.7 s a binomial
        # solve at n = 429, d = 21, where Clarabel took 0.1 s)
        beta = np.array(beta0, dtype=float)
        if not pert.indices.size:  # sigma = 0 < -t0: the nearest point has t = 0
            return beta, 0.0
        if shift.base is None:
            shift.base = SupportShift(pert.base)
        part, t = project_epigraph(shift.base, beta[pert.indices], t0, eps)
        beta[pert.indices] = part
        return beta, t
    exact = None if pert is None else _closed_form(pert, np.asarray(beta0, dtype=float), t0, eps)
    if exact is not None:
        return exact
    return _project_by_root(shift, beta0, t0, eps, s0)


class EpigraphProx:
    """The proximal step of the indicator of K = {eps h(beta) <= t}: FISTA's ``prox``.

    Called as ``prox(v_beta, v_t, L)`` it is the Euclidean projection
    (``project_epigraph``), as Newton's projected steps take it. ``metric_step`` is the
    projection in the metric ||d_beta||^2 + ||d_t||^2 / gamma^2 (gamma = ``t_metric``),
    in which FISTA steps: with s = t / gamma,

    .. math:: K = \\{\\epsilon h(\\beta) \\le t\\} = \\{(\\epsilon/\\gamma) h(\\beta) \\le s\\},

    so that projection is the Euclidean one of (beta0, t0 / gamma) onto the cone of
    radius eps / gamma, its s scaled back by gamma (``solver.t_metric`` says why).
    """

    def __init__(self, shift, eps, t_metric=1.0):
        self.shift, self.eps, self.t_metric = shift, eps, t_metric

    def __call__(self, v_beta, v_t, L=None):
        return project_epigraph(self.shift, v_beta, v_t, self.eps)

    def metric_step(self, v_beta, v_t):
        gamma = self.t_metric
        if gamma == 1.0:
            return project_epigraph(self.shift, v_beta, v_t, self.eps)
        beta, s = project_epigraph(self.shift, v_beta, v_t / gamma, self.eps / gamma)
        return beta, s * gamma


def _project_by_root(shift, beta0, t0, eps, s0):
    """The projection of an infeasible (beta0, t0) (s0 = eps h(beta0) > t0) by a root
    search over lam: the prox in closed form or its own search inside, or one search
    over a dual-ball radius for the general l_p sets."""
    pert = getattr(shift, "perturbation", None)
    general_p = isinstance(pert, (Lp, Group)) and 1.0 < pert.p < np.inf and pert.p != 2.0
    if general_p and type(pert) in (Lp, Group):
        # K is a cone, P_K(s x) = s P_K(x): solved for (beta0, t0) / s with s = max_j
        # |beta0_j|, so that the searches' powers |beta_j|^p and |beta_j|^q lie in [0, 1]
        # (with coefficients of ~100 and p = 1000 they overflowed: a binomial solve
        # ended 5% above the optimum). s = 0 (t0 < 0): the nearest point has t = 0
        s = float(np.max(np.abs(beta0), initial=0.0))
        if not s > 0.0:
            return np.array(beta0, dtype=float), 0.0
        if type(pert) is Lp:
            beta, t = _project_lp_epigraph(pert.p, pert.q, beta0 / s, t0 / s, eps, shift)
        else:
            beta, t = _project_group_lp_epigraph(pert, beta0 / s, t0 / s, eps, shift)
        return beta * s, t * s

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


def _project_lp_epigraph(p, q, beta0, t0, eps, shift=None):
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

    For p > 2 the search is over ell = log(mu p) (``_lp_coordinates_log``): z ~ (a / (mu
    p))^(1/(p-1)), so at p = 250 the root can lie at mu ~ 1e500 (a dual ball of radius
    1e-2), where the search over mu stopped at 1e300 and returned points up to 2% farther
    than the nearest, and FISTA did not converge on them. That search starts from the
    last root of ``shift`` (a ``SupportShift``), if any, and keeps its own there.
    """
    a = np.abs(beta0)
    if -t0 - lp_norm(a, p) / eps >= 0.0:
        return np.zeros_like(beta0), 0.0
    by_log = p > 2.0

    def parts(x):  # x = log(mu p) for p > 2, mu otherwise
        z = _lp_coordinates_log(a, x, p) if by_log else _lp_coordinates(a, x, p)
        return z, lp_norm(z, p)

    def g(x):
        z, c = parts(x)
        return eps * lp_norm(a - z, q) - t0 - c / eps

    if by_log:
        start = getattr(shift, "root", None)
        x, z = _lp_log_root(a, p, q, t0, eps, 0.0 if start is None else start)
        if x is None:  # k = e^1e5: g's limit is >= 0 only by rounding (on K)
            return np.array(beta0, dtype=float), eps * lp_norm(a, q)
        if shift is not None:
            shift.root = x
        if z is not None:
            return np.sign(beta0) * (a - z), t0 + lp_norm(z, p) / eps
    else:
        hi = 1.0
        while g(hi) < 0.0:  # bracket the root: g(hi / 16) < 0 <= g(hi)
            if hi > 1e300:  # g's limit is >= 0 only by rounding: (beta0, t0) lies on K
                return np.array(beta0, dtype=float), eps * lp_norm(a, q)
            hi *= 16.0
        x = root_from_zero(g, hi) if hi == 1.0 else \
            brentq(g, hi / 16.0, hi, xtol=1e-300, rtol=_RTOL, maxiter=ROOT_MAXITER)
    z, c = parts(x)
    return np.sign(beta0) * (a - z), t0 + c / eps


def _lp_log_root(a, p, q, t0, eps, start=0.0):
    """The root ell = log(mu p) of ``_project_lp_epigraph``'s increasing g for p > 2, by
    Newton's method safeguarded by a bracket (bisection where a step leaves it): (ell, z
    at ell where the search evaluated it there, else None), or (None, None) where g < 0
    up to ell = 1e5 (the point lies on K up to rounding).

    g(ell) = eps ||a - z||_q - t0 - ||z||_p / eps with z(ell) the coordinates of
    ``_lp_coordinates_log``; from z + k z^(p-1) = a (k = e^ell),
    dz/dell = -k z^(p-1) / (1 + (p-1) k z^(p-2)) = -(a - z) / (1 + (p-1) k z^(p-2)), and
    d||v||_r / dv_j = (v_j / ||v||_r)^(r-1) for v >= 0, so

    .. math:: g'(\\ell) = -\\sum_j \\Big[\\epsilon \\Big(\\frac{a_j - z_j}{\\|a - z\\|_q}
              \\Big)^{q-1} + \\frac{1}{\\epsilon} \\Big(\\frac{z_j}{\\|z\\|_p}\\Big)^{p-1}
              \\Big] \\frac{dz_j}{d\\ell} \\ge 0.

    Each evaluation is a vectorised Newton solve for z; Brent's method needed 13-19 of
    them a projection (1.0-1.3 ms at d = 30), bracketing by doubling from 0 included.
    The bracket is found from ``start`` (a nearby projection's root) by a step 1.1 times
    Newton's (just past the root where Newton is accurate; doubling while g keeps its
    sign); the root to |step| <= 1e-15 + 4 eps_machine |ell|, as Brent's tolerance.
    """
    last = {}  # z at the points evaluated

    def g_slope(ell):
        z = last[ell] = _lp_coordinates_log(a, ell, p)
        r = a - z
        n_q, n_p = lp_norm(r, q), lp_norm(z, p)
        with np.errstate(divide="ignore", over="ignore", under="ignore", invalid="ignore"):
            curv = np.exp(ell + (p - 2.0) * np.log(z))  # k z^(p-2) (0 where z = 0)
            dz = -r / (1.0 + (p - 1.0) * np.where(np.isfinite(curv), curv, 0.0))
            dg = (eps * (r / n_q) ** (q - 1.0) if n_q > 0.0 else 0.0 * r) \
                + ((z / n_p) ** (p - 1.0) / eps if n_p > 0.0 else 0.0 * z)
        return eps * n_q - t0 - n_p / eps, max(-float(dg @ dz), 0.0)

    x = float(start)
    val, slope = g_slope(x)
    if val == 0.0:
        return x, last.get(x)
    lo, hi = (x, None) if val < 0.0 else (None, x)
    width = 1.1 * abs(val) / slope if slope > 0.0 else 1.0
    width = min(max(width, 1e-9 * (1.0 + abs(x))), 1e5) if np.isfinite(width) else 1.0
    while lo is None or hi is None:  # bracket the root: g(lo) < 0 <= g(hi)
        x = lo + width if hi is None else hi - width
        if x > 1e5:
            return None, None
        val, slope = g_slope(x)
        if val < 0.0:
            lo = x
        else:
            hi = x
        width *= 2.0
    # x is the last point evaluated, one of the ends
    for _ in range(ROOT_MAXITER):
        if val == 0.0:
            return x, last.get(x)
        step = -val / slope if slope > 0.0 else np.inf
        tol = 1e-15 + _RTOL * abs(x)
        if abs(step) <= tol:  # (converged: a step this small may round onto an end)
            return x, last.get(x)
        x = x + step
        if not lo < x < hi:  # Newton leaves the bracket: bisect
            x = 0.5 * (lo + hi)
        if hi - lo <= tol:
            return x, last.get(x)
        val, slope = g_slope(x)
        if val >= 0.0:
            hi = x
        else:
            lo = x
    return x, last.get(x)


def _group_ball_coordinates(a, gid, n_groups, c, p, start=None):
    """(|P_{c B_p}(a_g)|, log(mu_g p)) for every group g at once (a >= 0, ``gid`` the group
    labels; log(mu_g p) = -inf for the groups inside the ball), the searches for mu_g
    started at ``start`` (their log(mu_g p), a nearby projection's) where it lies in
    their brackets.

    z_g = a_g where ||a_g||_p <= c; otherwise z_j = z_j(mu_g) solves
    z + mu_g p z^(p-1) = a_j with mu_g the root of the decreasing
    F_g(mu) = sum_{j in g} z_j(mu)^p - c^p, found for all groups together by Newton's
    method safeguarded by a bracket [0, ||a_g||_q / (p c^(p-1))] (z_j <= (a_j / (mu p))^(1/(p-1))
    gives F_g <= 0 there), with dz/dmu = -p z^(p-1) / (1 + mu p (p-1) z^(p-2)).
    For p > 2 the search is over log(mu p) (``_group_ball_coordinates_log``).
    """
    q = p / (p - 1.0)
    norms = _group_norms(a, gid, n_groups, p)
    active = norms > c
    none = np.full(n_groups, -np.inf)
    if not np.any(active):
        return a.copy(), none
    if c <= 0.0:
        return np.zeros_like(a), np.where(active, np.inf, -np.inf)
    if p > 2.0:
        return _group_ball_coordinates_log(a, gid, n_groups, c, p, norms, active, start)
    lo = np.zeros(n_groups)
    hi = np.where(active, _group_norms(a, gid, n_groups, q) / (p * c ** (p - 1.0)), 0.0)
    mu = 0.5 * hi
    if start is not None:
        with np.errstate(over="ignore"):
            guess = np.exp(start) / p
        mu = np.where((guess > lo) & (guess < hi), guess, mu)
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
    with np.errstate(divide="ignore"):
        return _lp_coordinates(a, mu[gid], p), np.where(active, np.log(mu * p), -np.inf)


def _group_ball_coordinates_log(a, gid, n_groups, c, p, norms, active, start=None):
    """``_group_ball_coordinates`` for p > 2, by a search over ell_g = log(mu_g p)
    (``_lp_coordinates_log``: at p = 250 a ball of radius 1e-2 has mu ~ 1e500, past
    double precision, and the bracket's c^(p-1) underflowed), on
    F_g(ell) = log ||z_g(ell)||_p - log c, which decreases in ell.

    The bracket: z_j <= (a_j / k)^(1/(p-1)) gives F_g <= 0 at
    log k = (p - 1) (log ||a_g^(1/(p-1))||_p - log c); and z_j >= a_j - k a_j^(p-1) gives
    ||z_g||_p >= (1 - delta) ||a_g||_p > c at k m_g^(p-2) = delta = (1 - c / ||a_g||_p) / 2,
    m_g = max_{j in g} a_j. Newton steps, with dz/d ell = -P / (1 + (p - 1) P / z) for
    P = k z^(p-1) and dF/d ell = sum z^(p-1) dz/d ell / sum z^p (written with z / m_g,
    whose powers stay in [0, 1]), fall back to bisection outside the bracket.
    """
    m = np.zeros(n_groups)
    np.maximum.at(m, gid, a)
    safe = np.where(active, m, 1.0)
    with np.errstate(divide="ignore"):
        hi = (p - 1.0) * (np.log(_group_norms(a ** (1.0 / (p - 1.0)), gid, n_groups, p))
                          - np.log(c))
        lo = np.log(0.5 * (1.0 - c / np.where(active, norms, 2.0 * c))) \
            - (p - 2.0) * np.log(safe)
    lo, hi = np.where(active, np.minimum(lo, hi), 0.0), np.where(active, hi, 0.0)
    ell = 0.5 * (lo + hi)
    if start is not None:
        ell = np.where((start > lo) & (start < hi), start, ell)
    for _ in range(200):
        z = _lp_coordinates_log(a, ell[gid], p)
        norm_z = _group_norms(z, gid, n_groups, p)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
            F = np.log(norm_z) - np.log(c)
            power = np.exp(ell[gid] + (p - 1.0) * np.log(z))  # k z^(p-1)
            dz = -power / (1.0 + (p - 1.0) * power / z)
            u = z / safe[gid]  # in [0, 1]
            dF = np.bincount(gid, np.nan_to_num(u ** (p - 1.0) * dz), n_groups) \
                / (safe * np.bincount(gid, u**p, n_groups))
            lo, hi = np.where(F > 0, ell, lo), np.where(F < 0, ell, hi)
            new = ell - F / dF
        outside = ~((new > lo) & (new < hi))  # also catches NaN
        new = np.where(active, np.where(outside, 0.5 * (lo + hi), new), 0.0)
        done = np.all(np.abs(new - ell) <= 1e-15 * np.maximum(np.abs(ell), 1.0))
        ell = new
        if done:
            break
    return np.where(active[gid], _lp_coordinates_log(a, ell[gid], p), a), \
        np.where(active, ell, -np.inf)


def _project_group_lp_epigraph(pert, beta0, t0, eps, shift=None):
    """Projection onto {eps sum_g ||beta_g||_q <= t} for ``Group`` with general p.

    With c = lam eps the radius of the dual balls, beta_g = beta0_g - P_{c B_p}(beta0_g)
    for every group (features in no group are free: they keep beta0), and

    .. math:: g(c) = \\epsilon \\sum_g \\|\\beta_g(c)\\|_q - t_0 - c / \\epsilon

    decreases from s0 - t0 > 0 at c = 0; a search over c, each step one vectorised
    multiplier search over all groups (``_group_ball_coordinates``), replaces a search
    over lam with one nested search per group inside. At c = max_g ||beta0_g||_p every
    beta_g = 0; if g is still >= 0 there the point lies in the polar cone and the
    projection is beta_g = 0, t = 0.

    The search is Newton's method in the bracket [0, c_max] (bisection where a step
    leaves it). For a group outside the ball, z = |P_{c B_p}(a_g)| solves
    z_j + mu p z_j^(p-1) = a_j with ||z||_p = c; with h_j = k z_j^(p-1) / (1 + (p-1) k
    z_j^(p-2)) (k = mu p) the implicit function theorem gives dz_j/dc = h_j / S_g,
    S_g = sum_{i in g} (z_i / c)^(p-1) h_i, and with u = (r_g / ||r_g||_q)^(q-1)
    (r_g = a_g - z_g),

    .. math:: g'(c) = -\\epsilon \\sum_g \\frac{u^\\top h_g}{S_g} - \\frac{1}{\\epsilon}.

    Brent's method took 7-15 evaluations a projection, Newton from the middle of the
    bracket 5-9; inside a solve it starts from the last projection's root
    (``shift.root``: c and the groups' log(mu_g p), which also start the inner
    searches), and the solves measured made about half Brent's evaluations and a third
    of its inner coordinate solves.
    """
    idx, gid = pert.labels()
    n_groups, p, q = len(pert.groups), pert.p, pert.q
    a = np.abs(beta0[idx])
    c_max = float(np.max(_group_norms(a, gid, n_groups, p)))
    hint = getattr(shift, "root", None)
    inner = None if hint is None else hint[1]  # the groups' last log(mu_g p)

    def g_slope(c):
        nonlocal inner
        z, ell = _group_ball_coordinates(a, gid, n_groups, c, p, inner)
        inner = np.where(np.isfinite(ell), ell, -np.inf if inner is None else inner)
        r = np.maximum(a - z, 0.0)  # |beta_j| = a_j - z_j >= 0 (z <= a up to rounding)
        norms = _group_norms(r, gid, n_groups, q)
        val = eps * float(np.sum(norms)) - t0 - c / eps
        live = np.isfinite(ell) & (norms > 0.0)
        if c <= 0.0 or not np.any(live):
            return val, -1.0 / eps, r
        with np.errstate(divide="ignore", over="ignore", under="ignore", invalid="ignore"):
            e = ell[gid]
            log_z = np.log(z)
            h = np.exp(e + (p - 1.0) * log_z) / (1.0 + (p - 1.0) * np.exp(e + (p - 2.0) * log_z))
            h = np.where(live[gid] & np.isfinite(h), h, 0.0)
            S = np.bincount(gid, (z / c) ** (p - 1.0) * h, n_groups)
            safe = np.where(norms > 0.0, norms, 1.0)
            u = np.where(live[gid], (r / safe[gid]) ** (q - 1.0), 0.0)
            uh = np.bincount(gid, u * h, n_groups)
            terms = np.where(live & (S > 0.0), uh / np.where(S > 0.0, S, 1.0), 0.0)
        return val, -eps * float(np.sum(terms)) - 1.0 / eps, r

    beta = np.array(beta0, dtype=float)
    val, slope, r = g_slope(c_max)
    if val >= 0.0:
        beta[idx] = 0.0
        return beta, 0.0
    lo, hi = 0.0, c_max  # g(lo) > 0 > g(hi): g decreases
    x = float(hint[0]) if hint is not None and 0.0 < hint[0] < c_max else 0.5 * c_max
    for _ in range(ROOT_MAXITER):
        val, slope, r = g_slope(x)
        if val == 0.0:
            break
        if val > 0.0:
            lo = x
        else:
            hi = x
        step = -val / slope if slope < 0.0 else np.inf
        if abs(step) <= _RTOL * x or hi - lo <= _RTOL * x or hi <= 1e-150 * c_max:
            break  # (a root below 1e-150 c_max is 0 to double precision: ``root_from_zero``)
        new = x + step
        x = new if lo < new < hi else 0.5 * (lo + hi)
    if shift is not None:
        shift.root = (x, inner)
    beta[idx] = np.sign(beta0[idx]) * r
    return beta, t0 + x / eps


def _group_norms(a, gid, n_groups, r):
    """(||a_g||_r)_g for a >= 0, each as m_g ||a_g / m_g||_r with m_g = max_{j in g} a_j
    (homogeneity): the powers lie in [0, 1], where a_j^r overflows or underflows for r
    in the hundreds (0.4^1000 = 0: a group of such entries would count as zero)."""
    m = np.zeros(n_groups)
    np.maximum.at(m, gid, a)
    safe = np.where(m > 0.0, m, 1.0)
    return m * np.bincount(gid, (a / safe[gid]) ** r, n_groups) ** (1.0 / r)


def _closed_form(pert, beta0, t0, eps):
    """The projection of an infeasible (beta0, t0) onto {eps sigma_S(beta) <= t} for the
    sets with a closed form (module docstring), or None for the others (a ``Masked``
    set is reduced to its base by ``project_epigraph``)."""
    a = np.abs(beta0)
    if isinstance(pert, Lp):
        if pert.p == 1.0:
            c = _clip_level(a, t0, eps)
            return np.sign(beta0) * np.minimum(a, c), max(t0, eps * c)
        if pert.p == 2.0:  # one group: k = 1 in _shrink_threshold
            norm = float(np.sqrt(a @ a))
            c = eps * (eps * norm - t0) / (eps * eps + 1.0)
            if c >= norm:  # the polar cone
                return np.zeros_like(beta0), 0.0
            return beta0 * (1.0 - c / norm), t0 + c / eps
        if pert.p == np.inf:
            c, t = _shrink_threshold(a, None, t0, eps)
            return np.sign(beta0) * np.maximum(a - c, 0.0), t
        return None
    if type(pert) is WeightedLinf:
        c, t = _shrink_threshold(a, pert.scales, t0, eps)
        return np.sign(beta0) * np.maximum(a - c * pert.scales, 0.0), t
    if type(pert) is Group and pert.p in (2.0, np.inf):
        idx, gid = pert.labels()
        beta = beta0.copy()  # features in no group are free
        if pert.p == np.inf:  # sum_g ||beta_g||_1: the l1 norm of the grouped features
            c, t = _shrink_threshold(a[idx], None, t0, eps)
            beta[idx] = np.sign(beta0[idx]) * np.maximum(a[idx] - c, 0.0)
            return beta, t
        norms = np.sqrt(np.bincount(gid, a[idx] ** 2, len(pert.groups)))
        c, t = _shrink_threshold(norms, None, t0, eps)
        beta[idx] = beta0[idx] * _group_factor(norms, c)[gid]
        return beta, t
    if type(pert) is Ellipsoid:
        return _project_ellipsoid_epigraph(pert, beta0, t0, eps)
    return None


def _group_factor(norms, c):
    """max(1 - c / ||beta0_g||, 0): the group soft-threshold's factor (0 for a zero group)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(norms > c, 1.0 - c / norms, 0.0)


def _shrink_threshold(a, w, t0, eps):
    """The shrinkage c = lam eps of the projection onto {eps sum_g w_g a_g <= t}.

    For h = sum_g w_g ||beta_g||_2 the prox of lam eps h shrinks the group norms a_g to
    (a_g - c w_g)_+, and lam >= 0 is the root of

    .. math:: F(c) = \\epsilon \\sum_g w_g (a_g - c w_g)_+ - t_0 - c / \\epsilon,

    decreasing and piecewise linear with breakpoints r_g = a_g / w_g. Sorted r_1 >= r_2
    >= ..., F(r_k) = eps (S1_{k-1} - r_k S2_{k-1}) - t0 - r_k / eps with S1, S2 the
    cumulative sums of w a and w^2 (the k - 1 larger groups active), increasing in k; with
    k the number of breakpoints where F < 0 the root has exactly the top k active,

    .. math:: c = \\epsilon\\,(\\epsilon S1_k - t_0) / (\\epsilon^2 S2_k + 1),

    and k = 0 (F(r_1) >= 0: the point is in the polar cone) gives c = -eps t0, t = 0.
    Returns (c, t) with t = t0 + c / eps (exactly 0 in the polar cone).
    Zero weights (free coordinates) have no breakpoint and no part in F; ``w = None``
    means unit weights. The caller has checked that the point is infeasible, F(0) > 0.
    """
    if w is None:  # unit weights: S2_k = k
        r = np.sort(a)[::-1]
        S1 = np.cumsum(r)
        ks = np.arange(1.0, r.shape[0] + 1.0)
        # S1_{k-1} = S1_k - r_k, S2_{k-1} = k - 1
        k = int(np.count_nonzero(eps * (S1 - ks * r) - t0 - r / eps < 0.0))
        S2_k = float(k)
    else:
        pos = w > 0.0
        a, w = a[pos], w[pos]
        order = np.argsort(-(a / w), kind="stable")
        a, w = a[order], w[order]
        r, wa, ww = a / w, w * a, w * w
        S1, S2 = np.cumsum(wa), np.cumsum(ww)
        # S1_{k-1} = S1_k - w_k a_k, and S2 alike
        k = int(np.count_nonzero(eps * (S1 - wa - r * (S2 - ww)) - t0 - r / eps < 0.0))
        S2_k = float(S2[k - 1]) if k else 0.0
    if k == 0:
        return max(-eps * t0, 0.0), 0.0
    c = eps * (eps * float(S1[k - 1]) - t0) / (eps * eps * S2_k + 1.0)
    # (the root lies in [r_{k+1}, r_k]: clipped against rounding)
    c = min(max(c, float(r[k]) if k < r.shape[0] else 0.0), float(r[k - 1]))
    return c, t0 + c / eps


def _clip_level(a, t0, eps):
    """The level c of the projection onto {eps ||beta||_inf <= t}: beta_j = sign min(a_j, c)
    with a = |beta0|, t = max(t0, eps c), and c >= 0 the minimiser of the convex

    .. math:: f(c) = \\tfrac12 \\sum_j (a_j - c)_+^2 + \\tfrac12 (\\epsilon c - t_0)_+^2,

    whose derivative f'(c) = -sum_j (a_j - c)_+ + eps (eps c - t0)_+ increases. At the
    sorted a_1 >= a_2 >= ... (and a_{d+1} = 0) f'(a_k) = -(S_{k-1} - (k - 1) a_k)
    + eps (eps a_k - t0)_+ decreases in k; with k the number of these that are > 0
    (k >= 1: the point is infeasible, eps a_1 > t0), the root has the top k clipped and
    eps c > t0 (else f' = 0 would need c >= a_1),

    .. math:: c = (S_k + \\epsilon t_0) / (k + \\epsilon^2),

    and k = d + 1 (f'(0) > 0) means c = 0.
    """
    a = np.concatenate((np.sort(a)[::-1], [0.0]))
    S = np.cumsum(a)
    before = np.concatenate(([0.0], S[:-1]))
    ks = np.arange(a.shape[0])  # k - 1
    k = int(np.count_nonzero(-(before - ks * a) + eps * np.maximum(eps * a - t0, 0.0) > 0.0))
    if k == a.shape[0]:
        return 0.0
    c = (float(S[k - 1]) + eps * t0) / (k + eps * eps)
    return min(max(c, float(a[k])), float(a[k - 1]))


def _project_ellipsoid_epigraph(pert, beta0, t0, eps):
    """Projection onto {eps ||A^T beta||_2 <= t} by one secular equation.

    With the thin SVD A = U diag(s) V^T, ||A^T beta|| = ||s * z|| for z = U^T beta, and
    the part of beta0 outside the range of U is free. The KKT conditions give
    z = z0 / (1 + rho s^2) with rho = lam eps / ||s z||, and t = t0 + lam = eps ||s z||;
    so with g(rho) = ||s z0 / (1 + rho s^2)||,

    .. math:: F(\\rho) = (\\epsilon^2 - \\rho)\\, g(\\rho) - \\epsilon t_0 = 0,

    F = eps phi(lam(rho)) with lam = rho g / eps increasing in rho and phi (the root
    search's function) decreasing: F decreases from F(0) > 0 (infeasible) to
    -||z0 / s|| - eps t0 as rho -> inf. When that limit is >= 0 the point is in the
    polar cone: z = 0, t = 0. Else a root lies in [0, eps^2] when t0 >= 0 (F(eps^2) =
    -eps t0), or beyond, found by doubling.
    """
    U, sv, _ = pert.thin_svd()
    z0 = U.T @ beta0
    free = beta0 - U @ z0

    def g(rho):
        return float(np.linalg.norm(sv * z0 / (1.0 + rho * sv * sv)))

    def F(rho):
        return (eps * eps - rho) * g(rho) - eps * t0

    if -float(np.linalg.norm(z0 / sv)) - eps * t0 >= 0.0:
        return free, 0.0
    hi = eps * eps
    while F(hi) >= 0.0:  # (only for t0 < 0; F tends to a negative limit)
        hi *= 2.0
    rho = root_from_zero(F, hi)
    z = z0 / (1.0 + rho * sv * sv)
    return free + U @ z, eps * float(np.linalg.norm(sv * z))
