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

from ._validation import check_scalar
from .exceptions import SolverError
from .families import Hinge
from .problem import check_problem
from .result import Certificate, Path, Result


def eps_max(prob):
    """Smallest eps for which beta = 0 minimises the robust objective of ``prob``.

    Returns ``inf`` when no radius zeroes the coefficients (alpha = 1, a gradient
    component on an immutable feature, or a penalty flat at 0 such as L_r, r > 1).

    For a non-convex penalty (SCAD, MCP, L_r with r < 1) it is the radius from which
    beta = 0 is a *local* minimiser (the first-order condition at 0: 0 for L_r, r < 1,
    whose slope at 0 is infinite; the l1 threshold for SCAD and MCP); the global
    minimiser may be nonzero well beyond it, so a grid from it (``eps_grid``) is a
    starting point there, not a guarantee that beta = 0 above it.

    Hinge is non-smooth at the intercept-only optimum: for a symmetric set, no penalty
    and X in memory its eps_max is the value of one small convex program
    (``_eps_max_hinge``).
    Hinge with an asymmetric set or a penalty, and problems with user constraints, are
    not covered; for them eps_max is located by bisection on the cvxpy solution
    (relative precision 1e-4).
    """
    check_problem(prob)
    if getattr(prob.penalty, "offset", 0.0):
        raise ValueError("eps_max is not defined for a penalty with a constant offset "
                         "(an LLA majoriser): beta = 0 does not remove the shift")
    if prob.alpha >= 1.0:
        return np.inf
    if isinstance(prob.family, Hinge) and prob.constraints is None \
            and prob.penalty is None and prob.perturbation.symmetric:
        if prob.on_host or _hinge_at_norm(prob):
            return _eps_max_hinge(prob)
        # (the bisection below solves with cvxpy, which needs X in memory)
        raise TypeError(
            f"eps_max of a hinge problem whose classes weigh differently needs X in memory "
            f"(numpy or scipy.sparse), got a {prob.engine.name} array: it is a program "
            f"with a term per sample of the heavier class; pass the radii yourself "
            f"(adversarial_path(prob, eps=[...]), AdversarialClassifierCV(eps_grid=[...]))"
            f" or convert X to numpy")
    if isinstance(prob.family, Hinge) and prob.constraints is None \
            and prob.penalty is not None \
            and np.isinf(prob.penalty.polar_at_zero(np.ones(prob.n_features))):
        return _eps_max_hinge_flat(prob)
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


