"""The exact solution of the symmetric losses: a reduced program off their linear pieces.

For a symmetric loss rho (gaussian, Huber) the robust objective has, per sample, a clean
term alpha rho(r_i) and an adversarial term (1 - alpha) rho(|r_i| + u), r_i = y_i -
eta_i, u = t + offset (the LLA majoriser's constant offset, 0 otherwise). Huber's rho_M
is linear beyond its threshold M, and its tangents there are minorants everywhere:

.. math:: \\rho_M(v) \\ge M s v - M^2 / 2 \\quad (s = \\pm 1), \\quad
          \\text{with equality iff } s v \\ge M.

Given a point, a sample whose both terms sit on a linear piece, |r_i| >= M (clean) and
|r_i| + u >= M (adversarial), with s_i = sign(r_i), is *far*: its terms are replaced by

.. math:: \\alpha (M s_i r_i - M^2/2) + (1 - \\alpha) (M (s_i r_i + u) - M^2/2),

a minorant (M (s r + u) <= M (|r| + u) and the tangent bound), equal to the terms while
s_i r_i >= M and s_i r_i + u >= M (both hold when s_i r_i >= M). The other samples, the
*near* set N (any term within BAND_MU mu of leaving its linear piece or of the kink at
r = 0), are kept whole. The reduced objective

.. math:: G(\\beta, b, t) = \\sum_{N} w_i [\\alpha \\rho(r_i) + (1 - \\alpha)\\rho(|r_i| + u)]
          + \\sum_{far} w_i M s_i (y_i - \\eta_i) + \\text{const} + (1-\\alpha) M W_{far} t

is then a minorant of F on the same feasible set {eps sigma_S(beta) <= t}, equal to F
where the split holds: any lower bound on min G (the conic solver's dual objective) is one
on F*, and the certificate of the program's solution x* is F(x*) minus that bound, as for
the hinge (``working_set.py``, whose near set, cap and solve this module shares). The far
samples enter through one vector X_c^T (w M s) and a few sums (one X^T u pass); N's rows
come from the engine, so the program's size does not grow with n.

This is what certifies Huber where most residuals lie beyond the threshold (a threshold
far below the residuals' spread: nearly least absolute deviations), where the problem is
degenerate, continuation slow and the pinned step (``kinks.py``) fails to settle: a
randomized survey found such solves ending 1e-6 to 4e-3 above the optimum after
thousands of iterations. The gaussian loss has no linear piece: every sample is near, and
the program is the whole problem, tried only where it is small (n at most
MAX_NEAR_PER_UNKNOWN samples per unknown).
"""

from __future__ import annotations

import warnings

import cvxpy as cp
import numpy as np

from ..families import _SymmetricFamily
from .working_set import (
    MAX_ROUNDS,
    linear_coefficient,
    near_cap,
    near_set,
    program_point,
)

# the near set's growth where the reduced program is unbounded below
GROWTH = 4


def covers(family, perturbation):
    """True where the program applies: a symmetric loss and a set to formulate."""
    return isinstance(family, _SymmetricFamily) and perturbation is not None


def _threshold(family):
    """Huber's threshold M, or 0 for the gaussian loss (no linear piece: no far sample)."""
    return getattr(family, "threshold", 0.0)


def _interval(t, offset):
    """(h, u): the adversarial term's centre shift and half-width, rho(|r - h| + u).

    One shift t: h = 0, u = t + offset. A box's pair (t_up, t_dn): the residuals reach
    [r - t_up, r + t_dn] (``objective.interval_terms``), so h = (t_up - t_dn) / 2 and
    u = (t_up + t_dn) / 2 + offset (the offset shifts both ends)."""
    if np.ndim(t):
        return 0.5 * float(t[0] - t[1]), 0.5 * float(t[0] + t[1]) + offset
    return 0.0, float(t) + offset


def _distance(model, r, t):
    """Each sample's distance to leaving the linear pieces of its terms (-inf for the
    gaussian loss, which has none): the clean term's |r| >= M, the adversarial term's
    kink at a = r - h = 0 and |a| + u >= M (``_interval``); -inf too where r and a have
    opposite signs (the two terms' pieces on different sides)."""
    threshold = _threshold(model.family)
    if not threshold:  # gaussian: every sample near
        return np.full(r.shape[0], -np.inf)
    h, u = _interval(t, model.offset)
    a = r - h
    dist = np.full(r.shape[0], np.inf)
    if model.alpha > 0.0:
        dist = np.minimum(dist, np.abs(r) - threshold)
        dist[np.sign(a) != np.sign(r)] = -np.inf
    if model.alpha < 1.0:
        dist = np.minimum(dist, np.minimum(np.abs(a), np.abs(a) + u - threshold))
    return dist


