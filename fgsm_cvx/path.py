"""eps_max: the smallest attack radius at which beta = 0 is optimal (THEORY.md §2).

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

import cvxpy as cp
import numpy as np

from .families import Hinge


def eps_max(prob):
    """Smallest eps for which beta = 0 minimises the robust objective of ``prob``.

    Returns ``inf`` when no radius zeroes the coefficients (alpha = 1, a gradient
    component on an immutable feature, or a penalty flat at 0 such as L_r, r > 1).

    Hinge (non-smooth at the intercept-only optimum) and problems with user
    constraints are not covered by the closed form; for them eps_max is located by
    bisection on the cvxpy solution (relative precision 1e-4).
    """
    if getattr(prob.penalty, "offset", 0.0):
        raise ValueError("eps_max is not defined for a penalty with a constant offset "
                         "(an LLA majoriser): beta = 0 does not remove the shift")
    if prob.alpha >= 1.0:
        return np.inf
    if isinstance(prob.family, Hinge) or prob.constraints is not None:
        return _eps_max_bisection(prob)
    fam, y, w = prob.family, prob.y, prob.sample_weight
    b0 = fam.intercept_only(y, w) if prob.fit_intercept else 0.0
    score = fam.grad(y, np.full(prob.n_samples, b0))
    g = np.asarray(prob.X.T @ (w * score)).ravel()  # sum_i w_i l'_i x_i
    scale = 1.0 - prob.alpha
    if prob.penalty is not None:
        k = float(w @ np.abs(score))
        return _ratio(prob.penalty.polar_at_zero(g), scale * k)
    if prob.perturbation.symmetric:
        k = float(w @ np.abs(score))
        return _ratio(prob.perturbation.norm(g), scale * k)
    a = float(w @ np.where(score > 0, score, 0.0))
    b = float(w @ np.where(score < 0, -score, 0.0))
    g_scale = float(np.max(np.abs(g), initial=0.0))
    if g_scale == 0.0:
        return 0.0
    u = cp.Variable(prob.n_features)
    support = prob.perturbation.support_cvx
    # The value is linear in g: solve for g / g_scale to keep the tolerance relative.
    lp = cp.Problem(cp.Maximize(-(g / g_scale) @ u), [a * support(u) + b * support(-u) <= 1])
    lp.solve(solver="CLARABEL", tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
    if lp.status in ("unbounded", "unbounded_inaccurate"):
        return np.inf
    return g_scale * max(float(lp.value), 0.0) / scale


def _ratio(num, den):
    if num == 0.0:
        return 0.0
    return np.inf if den == 0.0 else float(num / den)


def _is_zero(res, atol=1e-7):
    return float(np.max(np.abs(res.coef))) <= atol


def _eps_max_bisection(prob, rtol=1e-4):
    from .cvx import solve_cvxpy

    hi = 1.0
    while not _is_zero(solve_cvxpy(prob.with_params(eps=hi))):
        hi *= 4.0
        if hi > 1e12:
            return np.inf
    lo = 0.0
    while hi - lo > rtol * hi:
        mid = 0.5 * (lo + hi)
        if _is_zero(solve_cvxpy(prob.with_params(eps=mid))):
            hi = mid
        else:
            lo = mid
    return hi
