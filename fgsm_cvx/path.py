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

import dataclasses

import cvxpy as cp
import numpy as np

from ._validation import check_scalar
from .families import Hinge
from .problem import check_problem
from .result import Path


def eps_max(prob):
    """Smallest eps for which beta = 0 minimises the robust objective of ``prob``.

    Returns ``inf`` when no radius zeroes the coefficients (alpha = 1, a gradient
    component on an immutable feature, or a penalty flat at 0 such as L_r, r > 1).

    Hinge (non-smooth at the intercept-only optimum) and problems with user
    constraints are not covered by the closed form; for them eps_max is located by
    bisection on the cvxpy solution (relative precision 1e-4).
    """
    check_problem(prob)
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
    if prob.on_host:
        g = np.asarray(prob.X.T @ (w * score)).ravel()  # sum_i w_i l'_i x_i
    else:  # the same product where X lives: one pass, d numbers back
        eng = prob.engine
        g = eng.fetch(eng.rmatvec(eng.put(w * score)))[0]
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


def eps_grid(prob, n_eps=50, eps_min_ratio=1e-3):
    """Log-spaced radii from ``eps_max(prob)`` down to ``eps_min_ratio * eps_max``.

    Raises ValueError when eps_max is 0 (beta = 0 is optimal at every radius) or
    infinite (no radius zeroes the coefficients): pass the radii explicitly then.
    """
    n_eps = _check_count(n_eps, "n_eps")
    ratio = check_scalar(eps_min_ratio, "eps_min_ratio", lower=0.0, upper=1.0,
                         lower_inclusive=False, upper_inclusive=False)
    top = eps_max(prob)
    if not np.isfinite(top) or top <= 0.0:
        raise ValueError(f"eps_max is {top}: no default grid exists for this problem; pass "
                         "the radii explicitly with eps=[...]")
    return np.geomspace(top, top * ratio, n_eps)


def zero_if_better(prob, res, objective=None):
    """Return (0, b0) instead of ``res`` when its objective is no larger.

    For eps >= eps_max (or a penalty level lam >= lam_max), beta = 0 with the
    intercept-only optimum b0 is optimal; there the problem is degenerate and an
    interior-point solver approaches it only to about sqrt(tol). The solver's dual bound
    still certifies the (better) zero point. ``objective(coef, intercept)`` defaults to
    the robust objective of ``prob``.
    """
    from .problem import robust_objective

    if prob.constraints is not None:  # zero need not be feasible
        return res
    b0 = prob.family.intercept_only(prob.y, prob.sample_weight) if prob.fit_intercept else 0.0
    zero = np.zeros(prob.n_features)
    obj = objective(zero, b0) if objective is not None else robust_objective(prob, zero, b0)
    if not obj <= res.objective:
        return res
    cert = dataclasses.replace(res.certificate, objective_numpy=obj)
    return dataclasses.replace(res, coef=zero, intercept=b0, objective=obj, certificate=cert)


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


def adversarial_path(prob, eps=None, n_eps=50, eps_min_ratio=1e-3, backend="auto",
                     solver="ECOS", tol=1e-8, max_iter=None, verbose=None):
    """Solve ``prob`` along a decreasing grid of radii, each solve warm-started.

    Parameters
    ----------
    prob : AdversarialProblem
        Its own eps is ignored.
    eps : array-like or None
        Radii (sorted decreasing); default ``eps_grid(prob, n_eps, eps_min_ratio)``:
        log-spaced from eps_max, where all coefficients vanish, down.
    backend, solver, tol, max_iter
        As in ``fc.solve``; "auto" decides once for the whole path.
    verbose : bool or None
        Progress bar: None shows one on a terminal when the path takes more than a
        second; True always; False never.

    Returns
    -------
    Path

    Notes
    -----
    The fast backend starts each radius from the secant prediction of the last two
    solutions (``_predict``), with a shorter smoothing continuation. The cvxpy
    backend re-solves one canonicalised program with a new eps parameter value
    (DPP), so its per-radius cost is the conic solve alone.

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
    top = np.nan  # reported only when computed anyway (it costs solves for hinge)
    if eps is None:
        grid = eps_grid(prob, n_eps, eps_min_ratio)
        top = grid[0]
    else:
        grid = np.atleast_1d(np.asarray(eps, dtype=np.float64))
        if grid.ndim != 1 or grid.size == 0 or not np.all(np.isfinite(grid)) or np.any(grid < 0):
            raise ValueError("eps must be a nonempty 1-d array of finite radii >= 0")
        grid = np.sort(grid)[::-1]
    backend = resolve_backend(prob, backend)
    results = []
    bar = tqdm(grid, desc="eps path", unit="eps", leave=False,
               disable=False if verbose else (None if verbose is None else True),
               delay=0.0 if verbose else 1.0)
    for k, e in enumerate(bar):
        start = _predict(grid, results, k) if backend == "fast" else None
        result = solve(prob.with_params(eps=e), backend=backend, solver=solver, tol=tol,
                       max_iter=max_iter, warm_start=start)
        if e >= top:
            result = zero_if_better(prob.with_params(eps=e), result)
        results.append(result)
    return Path(eps=grid, coefs=np.array([r.coef for r in results]),
                intercepts=np.array([r.intercept for r in results]),
                objectives=np.array([r.objective for r in results]),
                results=results, eps_max=float(top))
