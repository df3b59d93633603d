"""Generalized FGSM with a non-convex penalty by the local linear approximation (LLA).

docs/theory.md §3. For a separable penalty P(beta) = sum_j p(|beta_j|) with p concave on
[0, inf) (``penalties.SCAD``, ``MCP``, ``Lr`` with r < 1), the tangent at the iterate
beta^k majorises it,

.. math::

    P(\\beta) \\le P_k(\\beta) = c_k + \\sum_j v_j |\\beta_j|, \\qquad
    v_j = p'(|\\beta^k_j|), \\quad c_k = P(\\beta^k) - \\sum_j v_j |\\beta^k_j| \\ge 0,

with equality at beta^k. The worst-case loss is nondecreasing in its shift, so the
robust objective with eps P_k in place of eps P majorises the true one and touches it at
beta^k: minimising it (a weighted-FGSM convex problem, perturbation WeightedLinf(v) plus
the constant shift eps c_k) is a majorise-minimise step, and the true objective never
increases. An infinite weight (p'(0+) = inf for L_r, r < 1, at beta^k_j = 0) is the
exact majoriser +inf * |beta_j|: the coefficient stays at 0 (its column is left out).
"""

from __future__ import annotations

import copy
import time

import numpy as np

from ._validation import check_scalar
from .engine import engine_name
from .exceptions import SolverError
from .penalties import DualNorm, SeparablePenalty
from .perturbations import WeightedLinf
from .problem import AdversarialProblem, robust_objective
from .result import Certificate, Result
from .solve import solve


class LinearMajorizer(DualNorm):
    """The LLA majoriser P_k(beta) = c + sum_j v_j |beta_j| (a weighted L1 norm plus c).

    .. math:: P_k(\\beta) = c + \\sum_j v_j |\\beta_j|, \\qquad v_j \\ge 0,\\; c \\ge 0.

    A dual-norm penalty (of ``WeightedLinf(v)``) with a constant ``offset`` c: both
    backends add eps c to the predictor shift. It has no noise scheme (no perturbation
    moves eta by the constant at beta = 0).
    """

    def __init__(self, weights, offset=0.0):
        super().__init__(WeightedLinf(weights), "lla_majorizer")
        self.offset = check_scalar(offset, "offset", lower=0.0)

    def __repr__(self):
        return f"LinearMajorizer(weights={self.perturbation.scales.tolist()}, " \
               f"offset={self.offset})"

    def value(self, beta):
        return super().value(beta) + self.offset

    def cvx(self, beta):
        return super().cvx(beta) + self.offset

    def noise(self, beta):
        raise NotImplementedError("the LLA majoriser has no noise scheme; use the true "
                                  "penalty's")


def _check_lla_penalty(prob):
    pen = prob.penalty
    if not isinstance(pen, SeparablePenalty):
        raise TypeError(f"lla_solve needs a problem whose penalty is separable "
                        f"(penalties.SCAD, MCP or Lr), got {pen!r}")
    return pen


def _snap(beta, zero_tol):
    """Set |beta_j| <= zero_tol * max(1, ||beta||_inf) to exactly 0 (solver-rounded zeros)."""
    beta = np.array(beta, dtype=float)
    beta[np.abs(beta) <= zero_tol * max(1.0, float(np.max(np.abs(beta), initial=0.0)))] = 0.0
    return beta


