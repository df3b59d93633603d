"""eps_max: the smallest attack radius at which beta = 0 is optimal (docs/theory.md §2).

With alpha < 1 and the intercept at its intercept-only optimum b0, write
l'_i = l'(y_i, b0), g = sum_i w_i l'_i x_i and K = sum_i w_i |l'_i|. The directional
derivative of the robust objective at beta = 0 along u is

.. math:: g^\\top u + (1-\\alpha)\\,\\epsilon\\,[A\\,\\sigma_S(u) + B\\,\\sigma_S(-u)],

A = sum over l'_i > 0 of w_i |l'_i|, B the same over l'_i < 0 (A = B = K/2 with an
intercept, since sum_i w_i l'_i = 0 at b0). For a symmetric set this is nonnegative for
all u iff

.. math:: \\epsilon \\ge \\epsilon_{max} = \\|g\\| / ((1-\\alpha) K),

||.|| the gauge of S (the dual of the dual norm), the adversarial analogue of glmnet's
lambda_max. Asymmetric sets solve the small conic problem
sup{-g^T u : A sigma_S(u) + B sigma_S(-u) <= 1} / (1 - alpha).
"""

from __future__ import annotations

import dataclasses
import warnings

import cvxpy as cp
import numpy as np
import scipy.sparse as sp
from scipy.optimize import brentq

from ._validation import check_scalar
from .exceptions import SolverError, SolverFallbackWarning
from .families import Hinge
from .fast import active_set
from .problem import check_problem
from .result import Certificate, Path, Result

# the problem cache's key of eps_max (``eps_max``), per alpha; the value is kept with the
# set, penalty and constraints it is for (a problem's copies with another set share the
# cache: ``AdversarialProblem._with_perturbation``)
_EPS_MAX = "eps_max"


def eps_max(prob):
    """Smallest eps for which beta = 0 minimises the robust objective of ``prob``.

    Returns ``inf`` when no radius zeroes the coefficients (alpha = 1, a gradient
    component on an immutable feature, or a penalty flat at 0 such as L_r, r > 1).

    For a non-convex penalty (SCAD, MCP, L_r with r < 1) it is the radius from which
    beta = 0 is a *local* minimiser (the first-order condition at 0: 0 for L_r, r < 1,
    whose slope at 0 is infinite; the l1 threshold for SCAD and MCP); the global
    minimiser may be nonzero well beyond it, so a grid from it (``eps_grid``) is a
    starting point there, not a guarantee that beta = 0 above it.

    Hinge is non-smooth at the intercept-only optimum: its eps_max is the value of one
    small convex program in d + 2 variables (``_eps_max_hinge``; a norm or a
    support-function ratio with balanced classes or no intercept), or for an asymmetric
    set with 0 < alpha < 1 the root of such a program's value in eps (Dinkelbach's
    steps: a few re-solves of it). A penalty enters through its slope at 0,
    P'(0; u) (``Penalty.slope_at_zero``: the norms, L_1, SCAD, MCP). Hinge with a
    penalty without one, and problems with user constraints, are not covered; for them
    eps_max is located by bisection on the cvxpy solution (relative precision 1e-4).

    The value is kept in the problem's cache, which its copies at other radii share
    (``with_params``: an eps path's radii, whose first is eps_max itself, and the fast
    path's test of the null solution, ``known_eps_max``).
    """
    check_problem(prob)
    value = known_eps_max(prob)
    if value is None:
        value = _eps_max(prob)
        prob._cache[(_EPS_MAX, prob.alpha)] = (_eps_max_owner(prob), value)
    return value


def _eps_max_owner(prob):
    """What eps_max depends on besides the data and alpha: the set, penalty and
    constraints (compared by identity: the problem's copies share them)."""
    return prob.perturbation, prob.penalty, prob.constraints


def known_eps_max(prob):
    """eps_max of ``prob`` where it is in the problem's cache (``eps_max``), else None."""
    kept = prob._cache.get((_EPS_MAX, prob.alpha))
    if kept is None or any(a is not b for a, b in zip(kept[0], _eps_max_owner(prob),
                                                        strict=True)):
        return None
    return kept[1]