def _eps_max_hinge(prob):
    """eps_max of a hinge problem with a symmetric set S and no penalty or constraints.

    At beta = 0 every term is pos(1 - z_i b), so the intercept b* minimises
    W+ (1 - b) + W- (1 + b) on [-1, 1] (W+-: the classes' weights). The subgradient of
    sample i's terms at (0, b*) is rho_i (-z_i x_i, -z_i) + (1 - alpha) theta_i (eps v, 0),
    with v in S (the subdifferential of ||.||_* at 0) and theta_i (adversarial term),
    theta^c_i (clean term) in the derivative of pos at u_i = 1 - z_i b*: 1 for u_i > 0,
    anywhere in [0, 1] for u_i = 0, and rho_i = alpha theta^c_i + (1 - alpha) theta_i.
    So beta = 0 is optimal iff some such theta, theta^c give

    .. math:: \\sum_i w_i \\rho_i z_i = 0, \\quad
              \\|\\textstyle\\sum_i w_i \\rho_i z_i x_i\\| \\le
              \\epsilon (1 - \\alpha) \\textstyle\\sum_i w_i \\theta_i

    (||.|| the norm of S, dual to sigma_S). With equal class weights, or no intercept,
    every u_i > 0 and eps_max = ||sum_i w_i z_i x_i|| / ((1 - alpha) sum_i w_i). Otherwise
    b* = +-1: the heavier class P sits at the kink (u = 0) and the lighter class N has
    theta = rho = 1, and eps_max is the smallest ratio over theta, theta^c in [0, 1]^P
    with sum_P w rho = W_N. Writing ||g|| = max{u^T g : sigma_S(u) <= 1} and dualising
    the linear program in (theta, theta^c) (after the Charnes-Cooper change of
    variables that makes the ratio linear) gives, with a_i = x_i^T u and
    c = u^T sum_N w_i x_i,

    .. math::

        \\epsilon_{max} = \\max_{u, \\lambda, \\mu} \\lambda \\quad \\text{s.t.} \\quad
        \\sigma_S(u) \\le 1, \\quad
        W_N (\\mu - (1 - \\alpha) \\lambda) - c + \\sum_{i \\in P} w_i
        [(1 - \\alpha) \\min(0, a_i - \\lambda - \\mu) + \\alpha \\min(0, a_i - \\mu)] \\ge 0,

    a convex program in d + 2 variables (concave in (u, lambda, mu)), one Clarabel solve
    where the bisection solved the whole problem about 17 times. Unbounded (a component
    that no theta cancels on a coordinate S does not move) is inf.
    """
    y, w = prob.y, prob.sample_weight  # y coded -1 / +1
    scale = 1.0 - prob.alpha
    if _hinge_at_norm(prob):
        return _ratio(prob.perturbation.norm(_weighted_xt(prob, w * y)), scale * float(w.sum()))
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
    u, lam, mu = cp.Variable(prob.n_features), cp.Variable(), cp.Variable()
    a = (X[keep] / x_scale) @ u
    slack = w_other * (mu - scale * lam) - (g_other / x_scale) @ u \
        + w_kink[keep] @ (scale * cp.minimum(0, a - lam - mu))
    if prob.alpha > 0.0:
        slack = slack + prob.alpha * (w_kink[keep] @ cp.minimum(0, a - mu))
    program = cp.Problem(cp.Maximize(lam), [prob.perturbation.support_cvx(u) <= 1,
                                            slack >= 0])
    # 1e-9: tighter, Clarabel reports "inaccurate" on some problems without a change
    # in the value
    try:
        program.solve(solver="CLARABEL", tol_gap_abs=1e-9, tol_gap_rel=1e-9, tol_feas=1e-9)
    except cp.error.SolverError:
        return _eps_max_bisection(prob)
    if program.status in ("unbounded", "unbounded_inaccurate"):
        return np.inf
    if lam.value is None:  # not solved (infeasible cannot happen: u = 0, lambda << 0)
        return _eps_max_bisection(prob)
    return max(float(lam.value), 0.0) * x_scale  # eps_max is linear in X


def _constant_columns(X):
    """The columns of X (dense or scipy.sparse) with one value in every row."""
    if sp.issparse(X):
        return np.asarray(X.max(axis=0).todense()).ravel() == \
            np.asarray(X.min(axis=0).todense()).ravel()
    return np.ptp(X, axis=0) == 0


def _hinge_at_norm(prob):
    """Whether a hinge problem's eps_max is the norm of one vector (``_eps_max_hinge``):
    without an intercept, or with classes of equal weight (one X^T v pass, on any
    engine)."""
    w, y = prob.sample_weight, prob.y
    return not prob.fit_intercept or float(w @ (y > 0)) == float(w @ (y < 0))


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
        As in ``fc.solve``; "auto" decides once for the whole path.
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
    backend = resolve_backend(prob, backend)
    results = []
    bar = tqdm(grid, desc="eps path", unit="eps", leave=False,
               disable=False if verbose else (None if verbose is None else True),
               delay=0.0 if verbose else 1.0)
    for k, e in enumerate(bar):
        if e >= top and prob.constraints is None:  # the grid's first radius: beta = 0
            results.append(zero_solution(prob.with_params(eps=e), backend))
            continue
        start = _predict(grid, results, k) if backend == "fast" else None
        try:
            results.append(solve(prob.with_params(eps=e), backend=backend, solver=solver,
                                 tol=tol, max_iter=max_iter, warm_start=start))
        except SolverError as err:
            if on_unbounded == "raise" or err.status != "unbounded" or not results:
                raise
            bar.close()
            warnings.warn(f"the path stops at eps = {grid[k - 1]:g}: no minimiser exists "
                          f"at eps = {e:g} or below ({err})", UserWarning, stacklevel=2)
            grid = grid[:k]
            break
    return Path(eps=grid, coefs=np.array([r.coef for r in results]),
                intercepts=np.array([r.intercept for r in results]),
                objectives=np.array([r.objective for r in results]),
                results=results, eps_max=float(top))