def weighted_step(prob, weights, offset, start, backend="auto", solver="ECOS", tol=1e-8,
                  max_iter=None):
    """Minimise the robust objective with the shift eps (offset + sum_j v_j |beta_j|).

    ``weights`` may hold +inf: those coefficients are fixed at 0 (their columns are
    dropped, or, with user constraints, pinned by bounds). Returns a Result on the full
    coefficient vector (``objective``: the majorised objective).
    """
    weights = np.asarray(weights, dtype=float)
    pinned = ~np.isfinite(weights)
    coef0, b0 = start
    if not pinned.any():
        sub = prob.with_penalty(LinearMajorizer(weights, offset))
        return solve(sub, backend=backend, solver=solver, tol=tol, max_iter=max_iter,
                     warm_start=(coef0, b0))
    if pinned.all():  # beta = 0 and, the shift being eps * offset, only the intercept moves
        return _intercept_only(prob, offset)
    if prob.constraints is not None:  # pin by bounds (the fast path refuses constraints)
        cons = copy.copy(prob.constraints)
        cons.lower, cons.upper = cons.lower.copy(), cons.upper.copy()
        cons.lower[pinned] = cons.upper[pinned] = 0.0
        sub = prob.with_penalty(LinearMajorizer(np.where(pinned, 0.0, weights), offset),
                                constraints=cons)
        res = solve(sub, backend=backend, solver=solver, tol=tol, max_iter=max_iter)
        coef = res.coef.copy()
        coef[pinned] = 0.0
        return _replace(res, coef=coef)
    keep = ~pinned
    sub = AdversarialProblem(prob.X[:, keep], prob.y, family=prob.family, eps=prob.eps,
                             alpha=prob.alpha, fit_intercept=prob.fit_intercept,
                             sample_weight=prob.sample_weight,
                             penalty=LinearMajorizer(weights[keep], offset))
    res = solve(sub, backend=backend, solver=solver, tol=tol, max_iter=max_iter,
                warm_start=(np.asarray(coef0)[keep], b0))
    coef = np.zeros(prob.n_features)
    coef[keep] = res.coef
    return _replace(res, coef=coef)


def _replace(res, **changes):
    fields = dict(res.__dict__)
    fields.update(changes)
    return Result(**fields)


def _intercept_only(prob, offset):
    """beta = 0: the shift is the constant eps * offset; minimise over b (1-d, convex)."""
    from scipy.optimize import minimize_scalar

    start = time.perf_counter()
    maj = prob.with_penalty(LinearMajorizer(np.zeros(prob.n_features), offset))
    zero = np.zeros(prob.n_features)
    b = 0.0
    if prob.fit_intercept:
        b0 = prob.family.intercept_only(prob.y, prob.sample_weight)
        b0 = b0 if np.isfinite(b0) else 0.0
        res = minimize_scalar(lambda c: robust_objective(maj, zero, c),
                              bracket=(b0 - 1.0, b0), tol=1e-12)
        b = float(res.x)
    value = robust_objective(maj, zero, b)
    cert = Certificate(backend="closed_form", solver="brent", status="optimal",
                       objective_numpy=value)
    return Result(coef=zero, intercept=b, objective=value, status="optimal",
                  backend="closed_form", solver="brent", n_iter=None,
                  solve_time=time.perf_counter() - start, eps=prob.eps, alpha=prob.alpha,
                  certificate=cert, engine=engine_name(prob.X))


def _initial_point(prob, init, backend, solver, tol, max_iter):
    """(coef, intercept) to start from (see ``lla_solve``)."""
    pen = prob.penalty
    if init is None:
        init = "zero" if np.isfinite(pen.initial_slope()) else "mle"
    if isinstance(init, str):
        key = init.lower()
        if key == "zero":
            b = prob.family.intercept_only(prob.y, prob.sample_weight) \
                if prob.fit_intercept else 0.0
            return np.zeros(prob.n_features), (float(b) if np.isfinite(b) else 0.0)
        if key in ("mle", "fgsm"):
            # eps = 0: no shift, the clean maximum-likelihood fit; "fgsm": the L1 shift
            start = prob.with_penalty(None if key == "mle" else "l1")
            if key == "mle":
                start = start.with_params(eps=0.0)
            try:
                res = solve(start, backend=backend, solver=solver, tol=tol,
                            max_iter=max_iter)
            except SolverError as exc:
                if exc.status != "unbounded" or key != "mle":
                    raise
                # separable classes: the margins grow linearly along a separating
                # direction, a shift eps sum_j |beta_j|^r with r < 1 more slowly
                raise SolverError(
                    f"the start of the local linear approximation, the eps = 0 fit, has "
                    f"no minimiser: the classes are separable. With a concave penalty "
                    f"(L_r with r < 1, SCAD, MCP) the shift grows more slowly than the "
                    f"margins along a separating direction, so no minimiser exists at any "
                    f"eps either; use a convex penalty (L_r with r >= 1) or bound "
                    f"constraints on the coefficients "
                    f"(the start's solver said: {exc})", status=exc.status,
                    solver=exc.solver) from exc
            return res.coef, res.intercept
        raise ValueError(f"init must be 'zero', 'mle', 'fgsm', a Result or a (coef, "
                         f"intercept) pair, got '{init}'")
    coef, b = (init.coef, init.intercept) if hasattr(init, "coef") else init
    coef, b = prob.check_coef(coef, b)
    return coef, b