def _eps_max(prob):
    """``eps_max`` computed."""
    if getattr(prob.penalty, "offset", 0.0):
        raise ValueError("eps_max is not defined for a penalty with a constant offset "
                         "(an LLA majoriser): beta = 0 does not remove the shift")
    if prob.alpha >= 1.0:
        return np.inf
    if isinstance(prob.family, Hinge) and prob.constraints is None:
        pen = prob.penalty
        polar = None if pen is None else pen.polar_at_zero(np.ones(prob.n_features))
        if polar == np.inf:  # P'(0; .) = 0: flat at 0
            return _eps_max_hinge_flat(prob)
        if polar == 0.0:  # P'(0; u) = inf (L_r, r < 1): beta = 0 is a local minimiser
            return 0.0
        # the set whose support is P'(0; .): eps_max depends on P only through it
        S = prob.perturbation if pen is None else pen.slope_at_zero(prob.n_features)
        if S is not None and (prob.on_host or _hinge_at_norm(prob)):
            return _eps_max_hinge(prob, S)
        if S is not None:
            raise TypeError(
                f"eps_max of a hinge problem whose classes weigh differently needs X in "
                f"memory (numpy or scipy.sparse), got a {prob.engine.name} array: it is a "
                f"program with a term per sample of the heavier class; pass the radii "
                f"yourself (adversarial_path(prob, eps=[...]), "
                f"AdversarialClassifierCV(eps_grid=[...])) or convert X to numpy")
    if isinstance(prob.family, Hinge) or prob.constraints is not None:
        return _eps_max_bisection(prob)
    fam, y, w = prob.family, prob.y, prob.sample_weight
    b0 = fam.intercept_only(y, w) if prob.fit_intercept else 0.0
    score = fam.grad(y, np.full(prob.n_samples, b0))
    g = _weighted_xt(prob, w * score)  # sum_i w_i l'_i x_i
    if prob.fit_intercept and prob.on_host:
        # a constant column c has g_j = c sum_i w_i l'_i = 0 at the intercept-only optimum,
        # up to rounding (~1e-16), which made eps_max inf where the set does not move
        # that feature (the norm of g is then infinite): exactly 0
        g[_constant_columns(prob.X)] = 0.0
    scale = 1.0 - prob.alpha
    if prob.penalty is not None:
        k = float(w @ np.abs(score))
        return _ratio(prob.penalty.polar_at_zero(g), scale * k)
    if prob.perturbation.symmetric:
        k = float(w @ np.abs(score))
        return _ratio(prob.perturbation.norm(g), scale * k)
    a = float(w @ np.where(score > 0, score, 0.0))
    b = float(w @ np.where(score < 0, -score, 0.0))
    return _support_ratio(-g, a, b, prob.perturbation.support_cvx) / scale