def _off_pieces(model, s, r, t):
    """The samples whose linear pieces (sides s) are not their terms at (r, t): the clean
    term's s r < M (which with u >= 0 implies the adversarial term's s a + u < M but
    for the kink, s a < 0) and the adversarial term's s a < 0 or s a + u < M."""
    threshold = _threshold(model.family)
    h, u = _interval(t, model.offset)
    off = s * r < threshold if model.alpha > 0.0 else np.zeros(r.shape[0], dtype=bool)
    if model.alpha < 1.0:
        a = s * (r - h)
        off |= (a < 0.0) | (a + u < threshold)
    return off


def _program(rows, y, w, family, alpha, lin, pert, eps, offset, fit_intercept, b_fixed,
             kappa):
    """G as a cvxpy problem on the near rows: (problem, (beta, b_c, t), sigma).

    ``lin`` = (const, g_beta, g_b, g_t): the far samples' part const + g_beta^T beta +
    g_b b_c + g_t t. The program is posed in units of the near responses' scale
    sigma (beta = sigma beta~, b_c = sigma b~, t = sigma t~: the constraint is
    homogeneous) and of the objective's ``kappa`` (the objective at the point: the
    program's value is then of order one, where Clarabel's gap tolerance, relative to
    max(1, |value|), is a relative one), with rho_M(sigma v) = sigma^2 rho_{M/sigma}(v):
    the minimum of G is kappa times the program's. Nearly least absolute deviations in
    the fast path's scaled units have responses of ~1e4 and thresholds of ~1e-4, where
    Clarabel reported the unscaled program infeasible. The variables hold beta~, b~ (a
    number without an intercept) and t~.
    """
    threshold = _threshold(family)
    sigma = float(np.sqrt(np.mean(y * y))) if y.size else 0.0
    sigma = sigma if sigma > 0.0 else 1.0
    scaled = type(family)(threshold=threshold / sigma) if threshold else family
    box = np.ndim(lin[3]) > 0
    beta = cp.Variable(rows.shape[1])
    b = cp.Variable() if fit_intercept else b_fixed / sigma
    t = cp.Variable(2, nonneg=True) if box else cp.Variable(nonneg=True)  # t~ (up, dn)
    const, g_beta, g_b, g_t = lin
    objective = (const + sigma * (g_beta @ beta + g_b * b + g_t @ t if box
                                  else g_beta @ beta + g_b * b + g_t * t)) / kappa
    if rows.shape[0]:
        r = y / sigma - (rows @ beta + b)
        weight = w * (sigma * sigma / kappa)  # rho(sigma v) / kappa
        if alpha > 0.0:
            objective = objective + (alpha * weight) @ scaled.rho_cvx(r)
        if alpha < 1.0:
            # rho(|r - h| + u) (``_interval``): rho increasing on the nonnegative
            # argument (DCP)
            h, u = ((t[0] - t[1]) / 2, (t[0] + t[1]) / 2) if box else (0.0, t)
            objective = objective + ((1.0 - alpha) * weight) @ scaled.rho_cvx(
                cp.abs(r - h) + (u + offset / sigma))
    constraints = [eps * pert.support_cvx(beta) <= (t[0] if box else t)]
    if box:  # (the worst case is nondecreasing in each end: as the hinge's)
        constraints.append(eps * pert.support_cvx(-beta) <= t[1])
    problem = cp.Problem(cp.Minimize(objective), constraints)
    return problem, (beta, b, t), sigma


def _solve(problem, gap_tol):
    """The reduced program's dual bound, by Clarabel, or None on any failure.

    Through cvxpy's get_problem_data / solve_via_data / unpack_results (as the cvxpy
    backend, ``cvx.solve_formulation``), for Clarabel's raw output: the dual bound is
    its dual objective plus the constant cvxpy moved out (value - primal objective).
    """
    opts = {"tol_gap_abs": 0.1 * gap_tol, "tol_gap_rel": 1e-9, "tol_feas": 1e-8}
    try:
        data, chain, inverse = problem.get_problem_data(solver="CLARABEL", solver_opts=opts)
        raw = chain.solve_via_data(problem, data, warm_start=False, solver_opts=opts)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            problem.unpack_results(raw, chain, inverse)
    except (cp.error.SolverError, ValueError, ArithmeticError):
        return None
    if problem.status != cp.OPTIMAL or problem.value is None:
        return None
    value, primal, dual = float(problem.value), float(raw.obj_val), float(raw.obj_val_dual)
    if not np.isfinite(dual + primal):
        return None
    return dual + (value - primal)


def _far_gradient_change(model, moved, u):
    """The change of -X_c^T u when the samples ``moved`` leave the far set (their rows)."""
    return np.asarray(model.rows(moved), dtype=np.float64).T @ u[moved]