def lla_solve(prob, init=None, max_steps=50, rtol=1e-9, backend="auto", solver="ECOS",
              tol=1e-8, max_iter=None, zero_tol=1e-7):
    """Generalized FGSM with a non-convex penalty, by the local linear approximation.

    Iterates the majorise-minimise step of docs/theory.md §3: with v_j = p'(|beta^k_j|) and
    c_k = P(beta^k) - sum_j v_j |beta^k_j|,

    .. math::

        \\beta^{k+1} = \\arg\\min_{\\beta, b} \\sum_i w_i \\big[\\alpha\\, l(y_i, \\eta_i)
            + (1-\\alpha) \\max_\\pm l(y_i, \\eta_i \\pm \\epsilon (c_k + \\textstyle\\sum_j
            v_j |\\beta_j|))\\big],

    a weighted-FGSM convex problem solved by ``fc.solve``. The true robust objective R
    (with P) is non-increasing along the iterates.

    Parameters
    ----------
    prob : AdversarialProblem
        With ``penalty`` a separable penalty (``penalties.SCAD``, ``MCP``, ``Lr``).
    init : {"zero", "mle", "fgsm"}, Result, (coef, intercept) or None
        Starting point. "zero": beta = 0 (the first step is then FGSM with the L1 shift,
        since p'(0) = 1 for the normalised SCAD / MCP); "mle": the eps = 0 fit; "fgsm":
        generalized FGSM with P = ||.||_1. None: "zero" when p'(0) is finite, else "mle"
        (from 0 an infinite slope would pin every coefficient); then beta = 0, a fixed
        point of the step and a local minimiser of R, is returned where its objective
        is lower than that of the "mle" start's fixed point.
    max_steps : int
        Maximum number of LLA steps.
    rtol : float
        Stop when the true objective decreases by less than rtol (1 + |R|) in a step.
    backend, solver, tol, max_iter
        For each convex step, as in ``fc.solve``.
    zero_tol : float
        Iterates are snapped: |beta_j| <= zero_tol max(1, ||beta||_inf) is set to 0 (an
        interior-point solver renders zeros as ~1e-10, and for L_r, r < 1, the penalty
        of such a value is not negligible).

    Returns
    -------
    Result
        ``objective`` the true robust objective; ``n_lla_steps``; ``lla_objectives`` the
        true objective at the start and after each step (of the run from ``init``: where
        beta = 0 is returned instead, ``objective`` is below the last); ``weights`` the
        last step's v; ``certificate`` that of the last convex step; ``status`` "lla_converged" or
        "lla_max_steps".
    """
    pen = _check_lla_penalty(prob)
    if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) \
            or max_steps < 1:
        raise ValueError(f"max_steps must be a positive integer, got {max_steps!r}")
    rtol = check_scalar(rtol, "rtol", lower=0.0)
    zero_tol = check_scalar(zero_tol, "zero_tol", lower=0.0)
    start = time.perf_counter()
    # from 0 an infinite slope pins every coefficient: beta = 0 is a fixed point of the
    # step (and a local minimiser of R), compared with the default start's result below
    zero_fixed = init is None and not np.isfinite(pen.initial_slope())
    coef, b = _initial_point(prob, init, backend, solver, tol, max_iter)
    coef = _snap(coef, zero_tol)
    objectives = [robust_objective(prob, coef, b)]
    n_iter, converged, res, v = 0, False, None, None
    for _ in range(int(max_steps)):
        v = pen.lla_weights(coef)
        finite = np.isfinite(v)
        # c_k = P(beta^k) - sum_j v_j |beta^k_j| >= 0 by concavity of p (p(0) = 0);
        # pinned coefficients are 0 and contribute nothing to either sum
        offset = max(pen.value(coef) - float(v[finite] @ np.abs(coef[finite])), 0.0)
        res = weighted_step(prob, v, offset, (coef, b), backend=backend, solver=solver,
                            tol=tol, max_iter=max_iter)
        n_iter += res.n_iter or 0
        coef, b = _snap(res.coef, zero_tol), res.intercept
        objectives.append(robust_objective(prob, coef, b))
        if objectives[-2] - objectives[-1] <= rtol * (1.0 + abs(objectives[-1])):
            converged = True
            break
    out = Result(coef=coef, intercept=b, objective=objectives[-1],
                 status="lla_converged" if converged else "lla_max_steps",
                 backend=res.backend, solver=res.solver, n_iter=n_iter,
                 solve_time=time.perf_counter() - start, eps=prob.eps, alpha=prob.alpha,
                 certificate=res.certificate, n_lla_steps=len(objectives) - 1,
                 lla_objectives=tuple(objectives), weights=v, engine=res.engine)
    if zero_fixed and prob.constraints is None:
        # the eps = 0 fit's basin can hold a fixed point far above beta = 0 (random
        # labels, L_r(0.35): 20-103% higher); the better of the two is returned
        zero = _intercept_only(prob, 0.0)
        if zero.objective < out.objective:
            out = _replace(out, coef=zero.coef, intercept=zero.intercept,
                           objective=zero.objective, status="lla_converged",
                           certificate=zero.certificate,
                           weights=pen.lla_weights(zero.coef),
                           solve_time=time.perf_counter() - start)
    return out