def _support_ratio(g, a, b, support):
    """sup{g^T u : a sigma_S(u) + b sigma_S(-u) <= 1} (a, b >= 0): the least eps'
    with g^T u <= eps' [a sigma_S(u) + b sigma_S(-u)] for every u; inf where no
    eps' is (g moves along a direction that S cannot). One small Clarabel solve."""
    g_scale = float(np.max(np.abs(g), initial=0.0))
    if g_scale == 0.0:
        return 0.0
    u = cp.Variable(g.shape[0])
    # The value is linear in g: solve for g / g_scale to keep the tolerance relative.
    lp = cp.Problem(cp.Maximize((g / g_scale) @ u), [a * support(u) + b * support(-u) <= 1])
    lp.solve(solver="CLARABEL", tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
    if lp.status in ("unbounded", "unbounded_inaccurate"):
        return np.inf
    return g_scale * max(float(lp.value), 0.0)


def _eps_max_hinge(prob, S):
    """eps_max of a hinge problem without constraints: for its perturbation set S, or
    for a penalty P the set S with sigma_S(u) = P'(0; u) (``Penalty.slope_at_zero``).

    At beta = 0 every term is pos(1 - z_i b), so the intercept b* minimises
    W+ (1 - b) + W- (1 + b) on [-1, 1] (W+-: the classes' weights). The subgradient of
    sample i's terms at (0, b*) is rho_i (-z_i x_i, -z_i) + (1 - alpha) theta_i (eps v_i, 0)
    with v_i in -z_i S (the subdifferential of beta -> sigma_S(-z_i beta) at 0), and
    theta_i (adversarial term), theta^c_i (clean term) in the derivative of pos at
    u_i = 1 - z_i b*: 1 for u_i > 0, anywhere in [0, 1] for u_i = 0, and
    rho_i = alpha theta^c_i + (1 - alpha) theta_i. So beta = 0 is optimal iff some such
    theta, theta^c give sum_i w_i rho_i z_i = 0 and, for every direction u,

    .. math:: \\textstyle\\sum_i w_i \\rho_i z_i x_i^\\top u \\le
              \\epsilon (1 - \\alpha) \\sum_i w_i \\theta_i \\sigma_S(-z_i u).

    *Equal class weights, or no intercept*: every u_i > 0 (theta = rho = 1), and
    eps_max = ||sum_i w_i z_i x_i|| / ((1 - alpha) sum_i w_i) for a symmetric S (||.||
    its gauge, dual to sigma_S); for an asymmetric one the least eps with
    g^T u <= eps (1 - alpha) (W- sigma_S(u) + W+ sigma_S(-u)) for all u
    (``_support_ratio``).

    *Otherwise* b* = +-1: the heavier class P (label z_P) sits at the kink (u = 0) and
    the lighter class N has theta = rho = 1. Dualising the linear program in
    (theta, theta^c) for a given eps (multiplier mu of sum_P w rho = W_N), with
    v = z_P u, a_i = x_i^T v and g_N = sum_N w_i x_i, beta = 0 is optimal iff
    E(v, mu; eps) <= 0 for all (v, mu), where

    .. math::

        E = \\sum_{i \\in P} w_i [\\alpha \\min(0, a_i - \\mu) + (1 - \\alpha)
        \\min(0, a_i - \\mu - \\epsilon \\sigma_S(-v))] + W_N \\mu - g_N^\\top v
        - \\epsilon (1 - \\alpha) W_N \\sigma_S(v),

    concave in (v, mu) and positively homogeneous. Where sigma_S(-v) = sigma_S(v) on
    the normalisation sigma_S(v) <= 1, eps enters linearly and eps_max is the value of
    one convex program in d + 2 variables (the Charnes-Cooper form of the ratio):

    .. math::

        \\epsilon_{max} = \\max_{v, \\lambda, \\mu} \\lambda \\quad \\text{s.t.} \\quad
        \\sigma_S(v) \\le 1, \\quad
        W_N (\\mu - (1 - \\alpha) \\lambda) - g_N^\\top v + \\sum_{i \\in P} w_i
        [(1 - \\alpha) \\min(0, a_i - \\lambda - \\mu) + \\alpha \\min(0, a_i - \\mu)] \\ge 0.

    That holds for a symmetric S, and for an asymmetric S at alpha = 0 with sigma_S
    replaced by its symmetrisation (sigma_S(v) + sigma_S(-v)) / 2 (substitute
    mu' = mu + eps sigma_S(-v): E then depends on S through that sum alone). An
    asymmetric S with 0 < alpha < 1 has eps times two different support values, not a
    single convex program: eps_max, the least eps with sup E = 0, is found by
    Dinkelbach's steps (``root_at_maximiser`` below; bisection on sup E where a step
    stalls), each a re-solve of a program canonicalised once with eps as a parameter
    (the bisection on whole cvxpy solves it replaces took 9.1 s at n = 2000, d = 50,
    and failed on ECOS at alpha = 0.9999, n = 1e4). The single program is solved on a
    working set of P where P is large (``_HingeProgram``).
    Unbounded (a component that no theta cancels on a coordinate S does not move) is inf.
    """
    y, w = prob.y, prob.sample_weight  # y coded -1 / +1
    scale = 1.0 - prob.alpha
    if _hinge_at_norm(prob):
        g = _weighted_xt(prob, w * y)  # sum_i w_i z_i x_i
        if S.symmetric:
            return _ratio(S.norm(g), scale * float(w.sum()))
        # sample i's shift along u is sigma_S(-z_i u): W+ sigma_S(-u) + W- sigma_S(u)
        return _support_ratio(g, float(w @ (y < 0)), float(w @ (y > 0)),
                              S.support_cvx) / scale
    w_pos, w_neg = float(w @ (y > 0)), float(w @ (y < 0))
    kink = y > 0 if w_pos > w_neg else y < 0
    w_kink = np.where(kink, w, 0.0)
    w_other = float(w @ ~kink)
    if w_other == 0.0:  # one class: (0, b*) has loss 0, the least possible
        return 0.0
    g_other = _weighted_xt(prob, np.where(kink, 0.0, w))  # sum_N w_i x_i
    X = prob.X
    keep = np.flatnonzero(w_kink > 0)
    # the program is linear in (x_i): solve in units of the largest |x_ij| (its value is
    # then eps_max in those units), keeping Clarabel's tolerances relative
    x_scale = max(float(np.max(np.abs(g_other))) / max(w_other, 1e-300),
                  float(abs(X[keep]).max()) if keep.size else 0.0, 1e-300)
    A, w_p, g_n = X[keep] / x_scale, w_kink[keep], g_other / x_scale
    if S.symmetric or prob.alpha == 0.0:
        support = S.support_cvx if S.symmetric else \
            (lambda u: 0.5 * (S.support_cvx(u) + S.support_cvx(-u)))
        value = _HingeProgram(A, w_p, g_n, w_other, prob.alpha, support).value()
        if value is None:  # (not solved; infeasible cannot happen: v = 0, lambda << 0)
            return _eps_max_bisection(prob)
        return max(value, 0.0) * x_scale  # (inf where unbounded)
    zero = _HINGE_ZERO * float(w.sum())  # sup E is 0 (to rounding) from eps_max on
    last = []  # the last program solved: its maximiser (v, mu)

    def sup_at(value):  # (eps in units of x_scale; from the last radius's working set)
        last[:] = [_HingeProgram(A, w_p, g_n, w_other, prob.alpha, S.support_cvx,
                                 eps=value, seed=last[0].masks if last else None)]
        sup = last[0].value()
        if sup is None:
            raise cp.error.SolverError("the hinge's eps_max program was not solved")
        return sup

    def root_at_maximiser(lo):
        # E at the last maximiser (v, mu), with s = sigma_S(+-v) (a feasible point), is a
        # concave function of eps, decreasing, and a lower bound on sup E: where it is
        # positive so is sup E, so its root is a radius below eps_max (Dinkelbach's step)
        u, m = last[0].v, last[0].mu
        up, dn = S.support(u), S.support(-u)
        a_i = np.asarray(A @ u).ravel()
        base = w_other * m - g_n @ u + prob.alpha * (w_p @ np.minimum(0.0, a_i - m))

        def e(r):
            return base + scale * (w_p @ np.minimum(0.0, a_i - m - r * dn)) \
                - scale * w_other * r * up

        if not e(lo) > 0.0:
            return lo
        hi = max(2.0 * lo, 1.0)
        while e(hi) > 0.0:
            hi *= 4.0
            if hi > 1e12:
                return np.inf
        return brentq(e, lo, hi, xtol=1e-300, rtol=1e-13)

    try:
        lo = 0.0
        for _ in range(_HINGE_STEPS):
            sup = sup_at(lo)
            if sup <= zero:
                return lo * x_scale
            step = root_at_maximiser(lo) if np.isfinite(sup) else np.inf
            if np.isinf(step):
                return np.inf
            if not step > lo * (1.0 + _HINGE_RTOL):  # stalled (an inaccurate maximiser)
                break
            lo = step
        return _least_radius(lambda value: sup_at(value) <= zero, _HINGE_RTOL) * x_scale
    except cp.error.SolverError:
        return _eps_max_bisection(prob)


class _HingeProgram:
    """The hinge's eps_max programs over the kink class P (``_eps_max_hinge``), solved on
    a working set of P: with ``eps`` None the single program

    .. math:: \\max \\lambda \\ \\text{s.t.} \\ \\sigma(v) \\le 1, \\
              W_N (\\mu - (1 - \\alpha) \\lambda) - g_N^\\top v
              + \\sum_{i \\in P} w_i [(1 - \\alpha) \\min(0, a_i - c_1)
              + \\alpha \\min(0, a_i - c_0)] \\ge 0,

    c_1 = lambda + mu, c_0 = mu; with a radius ``eps``, sup E(v, mu; eps) (the same
    terms with c_1 = mu + eps s_dn, less (1 - alpha) W_N eps s_up, over
    sigma(v) <= s_up, sigma(-v) <= s_dn, s_up + s_dn <= 1). a_i = x_i^T v.

    Each term min(0, a_i - c) is kept whole for the samples near their kink (N); the
    others are summed per side, those below it (L) as min(0, sum_L w_i (a_i - c)) and
    those above (R) likewise (one aggregated vector X_L^T w_L, X_R^T w_R each):
    sum_L w_i min(0, z_i) <= min(0, sum_L w_i z_i), so the reduced constraint is looser
    and its optimum lambda_R >= lambda*, and where the split holds (z <= 0 on L, >= 0 on
    R) both sides are equal. (With L's terms linear and R's dropped, reduced programs
    were unbounded: mu -> -inf, or lambda, mu -> +inf where the samples kept weigh
    less than the lighter class.) Where every replaced term is on its side at the
    reduced solution (to ``_HINGE_SIDE``), the full constraint holds there with the
    same value, so lambda_R is feasible: lambda_R = lambda* (sup E alike). Samples on the wrong side
    join N and it is solved again. The first split comes from the program on a
    subsample of P (``_HINGE_SUBSAMPLE`` rows, weights rescaled to W_P), with the
    ``_HINGE_NEAR`` samples nearest each kink in N. Up to ``_HINGE_DIRECT`` rows the
    whole program is solved at once (the working set measured no faster there), and
    after ``_HINGE_ROUNDS`` reduced programs, too. One Clarabel solve of the whole
    program took 1.6 s at |P| = 5000 and 30 s at |P| = 25000 (d = 50).
    """

    def __init__(self, A, w, g_n, w_other, alpha, support, eps=None, seed=None):
        self.A, self.w, self.g_n, self.w_other = A, w, g_n, w_other
        self.alpha, self.support, self.eps = alpha, support, eps
        self.v = self.mu = None  # the maximiser, once ``value`` has found it
        # the working set to start from (another radius's final ``masks``: Dinkelbach's
        # steps move eps a little, and its split mostly holds at the next; at n = 1e4
        # with a weak signal the subsample's split put 2300 samples on the wrong side,
        # two 1.2 s rounds a step), and the final one, once ``value`` has found it
        self.seed, self.masks = seed, None

    def solve(self, near1, lin1, near0, lin0, rows=None, w=None):
        """(value, v, mu, c_1) of the reduced program (boolean masks over ``rows`` of A,
        weights ``w``); value None where not solved, inf where unbounded (v, mu, c_1
        None then)."""
        A = self.A if rows is None else self.A[rows]
        w = self.w if w is None else w
        alpha, eps = self.alpha, self.eps
        v, mu = cp.Variable(A.shape[1]), cp.Variable()
        if eps is None:  # lambda (the radius) a variable
            lam = cp.Variable()
            c1 = lam + mu
            head = self.w_other * (mu - (1.0 - alpha) * lam) - self.g_n @ v
        else:
            s_up, s_dn = cp.Variable(), cp.Variable()
            c1 = mu + eps * s_dn
            head = self.w_other * (mu - (1.0 - alpha) * eps * s_up) - self.g_n @ v
        for near, lin, c, weight in ((near1, lin1, c1, 1.0 - alpha), (near0, lin0, mu, alpha)):
            if weight == 0.0:
                continue
            idx = np.flatnonzero(near)
            if idx.size:
                head = head + weight * (w[idx] @ cp.minimum(0, A[idx] @ v - c))
            for out in (np.flatnonzero(lin), np.flatnonzero(~near & ~lin)):  # L, then R
                if out.size:  # min(0, sum w_i (a_i - c)), one vector
                    s_out = np.asarray(A[out].T @ w[out]).ravel()
                    head = head + weight * cp.minimum(0, s_out @ v - float(w[out].sum()) * c)
        if eps is None:
            program = cp.Problem(cp.Maximize(lam), [self.support(v) <= 1, head >= 0])
        else:
            program = cp.Problem(cp.Maximize(head), [
                self.support(v) <= s_up, self.support(-v) <= s_dn, s_up + s_dn <= 1])
        value = _clarabel_value(program)
        if value is None or not np.isfinite(value):
            return value, None, None, None
        return value, np.asarray(v.value, dtype=float), float(mu.value), float(c1.value)

    def value(self):
        """The optimal value (None where not solved, inf where unbounded); its
        maximiser in ``v``, ``mu``."""
        m = self.A.shape[0]
        every, none = np.ones(m, dtype=bool), np.zeros(m, dtype=bool)
        if m > _HINGE_DIRECT and self.seed is not None:
            masks = [mask.copy() for mask in self.seed]
        elif m > _HINGE_DIRECT:
            sub = np.sort(np.random.default_rng(0).choice(m, _HINGE_SUBSAMPLE,
                                                          replace=False))
            w_sub = self.w[sub] * (self.w.sum() / self.w[sub].sum())
            ones = np.ones(sub.size, dtype=bool)
            out = self.solve(ones, ~ones, ones, ~ones, rows=sub, w=w_sub)
            masks = []
            if out[1] is not None:
                a = np.asarray(self.A @ out[1]).ravel()
                for c in (out[3], out[2]):
                    near = none.copy()
                    near[np.argsort(np.abs(a - c))[:_HINGE_NEAR]] = True
                    masks += [near, (a < c) & ~near]
        if m > _HINGE_DIRECT:
            for _ in range(_HINGE_ROUNDS if masks else 0):
                out = self.solve(*masks)
                if out[1] is None:
                    break
                a = np.asarray(self.A @ out[1]).ravel()
                wrong = False
                for k, c in enumerate((out[3], out[2])):
                    if k == 1 and self.alpha == 0.0:
                        continue
                    near, lin = masks[2 * k], masks[2 * k + 1]
                    side = _HINGE_SIDE * (1.0 + abs(c))
                    bad = ~near & np.where(lin, a > c + side, a < c - side)
                    if bad.any():
                        wrong = True
                        near |= bad
                        lin &= ~bad
                if not wrong:
                    self.v, self.mu, self.masks = out[1], out[2], masks
                    return out[0]
        out = self.solve(every, none, every, none)  # the whole program
        self.v, self.mu = out[1], out[2]
        return out[0]


# the asymmetric hinge program's search: sup E at most _HINGE_ZERO times sum_i w_i counts
# as 0 (the program's objective is a sum of terms w_i O(1) in the units of x_scale; below
# eps_max it grows like (1 - alpha) W (eps_max - eps) / 2); at most _HINGE_STEPS of
# Dinkelbach's steps, then (or where a step stalls) bisection to relative precision
# _HINGE_RTOL
_HINGE_ZERO = 1e-9
_HINGE_STEPS = 30
_HINGE_RTOL = 1e-7
# ``_HingeProgram``'s working set: the whole program up to _HINGE_DIRECT rows of the kink
# class; else a first split from _HINGE_SUBSAMPLE of them with the _HINGE_NEAR samples
# nearest each kink kept whole, at most _HINGE_ROUNDS reduced programs, and a replaced
# term counts as on its side within _HINGE_SIDE (1 + |c|) of its kink (the programs'
# units: |x_ij| <= 1, sigma(v) <= 1; Clarabel's tolerance is 1e-9)
_HINGE_DIRECT = 3000
_HINGE_SUBSAMPLE = 2000
_HINGE_NEAR = 500
_HINGE_ROUNDS = 8
_HINGE_SIDE = 1e-9


def _clarabel_value(program):
    """The optimal value of a cvxpy ``program`` by Clarabel at tolerance 1e-9 (tighter:
    Clarabel reports "inaccurate" on some problems without a change in the value, whose
    value is used as it is, without cvxpy's warning): inf or -inf where unbounded, None
    where not solved."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Solution may be inaccurate")
            program.solve(solver="CLARABEL", tol_gap_abs=1e-9, tol_gap_rel=1e-9,
                          tol_feas=1e-9)
    except cp.error.SolverError:
        return None
    if program.status in ("unbounded", "unbounded_inaccurate"):
        return np.inf if isinstance(program.objective, cp.Maximize) else -np.inf
    return None if program.value is None else float(program.value)


def _least_radius(zero_at, rtol):
    """The least eps >= 0 with ``zero_at(eps)`` (monotone: False below, True from it on)
    to relative precision ``rtol``, by bisection from [0, 1] widened fourfold; inf past
    1e12. Returns the upper end (a radius where zero_at holds)."""
    hi = 1.0
    while not zero_at(hi):
        hi *= 4.0
        if hi > 1e12:
            return np.inf
    lo = 0.0
    while hi - lo > rtol * hi:
        mid = 0.5 * (lo + hi)
        if zero_at(mid):
            hi = mid
        else:
            lo = mid
    return hi


def _constant_columns(X):
    """The columns of X (dense or scipy.sparse) with one value in every row."""
    if sp.issparse(X):
        return np.asarray(X.max(axis=0).todense()).ravel() == \
            np.asarray(X.min(axis=0).todense()).ravel()
    return np.ptp(X, axis=0) == 0


def _hinge_at_norm(prob):
    """Whether a hinge problem's eps_max is the norm of one vector (``_eps_max_hinge``):
    without an intercept, or with classes of equal weight (one X^T v pass, on any
    engine). Equal to rounding: weights 1/n sum to class totals that differ in the last
    bits; eps_max is continuous in the class weights (the heavier class's program tends
    to the norm as they meet: 1e-9 apart, the values agree to the program's tolerance),
    so the norm is exact to that rounding."""
    w, y = prob.sample_weight, prob.y
    if not prob.fit_intercept:
        return True
    w_pos, w_neg = float(w @ (y > 0)), float(w @ (y < 0))
    return abs(w_pos - w_neg) <= 1e-12 * (w_pos + w_neg)


def _weighted_xt(prob, v):
    """X^T v on the host, through the engine where X lives (one pass)."""
    if prob.on_host:
        return np.asarray(prob.X.T @ v).ravel()
    eng = prob.engine
    return eng.fetch(eng.rmatvec(eng.put(v)))[0]


def _ratio(num, den):
    if num == 0.0:
        return 0.0
    return np.inf if den == 0.0 else float(num / den)


def _is_zero(res, atol=1e-7):
    return float(np.max(np.abs(res.coef))) <= atol


def _eps_max_bisection(prob, rtol=1e-4):
    from .cvx import solve_cvxpy
    from .exceptions import InaccurateSolutionWarning

    def zero_at(eps):
        # only whether beta = 0 is asked: at the radii the search tries (up to 1e12, where
        # a coefficient of 1e-12 on a moved feature shifts the objective by 1) the solvers'
        # points carry such rounding, which the certificate's warning would report to the
        # caller of eps_max
        at = prob.with_params(eps=eps)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InaccurateSolutionWarning)
            res = solve_cvxpy(at)
        if _is_zero(res) or at.constraints is not None:  # (zero need not be feasible)
            return _is_zero(res)
        # Past eps_max an interior-point solver stops at the degenerate optimum with
        # |beta| ~ 1e-6 (a hinge with a box: eps_max came out 3% too large by the
        # coefficients' test alone): there beta = 0 is as good, and the solver's
        # coefficients move no margin by more than 1e-2 (hinge margins are unit-free).
        # Both are asked: at radii of 1e10 the solvers' objectives can be 1% high, and
        # a feature the set cannot move keeps its coefficient (eps_max inf)
        if np.max(np.abs(at.linear_predictor(res.coef))) > 1e-2:
            return False
        return _zero_point(at)[2] <= res.objective + 1e-8 * (1.0 + abs(res.objective))

    return _least_radius(zero_at, rtol)


def _eps_max_hinge_flat(prob):
    """eps_max of a hinge problem whose penalty is flat at 0 (P'(0; u) = 0: ridge, L_r
    with r > 1): the shift is o(|beta|) there, so beta = 0 is optimal at some eps iff it
    is at eps = 0, the clean fit, and then at every eps: 0 or inf, by the clean fit's
    objective against the zero point's (the bisection returned finite radii, 81-7875,
    where a nonzero beta still beat beta = 0 at ten times them)."""
    from .solve import solve

    _, _, zero_objective = _zero_point(prob)
    clean = solve(prob.with_params(eps=0.0), backend="cvxpy", solver="CLARABEL", tol=1e-10)
    return np.inf if clean.objective < zero_objective - 1e-9 * (1.0 + abs(zero_objective)) \
        else 0.0


def eps_grid(prob, n_eps=50, eps_min_ratio=1e-3):
    """Log-spaced radii from ``eps_max(prob)`` down to ``eps_min_ratio * eps_max``.

    Raises ValueError when eps_max is 0 (beta = 0 is optimal at every radius) or
    infinite (no radius zeroes the coefficients): pass the radii explicitly then.
    """
    n_eps, ratio = check_grid_params(n_eps, eps_min_ratio)
    top = eps_max(prob)
    if not np.isfinite(top) or top <= 0.0:
        raise ValueError(f"eps_max is {top}: no default grid exists for this problem; pass "
                         "the radii explicitly with eps=[...]")
    return np.geomspace(top, top * ratio, n_eps)


def zero_if_better(prob, res, objective=None, rtol=0.0):
    """Return (0, b0) instead of ``res`` when its objective is no larger (up to ``rtol``
    relative to 1 + |objective|).

    For eps >= eps_max (or a penalty level lam >= lam_max), beta = 0 with the
    intercept-only optimum b0 is optimal; there the problem is degenerate and an
    interior-point solver approaches it only to about sqrt(tol). The solver's dual bound
    still certifies the (better) zero point. ``objective(coef, intercept)`` defaults to
    the robust objective of ``prob``. At eps = eps_max exactly, another point of a
    piecewise linear objective (hinge) can tie with zero, and rounding decide between
    them: ``rtol`` (the solve's tolerance) gives the tie to zero.
    """
    if prob.constraints is not None:  # zero need not be feasible
        return res
    zero, b0, obj = _zero_point(prob, objective)
    if not obj <= res.objective + rtol * (1.0 + abs(res.objective)):
        return res
    cert = dataclasses.replace(res.certificate, objective_numpy=obj)
    return dataclasses.replace(res, coef=zero, intercept=b0, objective=obj, certificate=cert)


def _zero_point(prob, objective=None):
    """(0, b0, F(0, b0)): beta = 0 with the intercept-only optimum b0 and its objective
    (``objective(coef, intercept)``, default the robust objective of ``prob``)."""
    from .problem import robust_objective

    b0 = prob.family.intercept_only(prob.y, prob.sample_weight) if prob.fit_intercept else 0.0
    zero = np.zeros(prob.n_features)
    obj = objective(zero, b0) if objective is not None else robust_objective(prob, zero, b0)
    return zero, b0, obj


def zero_solution(prob, backend):
    """The Result beta = 0, b = b0 for ``prob`` at a radius eps >= eps_max, where it is
    optimal by eps_max's definition (no solve). The certificate names "eps_max" as its
    solver, carries the numpy objective and a residual of 0: eps_max is computed from
    the optimality conditions at beta = 0 (``eps_max``), which hold there to rounding.
    A hinge solve at eps_max took hundreds of iterations (ties at the kink: a whole
    segment of solutions is optimal there)."""
    zero, b0, obj = _zero_point(prob)
    cert = Certificate(backend=backend, solver="eps_max", status="optimal",
                       objective_numpy=obj, residual=0.0)
    return Result(coef=zero, intercept=b0, objective=obj, status="optimal",
                  backend=backend, solver="eps_max", n_iter=0, solve_time=0.0,
                  eps=prob.eps, alpha=prob.alpha, certificate=cert)


def check_grid_params(n_eps, eps_min_ratio):
    """(n_eps, eps_min_ratio) of a default grid, checked: a positive integer, and a
    ratio in (0, 1)."""
    return _check_count(n_eps, "n_eps"), check_scalar(
        eps_min_ratio, "eps_min_ratio", lower=0.0, upper=1.0, lower_inclusive=False,
        upper_inclusive=False)


def check_radii(eps, name="eps"):
    """Given radii as a decreasing float array (one number is a grid of one): ValueError
    unless they are a nonempty 1-d array of finite radii >= 0."""
    try:
        grid = np.atleast_1d(np.asarray(eps, dtype=np.float64))
    except (TypeError, ValueError):
        grid = None
    if grid is None or grid.ndim != 1 or grid.size == 0 or not np.all(np.isfinite(grid)) \
            or np.any(grid < 0):
        raise ValueError(f"{name} must be a nonempty 1-d array of finite radii >= 0, got "
                         f"{eps!r}")
    return np.sort(grid)[::-1]


def _check_count(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _predict(grid, results, k):
    """Warm start for radius ``grid[k]``: the secant predictor along the path.

    The solution is extrapolated linearly in log eps from the last two solutions,

    .. math:: \\beta^{pred} = \\beta_{k-1} + r (\\beta_{k-1} - \\beta_{k-2}),
              \\quad r = \\log(\\epsilon_k / \\epsilon_{k-1})
              / \\log(\\epsilon_{k-1} / \\epsilon_{k-2}),

    (the same for the intercept), and a coefficient whose sign would change is set to
    zero, where the path enters or leaves the support. The predictor halves the
    iterations of a warm-started fast solve against starting from the last solution
    (benchmarks/bench_path.py). With fewer than two solutions, or a radius 0 in the
    ratio, the last solution (or None) is returned.
    """
    if k == 0:
        return None
    last = results[-1]
    if k == 1 or min(grid[k], grid[k - 1], grid[k - 2]) <= 0 or grid[k - 1] == grid[k - 2]:
        return last
    before = results[-2]
    r = np.log(grid[k] / grid[k - 1]) / np.log(grid[k - 1] / grid[k - 2])
    coef = last.coef + r * (last.coef - before.coef)
    coef[np.sign(coef) != np.sign(last.coef)] = 0.0  # no sign flips: stop at zero
    return coef, last.intercept + r * (last.intercept - before.intercept)


#: what ``adversarial_path`` does at a radius where no minimiser exists
ON_UNBOUNDED = ("raise", "stop")


def _counting_replacements(solve, prob, **kwargs):
    """(``solve(prob, backend="auto", **kwargs)``, whether it replaced an answer): the
    SolverFallbackWarnings that say so held back (the path counts them in one warning);
    any other warning raised again."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = solve(prob, backend="auto", **kwargs)
    replaced = False
    for w in caught:
        if issubclass(w.category, SolverFallbackWarning):
            replaced = True
        else:
            warnings.warn(w.message, w.category, stacklevel=3)
    return res, replaced


def adversarial_path(prob, eps=None, n_eps=50, eps_min_ratio=1e-3, backend="auto",
                     solver="ECOS", tol=1e-8, max_iter=None, verbose=None,
                     on_unbounded="raise"):
    """Solve ``prob`` along a decreasing grid of radii, each solve warm-started.

    Parameters
    ----------
    prob : AdversarialProblem
        Its own eps is ignored.
    eps : array-like or None
        Radii (sorted decreasing); default ``eps_grid(prob, n_eps, eps_min_ratio)``:
        log-spaced from eps_max, where all coefficients vanish, down.
    backend, solver, tol, max_iter
        As in ``fc.solve``; "auto" decides once for the whole path. Where it decides
        for cvxpy, each radius is solved as ``fc.solve`` does there: cvxpy's answer is
        checked where it is in doubt (an inaccurate status, an ill-conditioned design)
        and replaced where another is lower; one ``SolverFallbackWarning`` counts the
        radii where it was (``Path.results[k]`` names what answered).
    verbose : bool or None
        Progress bar: None shows one on a terminal when the path takes more than a
        second; True always; False never.
    on_unbounded : {"raise", "stop"}
        At a radius where no minimiser exists (logistic classes separable with a margin
        above it: ``SolverError`` with status "unbounded"), "raise" the error; "stop"
        ends the path at the radius before it, with a warning. None exists at any
        smaller radius either: the robust margins z_i eta_i - eps sigma_S(-z_i beta)
        only grow as eps falls, so a direction along which they are all >= 0 (some
        > 0) at eps is one at every smaller radius. Where the first radius has none,
        "stop" raises too.

    Returns
    -------
    Path
        With ``on_unbounded="stop"``, over the radii before the first without a
        minimiser.

    Notes
    -----
    The fast backend starts each radius from the secant prediction of the last two
    solutions (``_predict``), with a shorter smoothing continuation. The cvxpy
    backend re-solves one canonicalised program with a new eps parameter value
    (DPP), so its per-radius cost is the conic solve alone. The default grid's first
    radius is eps_max, where beta = 0 is optimal: it is returned without a solve
    (``zero_solution``).

    Examples
    --------
    >>> import numpy as np, fgsm_cvx as fc
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 3))
    >>> y = X @ [1.0, 0.0, -2.0] + 0.5 * rng.standard_normal(100)
    >>> path = fc.adversarial_path(fc.AdversarialProblem(X, y), n_eps=5)
    >>> path.eps.round(3).tolist()                # from eps_max down to 1e-3 eps_max
    [1.05, 0.187, 0.033, 0.006, 0.001]
    >>> path.coefs[-1].round(2)                   # near eps = 0: close to least squares
    array([ 0.99, -0.07, -2.08])
    """
    from tqdm.auto import tqdm

    from .solve import resolve_backend, solve

    check_problem(prob)
    if on_unbounded not in ON_UNBOUNDED:
        raise ValueError(f"on_unbounded must be one of {ON_UNBOUNDED}, got {on_unbounded!r}")
    top = np.nan  # reported only when computed anyway (it costs solves for hinge)
    if eps is None:
        grid = eps_grid(prob, n_eps, eps_min_ratio)
        top = grid[0]
    else:
        grid = check_radii(eps)
    chosen = resolve_backend(prob, backend)
    # "auto" on cvxpy's side of the size rule: each radius as fc.solve's "auto" solves
    # it (cvxpy, its answer checked where in doubt); else the choice is passed on
    per_radius = "auto" if backend == "auto" and chosen == "cvxpy" else chosen
    backend, replaced = chosen, 0
    following = backend == "fast" and active_set.covers(prob) and active_set.pays(prob)
    failures = 0
    results = []
    bar = tqdm(grid, desc="eps path", unit="eps", leave=False,
               disable=False if verbose else (None if verbose is None else True),
               delay=0.0 if verbose else 1.0)
    for k, e in enumerate(bar):
        if e >= top and prob.constraints is None:  # the grid's first radius: beta = 0
            results.append(zero_solution(prob.with_params(eps=e), backend))
            continue
        start = _predict(grid, results, k) if backend == "fast" else None
        if following and results and failures < active_set.FAILURES \
                and active_set.follows(prob, results[-1]):
            # the gaussian loss with a weighted-l1 shift: the active-set method on its
            # quadratic pieces from the last radius's solution (``fast/active_set.py``)
            res = active_set.follow(prob.with_params(eps=e), results[-1], tol=tol)
            failures = 0 if res is not None else failures + 1
            if res is not None:
                results.append(res)
                continue
        try:
            if per_radius == "auto":
                res, again = _counting_replacements(solve, prob.with_params(eps=e),
                                                    solver=solver, tol=tol, max_iter=max_iter)
                replaced += again
            else:
                res = solve(prob.with_params(eps=e), backend=backend, solver=solver, tol=tol,
                            max_iter=max_iter, warm_start=start)
            results.append(res)
        except SolverError as err:
            if on_unbounded == "raise" or err.status != "unbounded" or not results:
                raise
            bar.close()
            warnings.warn(f"the path stops at eps = {grid[k - 1]:g}: no minimiser exists "
                          f"at eps = {e:g} or below ({err})", UserWarning, stacklevel=2)
            grid = grid[:k]
            break
    if replaced:
        warnings.warn(f"at {replaced} of {len(results)} radii backend='auto' replaced "
                      f"{solver}'s answer, in doubt, with a lower one (fc.solve says why; "
                      f"Path.results[k].backend and .solver name what answered)",
                      SolverFallbackWarning, stacklevel=2)
    return Path(eps=grid, coefs=np.array([r.coef for r in results]),
                intercepts=np.array([r.intercept for r in results]),
                objectives=np.array([r.objective for r in results]),
                results=results, eps_max=float(top))