def _far_part(model, u, near, g_beta, box=False):
    """(const, g_beta, g_b, g_t): the far samples' terms as const + g_beta^T beta +
    g_b b_c + g_t t. With u = w M s on them (0 on N) and eta = X_c beta + b_c,
    sum_far w [M s (y - eta) - M^2 / 2 + (1 - alpha) M (u - s h)] (the clean and
    adversarial pieces' weights alpha and 1 - alpha summing to one; ``_interval``):
    u - s h = t + offset for one shift, for a box t_up (1 - s)/2 + t_dn (1 + s)/2 +
    offset, so g_t = (1 - alpha) M (sum_far w (1 - s)/2, sum_far w (1 + s)/2)."""
    threshold = _threshold(model.family)
    far = ~near
    w_far = float(np.sum(model.w_host[far]))
    adversarial = (1.0 - model.alpha) * threshold
    const = float(u @ model.y_host) - 0.5 * threshold**2 * w_far \
        + adversarial * model.offset * w_far
    if box:  # (u = w M s: sum_far w s = sum(u) / M)
        ws = float(np.sum(u)) / threshold if threshold > 0.0 else 0.0
        g_t = 0.5 * adversarial * np.array([w_far - ws, w_far + ws])
    else:
        g_t = adversarial * w_far
    return const, g_beta, -float(np.sum(u)), g_t


def symmetric_exact(model, shift, pert, fit_intercept, eps, state, mu, tol, gap_tol,
                    widen=1):
    """The exact solution of a symmetric loss from a point ``state`` = (beta, b, t, X beta).

    As ``working_set.hinge_exact``: ``tol`` is unused, ``gap_tol`` the absolute objective
    tolerance on F(x*) minus the program's dual bound. Returns ((state, F, gap, passes,
    certified), lower bound); passes None where the step declined (too many near samples).
    """
    del tol
    engine = model.engine
    _, b0, t0, Xb0 = state
    d = engine.shape[1]
    y, w = model.y_host, model.w_host
    r = y - (engine.fetch(Xb0)[0] + b0)
    box = np.ndim(t0) > 0
    dist, unknowns = _distance(model, r, t0), d + int(fit_intercept) + (2 if box else 1)
    near = near_set(dist, w, mu, unknowns, d, widen=widen)
    if near is None:
        return (state, np.inf, np.inf, None, False), None
    s = np.sign(r - _interval(t0, model.offset)[0])  # (the side of a = r - h)
    threshold = _threshold(model.family)
    u = np.where(near, 0.0, w * threshold * s)  # the far samples' w M s
    g_beta = linear_coefficient(model, u)
    passes = int(np.any(u))
    b_fixed = None if fit_intercept else float(b0)
    # the objective's units: F at the point (the tolerance's scale where it is ~0)
    kappa = float(model.value(Xb0, b0, t0, 0.0))
    kappa = kappa if np.isfinite(kappa) and kappa > gap_tol else max(gap_tol, 1e-300)
    # the most samples a program holds (``working_set.near_set``'s cap)
    cap = near_cap(unknowns, d, widen)
    for _ in range(MAX_ROUNDS + 2):  # (up to two growths where G is unbounded)
        idx = np.flatnonzero(near)
        problem, (beta_v, b_v, _), sigma = _program(
            np.asarray(model.rows(idx), dtype=np.float64), y[idx], w[idx], model.family,
            model.alpha, _far_part(model, u, near, g_beta, box), pert, eps, model.offset,
            fit_intercept, b_fixed, kappa)
        lower = _solve(problem, gap_tol / kappa)
        if lower is None and problem.status in ("unbounded", "unbounded_inaccurate"):
            # G unbounded below: too few samples kept whole to hold the linear pieces
            # (the point's split is off); four times as many, the nearest, once more
            wider = near_set(dist, w, mu, unknowns, d, least=min(GROWTH * idx.size, cap),
                             widen=widen)
            if wider is None or np.count_nonzero(wider & ~near) == 0:
                break
            moved = np.flatnonzero(wider & ~near)
            g_beta = g_beta + _far_gradient_change(model, moved, u)
            u[moved], near[moved] = 0.0, True
            continue
        if lower is None or beta_v.value is None:
            return (state, np.inf, np.inf, passes, False), None
        lower *= kappa
        point, F, certified, evaluated = program_point(
            model, shift, eps, sigma * np.asarray(beta_v.value, dtype=np.float64),
            sigma * float(b_v.value) if fit_intercept else b_fixed, lower, gap_tol)
        passes += evaluated
        if certified:
            return (point, F, max(F - lower, 0.0), passes, True), lower
        _, b, t, Xb = point
        r = y - (engine.fetch(Xb)[0] + b)
        # far samples whose linear pieces no longer equal their terms
        moved = np.flatnonzero(_off_pieces(model, s, r, t) & ~near)
        # (unlike the hinge's, no limit on the fraction that moves: a point whose near
        # set is the least one, the continuation's last, left 6x that many on the
        # wrong side, and the next program certified)
        if not moved.size or idx.size + moved.size > cap:
            break  # the split holds (the solve was not accurate enough), or too many
        g_beta = g_beta + _far_gradient_change(model, moved, u)
        u[moved], near[moved] = 0.0, True
    return (state, np.inf, np.inf, passes, False), None