def adaptive_fgsm(prob, init="mle", gamma=1.0, backend="auto", solver="ECOS", tol=1e-8,
                  max_iter=None, zero_tol=1e-7):
    """Two-step adaptive (weighted) FGSM from an initial root-n consistent fit.

    Step 1 fits beta_tilde (``init``: "mle" = the eps = 0 fit, "fgsm" = FGSM with the L1
    shift, or a given Result / (coef, intercept)). Step 2 solves one weighted-FGSM
    problem:

    * if ``prob.penalty`` is a non-convex separable penalty: the one-step LLA estimator,
      weights v_j = p'(|beta_tilde_j|) and the constant c of ``lla_solve`` (one
      majorise-minimise step, so R(result) <= R(beta_tilde));
    * otherwise the adversarial adaptive Lasso: the shift eps sum_j v_j |beta_j| with

      .. math:: v_j = |\\tilde\\beta_j|^{-\\gamma}

      (perturbation ``WeightedLinf(v)``: the attacker may move feature j by eps v_j);
      the problem's own perturbation or penalty is replaced. A zero beta_tilde_j
      (below ``zero_tol``) has infinite weight: beta_j stays 0.

    Returns
    -------
    Result
        ``weights`` holds v; ``n_lla_steps`` = 1; the objective is the one solved (the
        true robust objective with P for the one-step LLA, the weighted-FGSM objective
        otherwise).
    """
    gamma = check_scalar(gamma, "gamma", lower=0.0, lower_inclusive=False)
    if isinstance(prob.penalty, SeparablePenalty) and not prob.penalty.convex:
        return lla_solve(prob, init=init, max_steps=1, rtol=0.0, backend=backend,
                         solver=solver, tol=tol, max_iter=max_iter, zero_tol=zero_tol)
    plain = prob.with_penalty(None)
    start = time.perf_counter()
    if isinstance(init, str) and init.lower() in ("mle", "fgsm"):
        first = plain.with_params(eps=0.0) if init.lower() == "mle" \
            else plain.with_penalty("l1")
        res0 = solve(first, backend=backend, solver=solver, tol=tol, max_iter=max_iter)
        coef0, b0 = res0.coef, res0.intercept
    elif isinstance(init, str):
        raise ValueError(f"init must be 'mle', 'fgsm', a Result or a (coef, intercept) "
                         f"pair, got '{init}'")
    else:
        coef0, b0 = (init.coef, init.intercept) if hasattr(init, "coef") else init
        coef0, b0 = prob.check_coef(coef0, b0)
    coef0 = _snap(coef0, zero_tol)
    with np.errstate(divide="ignore"):
        v = np.where(coef0 != 0.0, np.abs(coef0) ** -gamma, np.inf)
    res = weighted_step(plain, v, 0.0, (coef0, b0), backend=backend, solver=solver, tol=tol,
                        max_iter=max_iter)
    return _replace(res, coef=_snap(res.coef, zero_tol), n_lla_steps=1, weights=v,
                    solve_time=time.perf_counter() - start)
