"""The first-order fast path: accelerated projected gradient on the epigraph form.

Variables theta = (beta, b, t) with the single shift t of a symmetric set (or norm
penalty); the feasible set is K = {eps sigma_S(beta) <= t} x R (intercept free), onto
which ``epigraph.project_epigraph`` projects exactly. An asymmetric box has the pair
t = (t_up, t_dn) instead (``box.py``: K = {eps sigma_S(beta) <= t_up, eps sigma_S(-beta)
<= t_dn}; the worst-case term is ``objective.interval_terms``). The objective

.. math:: F_\\mu(\\theta) = \\sum_i w_i [\\alpha l(y_i, \\eta_i) + (1-\\alpha) h_\\mu(\\eta_i, t)]

is the robust objective with its kinks smoothed at level mu (``objective.py``; logistic
needs none). FISTA with backtracking on the Lipschitz estimate L (which also shrinks
by 10% per step, so the step adapts to local curvature, as Poisson needs) and
function-value restart minimises F_mu; continuation divides mu by 10 per stage,
warm-started, until the exact objective stops decreasing (relative change below 10 tol)
between stages; a final exact 1-d search polishes the intercept. For gaussian, Huber and
Poisson the pinned step (``kinks.py``) is tried once the continuation has been costly: it
solves the exact problem with the samples at their kinks as constraints, and ends the
continuation when that problem's KKT conditions certify the point.

FISTA's first step size comes from a power-iteration estimate of the Gram norm
(``model.Model.initial_curvature``). For logistic, gaussian and Huber on large problems a
damped Newton step on the smooth manifold (``newton.py``) takes over each stage once a
short FISTA run has identified the support and signs, when a cost model says its passes
are cheaper than FISTA's remaining iterations; FISTA finishes whatever Newton does not.

The same FISTA core minimises the penalised likelihood of ``penalized_fit``
(``solve_fast_penalized``): there the smooth part is the clean loss (no t) and the step
is the prox of lam P instead of the projection onto K. A penalty with a constant
``offset`` (the LLA majoriser) shifts the predictor by t + eps * offset.

Cost: each iteration does one X v (at the candidate point) and one X^T w (the gradient
at the extrapolated point; its predictor comes for free, eta being linear in theta).
Backtracking steps cost one X v each. X is converted to float64 at most once.
"""

from __future__ import annotations

import dataclasses
import math
import time
from functools import partial, wraps

import numpy as np
from scipy.optimize import minimize_scalar

from .._diagnostics import (
    check_finite,
    check_minimiser_exists,
    check_poisson_zeros,
    explain_failure,
)
from ..engine import blas_threads
from ..exceptions import SolverError
from ..families import Binomial, Gaussian, Hinge, Huber, Poisson, _SymmetricFamily
from ..penalties import DualNorm
from ..perturbations import WeightedLinf
from ..problem import Scaling, robust_objective
from ..result import Certificate, Result
from . import kinks, linear_pieces, working_set
from .box import BoxShift, centred_box
from .epigraph import EpigraphProx, SupportShift
from .model import Model, fast_scaling
from .newton import (
    GRAM_RENT_MIN_FEATURES,
    BoxOrthant,
    EveryCoordinate,
    Free,
    manifold_of,
    newton,
    pass_cost,
    working_set_cap,
)
from .objective import (
    has_second_order,
    needs_smoothing,
)


def _check_data_covered(prob):
    """Raise NotImplementedError (naming cvxpy) for a family or constraints the fast path
    does not take."""
    if not isinstance(prob.family, (Binomial, Hinge, Poisson, Gaussian, Huber)):
        raise NotImplementedError(f"the fast backend has no smoothed form for "
                                  f"{prob.family!r}; use backend='cvxpy'")
    if prob.constraints is not None:
        raise NotImplementedError("the fast backend does not take user constraints; "
                                  "use backend='cvxpy'")


def _check_prox(penalty, d):
    """Raise NotImplementedError (naming cvxpy) unless ``penalty`` is convex with a prox."""
    try:
        if not penalty.convex:
            raise NotImplementedError("it is non-convex (fc.solve uses LLA for it)")
        penalty.prox(np.zeros(d), 1.0)
    except NotImplementedError as exc:
        raise NotImplementedError(f"the fast backend needs the prox of penalty {penalty!r} "
                                  f"({exc}); use backend='cvxpy'") from exc


def shift_set(prob):
    """The shift function h of the epigraph {eps h(beta) <= t}, or raise (naming cvxpy).

    h is the support function of the symmetric perturbation set (``SupportShift``; for a
    dual-norm penalty, of the set it is dual to, the LLA majoriser's constant offset being
    handled by the model), or a convex penalty with a prox (ridge, L_r with r >= 1). An
    asymmetric box (``Box``, ``Masked`` box) gives the pair (sigma_S(beta),
    sigma_S(-beta)) of ``box.BoxShift``: two shifts t = (t_up, t_dn).
    """
    _check_data_covered(prob)
    penalty = prob.penalty
    if penalty is not None and not isinstance(penalty, DualNorm):
        _check_prox(penalty, prob.n_features)
        return penalty
    pert = _formulated_set(prob)
    if not pert.symmetric:
        box = BoxShift.from_perturbation(pert, prob.n_features)
        if box is None:
            raise NotImplementedError(f"the fast backend handles symmetric sets and boxes "
                                      f"only, not {pert!r}; use backend='cvxpy'")
        return box
    try:
        pert.project(np.zeros(prob.n_features))
    except NotImplementedError as exc:
        raise NotImplementedError(f"{exc}; the fast backend needs it, use backend='cvxpy'") \
            from exc
    return SupportShift(pert)


def _formulated_set(prob):
    """The perturbation set whose ``support_cvx`` formulates the shift (a dual-norm
    penalty's set), or None for any other penalty."""
    if prob.penalty is None:
        return prob.perturbation
    return prob.penalty.perturbation if isinstance(prob.penalty, DualNorm) else None


# The balance of FISTA's metric in t (``t_metric``): gamma^2 (1 - alpha) ~ 9, the
# curvature in t met with that in beta (columns of unit scale). On 300 problems (five
# families, Linf / L2 / Box, n = 500, d = 10, alpha 0 to 0.9999, eps 0.05-0.7 eps_max)
# the iterations summed to 23.7k, 14.5k, 11.9k, 12.1k and 12.9k with 0.3, 1, 3, 10 and
# no cap (gamma = eps); with gamma = 1 (before) 98k, and 4 solves ran out of budget
T_METRIC_BALANCE = 3.0


def t_metric(eps, alpha):
    """gamma of FISTA's metric |d_beta|^2 + |d_t|^2 / gamma^2 on (beta, t), in the
    scaled problem (radius ``eps``, mixing ``alpha``).

    .. math:: \\gamma = \\max(1, \\min(\\epsilon, c / \\sqrt{1 - \\alpha})), \\quad c = 3.

    In the Euclidean metric the cone K = {eps sigma(beta) <= t} is narrow where eps is
    large: a step off it is projected back almost onto its axis, so beta hardly moves,
    and the gradient mapping at a point far from optimal can meet the tolerance (a
    logistic fit at alpha = 1 - 1e-6 and 0.3 eps_max stopped at beta = 0, 0.06
    relative above the optimum). With s = t / gamma the cone has radius eps / gamma,
    and the curvature in s is gamma^2 (1 - alpha) times that in t (t enters the loss
    with weight 1 - alpha): gamma = eps would make the cone round, but past
    c / sqrt(1 - alpha) the curvature in s would set the step instead. At alpha = 0
    gamma = min(eps, 3) (1 below eps = 1: no change where the cone is wide).
    """
    cap = T_METRIC_BALANCE / math.sqrt(1.0 - alpha) if alpha < 1.0 else math.inf
    return max(1.0, min(float(eps), cap))


#: Within one iteration's step search, L grown by this factor has y's products
#: recomputed once (``_fista``: rounding carried by the extrapolation)
REFRESH_GROWTH = 2.0 ** 20


def _fista(model, prox, nonsmooth, fit_intercept, state, mu, L, tol, max_iter,
           settled=None):
    """FISTA with backtracking and function-value restart, from ``state``.

    Minimises F = f_mu + h, f_mu the smooth ``model`` and h the nonsmooth part through
    its ``prox(v_beta, v_t, L) -> (beta, t)`` (the proximal step of h / L): the epigraph
    projection (h its indicator, ``nonsmooth`` None: h = 0 on feasible points) or the
    prox of lam P (``nonsmooth(beta) = lam P(beta)``).
    state = (beta, b, t, Xbeta). ``settled(beta, residual)``, when given, is asked after
    each step and ends the run early when it returns True (not converged).
    Returns (state, F, L, iterations, residual, converged)
    where the residual is the norm of the gradient mapping L (y - x+) at the last step.
    Steps, the sufficient-decrease test and the residual are in the metric
    |d_beta|^2 + d_b^2 + |d_t|^2 / gamma^2, gamma the prox's ``t_metric`` (an
    ``EpigraphProx``; 1 for any other prox), with L the curvature in that metric.
    The tolerance is floored at the resolution of f in floating point: a step d is only
    visible in f when L |d|^2 exceeds the rounding of f, so residuals below
    10 sqrt(L eps_machine (1 + |f|)) cannot be certified and count as converged.
    """
    beta, b, t, Xb = state
    gamma = getattr(prox, "t_metric", 1.0)  # (a penalty's prox has no t: 1)
    gamma_sq = gamma * gamma

    def h(v):
        return 0.0 if nonsmooth is None else nonsmooth(v)

    f_x = None  # F = f_mu + h at the current point: the first step's f_y + h (y = x)
    y_beta, y_b, y_t, y_Xb = beta, b, t, Xb
    theta = 1.0
    residual, converged = np.inf, False
    it = 0
    while it < max_iter:
        it += 1
        # one pass over X: X^T g at the extrapolated point (its predictor is y_Xb; for
        # the gaussian loss from its Gram matrix where it is cached, no pass)
        f_y, g_beta, g_b, g_t = model.gradient(y_Xb, y_b, y_t, mu, fit_intercept,
                                               beta=y_beta)
        if f_x is None:
            f_x = f_y + h(beta)
        L_start, refreshed = L, False
        while True:
            if gamma == 1.0:
                n_beta, n_t = prox(y_beta - g_beta / L, y_t - g_t / L, L)
            else:  # the step in the metric |d_beta|^2 + |d_t|^2 / gamma^2: its gradient
                # in t is gamma^2 g_t, its projection onto K in that metric
                n_beta, n_t = prox.metric_step(y_beta - g_beta / L, y_t - gamma_sq * g_t / L)
            # the step is taken in (beta, b_c) (see model.Model: b_c = b + s c^T beta); the
            # state keeps b, which moves by the step of b_c minus s c^T (n_beta - y_beta)
            d_b = -g_b / L
            n_b = y_b + d_b + model.centred_step(y_beta, n_beta)
            # one pass over X: X beta at the candidate (kept), with the smooth part there
            # for the sufficient-decrease test
            n_Xb, f_new = model.evaluate(n_beta, n_b, n_t, mu)
            d_beta, d_t = n_beta - y_beta, n_t - y_t
            # np.dot: t is a float, or the pair (t_up, t_dn) of a box
            sq = float(d_beta @ d_beta) + d_b * d_b + float(np.dot(d_t, d_t)) / gamma_sq
            model_value = (f_y + float(g_beta @ d_beta) + g_b * d_b + float(np.dot(g_t, d_t))
                           + 0.5 * L * sq)
            if f_new <= model_value + 1e-13 * abs(f_y):
                break
            L *= 2.0
            if L > REFRESH_GROWTH * L_start and not refreshed:
                # y's X beta is the extrapolation of earlier products, with their
                # rounding, which cancellation amplifies where |X| |beta| >> |X beta|: a
                # hinge fit on two nearly equal columns (n = 50, coefficients +-2e5 along
                # their difference) had f at y 4e-12 relative off f recomputed there, so
                # no step, however short, passed the test and L ran to 1e300 (an error
                # after ~1000 passes). Once an iteration, y is evaluated afresh
                refreshed, L = True, L_start
                y_Xb = model.evaluate(y_beta, y_b, y_t, mu)[0]
                f_y, g_beta, g_b, g_t = model.gradient(y_Xb, y_b, y_t, mu,
                                                       fit_intercept, beta=y_beta)
                continue
            if not (np.isfinite(f_y) and L < 1e300):  # (no step can pass the test)
                raise SolverError(f"the fast backend's step search failed: the objective "
                                  f"or its curvature is not finite at the current point "
                                  f"(F = {f_y:.3g}); standardise X or rescale y, or use "
                                  f"backend='cvxpy'", status="numerical", solver="FISTA")
        f_new += h(n_beta)  # F at the new point, for the restart test
        residual = L * np.sqrt(sq)
        floor = 10.0 * np.sqrt(L * np.finfo(float).eps * (1.0 + abs(f_x)))
        converged = residual <= max(tol, floor)
        if f_new > f_x and theta > 1.0:  # restart: drop the momentum, step again from x
            # (with the momentum already dropped the step is a plain projected gradient
            # step, accepted: the sufficient-decrease test above passed, so an increase
            # of f can only be rounding)
            theta = 1.0
            y_beta, y_b, y_t, y_Xb = beta, b, t, Xb
            if converged:
                break
            continue
        theta_next = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * theta * theta))
        mom = (theta - 1.0) / theta_next  # a Python float: engine arrays take it as it is
        y_beta = n_beta + mom * (n_beta - beta)
        y_b = n_b + mom * (n_b - b)
        y_t = n_t + mom * (n_t - t)
        y_Xb = n_Xb + mom * (n_Xb - Xb)  # X beta is linear in beta: no extra product
        beta, b, t, Xb, f_x = n_beta, n_b, n_t, n_Xb, f_new
        theta = theta_next
        L *= 0.9  # let the step grow back where the curvature is lower
        if converged or (settled is not None and settled(beta, residual)):
            break
    if f_x is None:  # (no step taken)
        f_x = model.value(Xb, b, t, mu) + h(beta)
    return (beta, b, t, Xb), f_x, L, it, residual, converged


def _polish_intercept(model, Xb, b, t, tol):
    """Exact 1-d minimisation of the unsmoothed objective over the intercept.

    The smoothed minimiser can sit O(mu) away from a kink that many samples share (the
    intercept-only hinge fit at b = +-1 is the typical case), where the objective error
    is linear, not quadratic, in the offset. The objective is convex in b, so a bounded
    Brent search around the iterate only lowers it; no product with X is needed.

    Three cheaper exits come first, from probes at b +- delta (``tol`` is absolute):

    * for convex F with F(b +- delta) >= F(b) the minimiser b* lies within delta of b
      and, the slope at b being bounded by the secant on the side away from b*,
      F(b) - F(b*) <= max(F(b - delta), F(b + delta)) - F(b): b stands when that is
      below tol (probes may fall by rounding, 1e-14 |F|, which the bound includes);
    * convexity bounds what the search could gain within its window from the two
      secant slopes; below 10 tol the best of the three points stands;
    * where F is smooth near b, the parabola through the three values has its vertex
      at b - s / c (s, c its slope and curvature); one evaluation there, accepted when
      it lowers F and lands within tol of the parabola's prediction (the model fits).

    After a continuation one or the other is the usual case: three or four evaluations
    instead of the ~20 of the search.
    """
    f0 = model.value(Xb, b, t, 0.0)
    delta = 1e-6 * (1.0 + abs(b))
    f_lo, f_hi = model.value(Xb, b - delta, t, 0.0), model.value(Xb, b + delta, t, 0.0)
    rounding = 1e-14 * abs(f0)
    if min(f_lo, f_hi) >= f0 - rounding and max(f_lo, f_hi) - f0 + rounding <= tol:
        return b
    width = 1e-2 * (1.0 + abs(b))
    # convexity bounds what the search could gain in its window: the right derivative
    # at b is at least the left secant's slope s_lo and the left derivative at most the
    # right secant's s_hi, so F(b + h) >= F(b) + s_lo h and F(b - h) >= F(b) - s_hi h.
    # A gain below 10 tol (the continuation's own test) ends it at the best probe: a
    # gaussian solve at n = 1e5, d = 50 5e-6 from the intercept's optimum (at most
    # 1e-11 to gain) spent 23 evaluations of F there, 5% of the solve
    s_lo, s_hi = (f0 - f_lo - rounding) / delta, (f_hi - f0 + rounding) / delta
    if width * max(-s_lo, s_hi, 0.0) <= 10.0 * tol:
        return min((f0, b), (f_lo, b - delta), (f_hi, b + delta))[1]
    slope, curvature = (f_hi - f_lo) / (2 * delta), (f_hi + f_lo - 2 * f0) / delta**2
    if curvature > 0 and abs(slope) < width * curvature:
        vertex = b - slope / curvature
        f_vertex = model.value(Xb, vertex, t, 0.0)
        predicted = f0 - 0.5 * slope * slope / curvature
        if f_vertex < f0 and abs(f_vertex - predicted) <= tol:
            return vertex
    res = minimize_scalar(lambda c: model.value(Xb, c, t, 0.0), bounds=(b - width, b + width),
                          method="bounded", options={"xatol": 1e-13 * (1.0 + abs(b))})
    return float(res.x) if res.fun < f0 else b


def _start(prob, scaling, warm_start):
    """(beta'', b'') of the scaled problem from a warm start, or zero and the intercept-only
    optimum (b = 0, i.e. b'' = -o / m, without an intercept)."""
    d = prob.n_features
    no_intercept = -scaling.eta_offset / scaling.eta_mult  # b = 0 in the scaled problem
    if warm_start is None:
        beta = np.zeros(d)
        b = scaling.family.intercept_only(scaling.y, prob.sample_weight) \
            if prob.fit_intercept else no_intercept
    else:
        if hasattr(warm_start, "coef"):
            coef, b = warm_start.coef, warm_start.intercept
        else:
            try:
                coef, b = warm_start
            except (TypeError, ValueError):
                raise ValueError(f"warm_start must be a Result or a pair (coef, intercept), "
                                 f"got {type(warm_start).__name__}") from None
        coef = np.array(coef, dtype=np.float64)
        if coef.shape != (d,) or not np.all(np.isfinite(coef)):
            raise ValueError(f"warm_start coef must be a finite vector of length "
                             f"n_features={d}, got shape {coef.shape}")
        if not np.isfinite(float(b)):
            raise ValueError(f"warm_start intercept must be finite, got {b!r}")
        beta, b = scaling.to_scaled(coef, float(b) if prob.fit_intercept else 0.0)
        if not prob.fit_intercept:
            b = no_intercept
    if not np.isfinite(b):
        b = 0.0
    return beta, b


def _null_objective(model, prob, scaling, key):
    """F at the cold start (``_start`` without a warm start: beta = 0, the intercept-only
    fit), t = 0: one pass over X, kept in the problem's cache under ``key`` (shared along
    a path; it depends on neither eps nor alpha: no shift at beta = 0)."""
    value = prob._cache.get(key)
    if value is None:
        beta, b = _start(prob, scaling, None)
        value = prob._cache[key] = model.evaluate(beta, b, 0.0, 0.0)[1]
    return value


def _same_parameters(warm_start, eps, alpha, lam):
    """Whether ``warm_start`` is a Result for the parameters (eps, alpha, lam): a candidate
    solution of the problem being solved (the data are the caller's business)."""
    return isinstance(warm_start, Result) and (warm_start.eps, warm_start.alpha,
                                               warm_start.lam) == (eps, alpha, lam)


# FISTA iterations before the Newton step takes over the first stage, by warm start (the
# later stages start from the last one's solution, on its manifold): at most this many,
# fewer once the sign pattern has held for ``_SETTLED`` steps
_IDENTIFY = {False: 10, True: 0}
_SETTLED = 3
# Newton tries per stage, and FISTA's iterations (at most) before each retry: a try
# that stalls where the support is still moving (correlated columns, an eps path's
# predicted point across a change of support) is followed by an identification run of
# FISTA and another try; after the last, FISTA alone finishes the solve. Measured on 45
# paths of 20 radii (gaussian, Huber, Poisson; n 500 to 8000, d 20 to 50, AR(1) columns
# with rho 0, 0.6, 0.9): 14.1 s -> 10.5 s in all (Poisson at n = 2000, d = 50,
# rho = 0.9: 3958 -> 1091 iterations); cold solves at n = 1e4 and 1e5, d = 50 unchanged
# but Poisson L2 and Ellipsoid at 1e5 (72 -> 45 and 286 -> 194 iterations;
# benchmarks/bench_fast.py). A third try (2026-12-05): Poisson radii on correlated
# columns whose coarse stage Newton's damped steps stalled on twice (16 passes each) left
# FISTA ~300 iterations to finish it; 24 Poisson paths of 20 radii (n 500 to 2e4, d 20
# and 50, rho 0, 0.6, 0.9) 15.4 s with one try, 13.6 s with two, 12.3 s with three (with
# ``kinks.POISSON_PASSES``); cold Poisson at n = 1e4 unchanged; a fourth try no better
NEWTON_TRIES = 3
_RETRY_IDENTIFY = 20


# Cost model of the switch to Newton, in X^T (X v) passes: a FISTA iteration costs
# about 1.6 (its two products and the per-sample maps), Newton about 6 steps of
# ``newton.pass_cost`` each (measured on the benchmark problems of docs/performance.md)
_FISTA_ITERATION_COST = 1.6
_NEWTON_STEPS = 6
# The unsmoothed (logistic) loss has a single stage: Newton finishes it from FISTA's
# identified point in 2-3 passes, and FISTA's finish is followed by the flat check's
# Newton pass (``_check_flat``), counted on FISTA's side. Measured (bench_fast.py's
# binomial problems at n = 1e5, d = 50, same session): with the smoothed losses' model
# (6 passes, no check) FISTA kept Linf (8.8 passes of FISTA estimated against 9.2 of
# Newton; 7 iterations and the check took 73 ms where 2 Newton passes took 29) and L2
# (5 iterations and the check 68 ms, 3 Newton passes 50 ms); solves 160 -> 111-127 ms
# (Linf) and 137 -> 116-120 ms (L2). Up to ONE_STAGE_MAX_FEATURES columns only:
# ``newton.pass_cost`` is calibrated at d = 50, and at n = 1e5, d = 1000 a pass on a
# working set of ~150 columns took 5.3 X^T (X v) passes against 2.9 predicted, while a
# FISTA iteration took 1.25: there the rule took Newton (4 passes, 1.07 s) where FISTA
# and the check took 0.70 s
_NEWTON_STEPS_ONE_STAGE = 3
ONE_STAGE_MAX_FEATURES = 256


class _Identification:
    """The identification run of FISTA before Newton: stops it once sign(beta) and the
    coordinates at max |beta_j| have been the same for ``_SETTLED`` consecutive steps
    (the support, signs and ties, hence the manifold, identified: the projection makes
    the ties of ``L1``'s l-inf norm exact, other sets' have measure zero) and records the
    residuals, from which ``newton_pays`` decides whether Newton is worth its passes."""

    def __init__(self):
        self.last, self.count, self.residuals = None, 0, []

    def __call__(self, beta, residual):
        self.residuals.append(residual)
        a = np.abs(beta)
        signs = np.sign(beta) * (1.0 + (a == a.max(initial=0.0)))
        same = self.last is not None and np.array_equal(signs, self.last)
        self.last, self.count = signs, self.count + 1 if same else 1
        return self.count >= _SETTLED

    def newton_pays(self, tol, newton_pass_cost, one_stage=False):
        """Whether ``_NEWTON_STEPS`` Newton passes cost less than the FISTA iterations
        still needed at the rate q observed, log(tol / r) / log(q) from residual r
        (FISTA's rate is linear at best on these problems; a run too short to tell, or
        not contracting, goes to Newton). ``one_stage``: the unsmoothed loss, whose
        Newton takes ``_NEWTON_STEPS_ONE_STAGE`` passes and whose FISTA finish one more
        for the flat check."""
        r = [v for v in self.residuals if np.isfinite(v) and v > 0]
        if len(r) < 3:
            return True
        q = (r[-1] / r[0]) ** (1.0 / (len(r) - 1))
        if q >= 0.98:
            return True
        remaining = np.log(tol / r[-1]) / np.log(q) if r[-1] > tol else 0.0
        steps, check = (_NEWTON_STEPS_ONE_STAGE, newton_pass_cost) if one_stage else \
            (_NEWTON_STEPS, 0.0)
        return steps * newton_pass_cost <= _FISTA_ITERATION_COST * remaining + check


# The pinned step (``kinks.py``) is tried once the solve's work reaches this many FISTA
# iterations (a Newton pass counting its passes over X / 2), from wherever FISTA is,
# within a stage or at its end (if a finer one would follow); after a failed try, once
# the work has doubled. A try costs two to five Newton passes and its host work, about
# 10 FISTA iterations at n = 1e5, d = 50 and 30-50 at n = 2000, d = 20: the doubling
# bounds the failed tries to a logarithmic number. Where the stages are short (FISTA's
# 10-20 iterations on well-conditioned data) no try is made: tried after every stage,
# it made cold gaussian and Huber solves 0.3-0.9x as fast. Where they are long (small n,
# large eps, ill-conditioned data, Poisson's finer stages: hundreds to thousands of
# iterations) it replaces the rest. A try fails while FISTA is far from the stage's
# solution and succeeds once it is near (the certified tries cut the KKT residual 100x
# or more in their second or third pass), which the doubling finds without knowing the
# stage's length. Measured on 144 random gaussian, Huber and Poisson problems (n 200 to
# 1e4, d 5 to 50, the manifold sets, alpha 0 and 0.5): 9.1 s in all with at most one
# try per stage and two per solve (the rule before), 6.0 s with this one; a doubling
# restarted at each stage measured 5.7-5.8 s, without the bound on failed tries.
# For the symmetric losses the first try is due sooner at the end of a converged stage,
# at ``PINNED_STAGE_END``: there the smoothed solution is near the exact one, and since
# the try constrains only the band samples its first step takes across their kinks
# (``kinks._predict_pinned``) its host work is small (Poisson's try constrains the
# whole band: tried that early it failed and cost more, e.g. 52 -> 222 iterations on
# bench_fast.py's Masked problem at n = 1e4), below the Newton size rule (from it on,
# a second-order pass costs 5-14 X^T (X v) passes at d = 50, more than the short
# stages it would save: gaussian L2 at n = 1e5 0.150 -> 0.186 s). Measured: gaussian
# and Huber at n = 1e4, d = 50 certified after the first stage (13 FISTA iterations
# and two pinned passes: Linf 43 -> 23 ms, Group 62 -> 28 ms); the 144 random problems
# (n 200 to 1e4) 4.61 s with the rule and the try before (the whole band constrained)
# -> 4.18 s, gaussian and Huber 20-27% faster, Poisson unchanged.
PINNED_MIN_WORK = 50
# a step that declined is asked again within the stage once the work has grown this much
# (``_minimise``)
DECLINED_GROWTH = 4.0
PINNED_STAGE_END = 10

# The continuation's stopping test is relative to |F| + STOP_FLOOR in the scaled
# problem's units (``problem.Scaling``: the response scaled so that the objective at
# beta = 0 is of order one; the margin families' is log 2 or 1): objectives down to
# 1e-3 of the null model's are met to 10 tol of themselves. With a floor of 1 (1 + |F|)
# a well-fitted gaussian path (F* ~ 1.6e-3 there) stopped 8e-6 relative above the
# optimum; with 1e-3 its iterations went 297 -> 493 (0.22 s either way), and
# bench_fast.py's solves at n = 1e4 (certified by their exact steps) were unchanged
STOP_FLOOR = 1e-3
# The exact steps' objective tolerance (``exact_step``'s gap_tol) is 10 tol (|F| +
# GAP_FLOOR), as the continuation's test, F the exact objective at the point offered (in
# the scaled units above), capped at the absolute tol (1 + |F(start)|) it was before: the
# gap bound 2 sum_Z B_i |k_i| of the pinned samples' kink coordinates, tested against
# the cap, certified a Huber solve with F* = 5e-3 2.2e-6 relative above the optimum
# (residual 1.6e-17; one more pass puts the pinned samples on their kinks). 150
# well-fitted gaussian and Huber problems (F* 1e-6 to 1: worst 2.2e-6 -> 1.4e-6, the
# rest within 6e-7) took 5% more iterations; bench_fast.py and bench_path.py were
# unchanged. Only for losses that are nonnegative: Poisson's objective may cross zero,
# where a tolerance relative to |F| would be empty.
GAP_FLOOR = 1e-6
# The scaled radius from which the epigraph cone {eps sigma(beta) <= t} counts as narrow:
# a step in beta costs eps times its size in t, and the gradient mapping in (beta, t)
# understates the slope along the cone by about eps, so that a stop by the residual may
# be premature (Huber, threshold 0.01, alpha = 0.99, eps'' ~ 77 at 0.99 eps_max: 3e-4
# relative above the optimum). Such stops are tested by long steps (``_long_steps``);
# below it they are not (on eps paths at n = 2000 the test fired at most radii, found
# nothing, and cost 5-12% of the iterations)
NARROW_CONE = 10.0


def _minimise(model, prox, nonsmooth, fit_intercept, beta, b, t, smooth, tol, max_iter,
              warm, cache=None, explain=str, newton_step=None, first_mu=1e-2,
              candidate=False, exact_step=None, early_exact=False,
              first_due=PINNED_MIN_WORK, check_step=None, late_newton=None,
              start_exact=False, stage_end_due=PINNED_STAGE_END, null_value=None,
              probe_stops=False, start_step=None, every_stage_end=False,
              null_optimal=None):
    """FISTA stages with continuation on the smoothing mu, from (beta, b, t).

    ``cache`` (a problem's ``_cache``, shared along a path) keeps the first stage's
    curvature estimate for the next solve; ``explain()`` adds the diagnosis to the
    error raised when the iteration budget runs out. ``newton_step(state, mu, L, tol)``
    (``newton.newton``), when given, takes over each stage after a few FISTA iterations
    have identified the manifold; FISTA finishes any stage it does not (its passes
    count as iterations). ``candidate``: the warm start may be this problem's solution
    (a Result of the same parameters), offered first to ``exact_step`` (which
    certifies it where it is one), else probed by one step at a fine smoothing.
    ``exact_step(state, mu, tol, gap_tol)`` (``kinks.pinned_newton``), when given, is
    tried once the solve's work reaches ``PINNED_MIN_WORK`` FISTA iterations, within a
    stage or after one that a finer one would follow (the first time already at
    ``stage_end_due`` (``PINNED_STAGE_END``) after a stage when ``early_exact``: the step
    predicts its constraints), and after each failure once the work has doubled: when it certifies
    the exact solution, the continuation ends there. Unsmoothed problems (``smooth``
    False): a solve that FISTA has not finished in ``DECREMENT_CHECK_AFTER`` iterations
    (small curvature) is finished by ``_check_flat``: Newton (``check_step``, for the
    logistic loss) until its decrement meets the objective tolerance, else FISTA with a
    tighter residual tolerance. Newton's own solutions of such a problem are
    tested by the decrement throughout. ``late_newton`` (a Newton stage where
    ``newton_step`` is None) takes a smoothed stage over once FISTA's work reaches
    ``LATE_NEWTON_WORK`` (FISTA not advancing: ill-conditioned data); ``null_value``: F
    at the cold start, which caps a worse warm start's objective scale; ``probe_stops``:
    an uncertified stop is tested by long steps (``_long_steps``); ``start_exact``
    offers a warm start to ``exact_step`` at once, as a candidate solution is (a path
    whose last radius the symmetric losses' reduced program certified); ``start_step``
    offers a warm start that is no candidate to that step at once (the pinned step with
    its line search, for a path's predicted point: ``PINNED_FIRST_SHARE``), and where it
    fails FISTA's first stage and the early try follow as if there had been no try.
    ``every_stage_end``: with ``early_exact``, the step is tried at the end of every
    stage (once the work reaches ``stage_end_due``), not only until its first try; such
    a try that fails before it was due is followed by the next stage end's once the
    work has grown by its cost, and moves the others' schedule by that cost (Poisson's
    cold solves by Newton: ``solve_fast``).
    Where the exact step has failed, the continuation's stopping test asks it once more.
    ``null_optimal()``: whether beta = 0 is the solution (eps >= eps_max:
    ``_null_optimal``), asked where the solve stops at beta = 0 unsettled.
    Returns (beta, b, t, F_mu, residual relative to the objective scale, iterations).
    """
    def h(v):
        return 0.0 if nonsmooth is None else nonsmooth(v)

    Xb, f_start = model.evaluate(beta, b, t, 0.0)
    # the objective scale: 1 + |F| at the start; for a warm start worse than the cold
    # start (F above ``null_value``) at most the cold start's: scaled by F at a far warm
    # start every tolerance loosened with it (Poisson started at coefficients of 10
    # returned beta = 0 as optimal, its objective +0.58 against -0.54). (A start better
    # than the cold one keeps its own: Poisson's F falls below zero along a path, where
    # 1 + |F| grows and the cold start's scale would tighten every radius, 1.5x the
    # iterations on correlated columns.)
    scale = 1.0 + abs(f_start + h(beta))
    if null_value is not None and f_start + h(beta) > null_value:
        scale = min(scale, 1.0 + abs(null_value))
    # Initial curvature guess (``model.Model.initial_curvature``; backtracking corrects it
    # either way). Along a path (problems made by with_params share _cache) the previous
    # solve's first-stage curvature estimate is a better start still.
    L = None if cache is None else cache.get("fast_first_stage_L")
    if L is None:
        L = max(model.initial_curvature(), 1e-12)
    # Gradient-mapping tolerance: F - F* is about G^2 / (2 m) for curvature m, so G of
    # 100 tol relative to the objective scale leaves the objective accurate to far below tol.
    tol_grad = 100.0 * tol * scale
    state = (beta, b, t, Xb)
    total_iter, residual, previous = 0, np.inf, np.inf
    # Continuation starts coarse from a cold start, at ``first_mu`` of the objective scale:
    # 3e-3 for the symmetric losses (with the power-iteration step size one continuation
    # stage fewer than 1e-2 at n = 1e5, ~48 passes instead of ~57,
    # benchmarks/bench_fast.py), 1e-2 for hinge and Poisson (whose finer first stages
    # converge far more slowly). A warm start begins at 3e-3 (measured best along eps
    # paths, benchmarks/bench_path.py; starting at a fine mu far from the solution costs
    # 1.5-3x more iterations, that problem being ill-conditioned). A candidate solution
    # is probed first with one step at a fine mu: if that step already meets the stage
    # tolerance, the start is (near) the solution and the continuation goes on from
    # there, a step or two in all. Other warm starts (a path's predicted point, a
    # solution for another radius) skip the probe: it failed on every radius of the
    # benchmark paths, at three evaluations of F each time. With Newton, its first pass
    # tests the start: no probe.
    mu = (first_mu if smooth else 0.0) * scale
    if smooth and warm and (newton_step is not None or not candidate):
        mu = 3e-3 * scale
    # the work so far in FISTA iterations (two products each): a Newton pass counts its
    # cost in passes over X (``newton.pass_cost``) / 2, a pinned pass 3
    work = 0.0

    def newton_work(cost, passes):
        # (Newton at a point with no working set costs no pass and has an infinite
        # pass cost: inf * 0 would make the work NaN)
        return 0.5 * cost * passes if passes else 0.0

    due = first_due  # the work at which the next try of the pinned step is due

    def gap_tolerance(state):
        # (``GAP_FLOOR``: relative to F at the point where the loss is nonnegative)
        if isinstance(model.family, Poisson):
            return tol * scale
        here = model.value(state[3], state[1], state[2], 0.0) + h(state[0])
        return tol * min(scale, 10.0 * (GAP_FLOOR + abs(here)))

    tried, declined, declined_work = False, None, 0.0
    better = None  # an uncertified exact step's point below the state tried (``try_exact``)

    def pinned_pays(stage_end=False):
        # (before the first try, a stage's end makes it due at PINNED_STAGE_END; a step
        # that declined at this mu is asked again at the stage's end, or within it once
        # the work has grown DECLINED_GROWTH-fold)
        if exact_step is None:
            return False
        if declined == mu and not stage_end:
            return work >= DECLINED_GROWTH * declined_work
        early = early_exact and stage_end and (every_stage_end or not tried)
        return work >= (min(due, stage_end_due) if early else due)

    def try_exact(state, mu, budget=None, step=None):
        """The pinned samples as constraints: (state, F, residual) of the exact solution,
        certified by its KKT conditions, or None (go on); its passes are counted. A step
        that declines (passes None: too many samples near their kinks for the hinge's
        reduced program) counts as no try. ``budget``: a reduced program's, in FISTA
        iterations (default the work so far); ``step``: the step to try (default
        ``exact_step``)."""
        nonlocal total_iter, work, due, tried, declined, declined_work, better, \
            stage_end_due
        if hasattr(exact_step, "work"):  # (a reduced program's budget: ``ReducedStep``)
            exact_step.work = work if budget is None else budget
        out = (exact_step if step is None else step)(state, mu, tol_grad,
                                                     gap_tolerance(state))
        if out[3] is None:
            declined, declined_work = mu, work
            return None
        tried, declined = True, None
        total_iter += out[3]
        early = every_stage_end and work < due  # (a stage end's try before it was due)
        work += 3.0 * out[3]
        if early:
            # the next stage end's try once the solve has done as much work again as
            # this one cost, the others' schedule moved by that cost (``every_stage_end``)
            stage_end_due, due = work + 3.0 * out[3], due + 3.0 * out[3]
        else:
            due = 2.0 * work  # after a failure: once the solve's work has doubled
        if out[4]:
            return out[:3]
        if np.isfinite(out[1]):
            # an uncertified program's point (``linear_pieces.symmetric_exact``) below F
            # at the state tried is where FISTA goes on: a Huber fit on nearly collinear
            # columns (masked box, n = 250, d = 80), whose program of the whole problem
            # had an untrusted bound, ran out of its iterations from FISTA's own point
            here = model.value(state[3], state[1], state[2], 0.0) + h(state[0])
            total_iter += 1
            if out[1] < here:
                better = out[0]
        return None

    # (a candidate solution, a Result of these parameters, was probed when it was found)
    first, certified, probed = True, False, candidate
    # (``start_exact``, ``start_step``: a warm start offered to the exact step at once,
    # as a candidate, or to ``start_step``; with Newton's stages too: from a solution of
    # 2000 x 50 with the Newton size rule lowered, 6-65 iterations -> 1-2 for gaussian
    # and Poisson with Linf, L2 and L1 and Huber with L2 and L1 (Newton's stages had
    # redone the continuation from mu = 3e-3, the smoothed problem's solution being
    # another point); 70 -> 1 at n = 6000, d = 400 (gaussian Linf))
    if smooth and warm and (candidate or start_exact or start_step is not None) \
            and (newton_step is None or exact_step is not None or start_step is not None):
        # A candidate solution: the exact step certifies it where it is one (the pinned
        # samples' KKT conditions, the hinge's reduced program), in a pass or two; the
        # smoothed problem's probe alone cannot (the exact solution is not stationary
        # for F_mu where samples sit at their kinks: 11-81 iterations measured on
        # gaussian, Poisson and hinge problems warm-started from their own solutions)
        fine = 1e-5 * scale
        first_step = start_step if start_step is not None and not candidate else exact_step
        failures = getattr(first_step, "failures", None)
        pinned = None if first_step is None else try_exact(state, fine, step=first_step)
        if pinned is not None:
            (state, f_mu, residual), certified = pinned, True
        elif first_step is start_step or start_exact and not candidate:
            # a predicted point the pinned step did not certify: FISTA's first stage and
            # the early try at its end, as if there had been no try (counted as one, the
            # next try waited for twice its passes' work: on make_regression's saturated
            # stretch 100-280 iterations a radius where 5-50 had done); no probe (it
            # fails on predicted points, ``mu`` above). So for a reduced program's
            # (``start_exact``), whose failure there is the prediction's, not a sign
            # that FISTA does not advance: its next near set is not widened. Counted as
            # a failure, the next try came after a few iterations with twice the near
            # samples, 1-1.4 s a program where the cold solve's, after FISTA's first
            # stage, took 0.35 s (Huber, make_regression 2000 x 200: the path 45 -> 28 s)
            if failures is not None:
                first_step.failures = failures
            tried, due = False, first_due
        elif newton_step is None:  # (with Newton, its first pass tests the start)
            probe = _fista(model, prox, nonsmooth, fit_intercept, state, fine, L,
                           max(tol_grad, 1e-3 * fine), 1)
            state = probe[0]  # a proximal-gradient step: never worse
            total_iter += 1
            mu = fine if probe[5] else 3e-3 * scale
    while not certified:
        stage_tol = tol_grad if not smooth else max(tol_grad, 1e-3 * mu)
        converged = by_newton = False
        if newton_step is not None:
            # FISTA identifies the support and signs, then Newton
            # (a warm start goes straight to Newton, unless its working set is past
            # ``working_set_cap``: such a pass costs more than FISTA's iterations on
            # well-conditioned data, and FISTA's rate decides, as on a cold start)
            identify = _IDENTIFY[warm and not newton_step.large(state[0])] if first else 0
            if identify > 0:
                watch = _Identification()
                state, f_mu, L, it, residual, converged = _fista(
                    model, prox, nonsmooth, fit_intercept, state, mu, L, stage_tol,
                    min(max_iter - total_iter, identify), settled=watch)
                total_iter += it
                work += it
                if not watch.newton_pays(stage_tol, newton_step.pass_cost(state[0]),
                                         one_stage=not smooth and state[0].shape[0]
                                         <= ONE_STAGE_MAX_FEATURES):
                    newton_step = None  # FISTA converges fast enough on its own
            for attempt in range(NEWTON_TRIES):
                if newton_step is None or converged or max_iter <= total_iter:
                    break
                if attempt:
                    # Newton stalled where the support was still moving: FISTA
                    # identifies it, as before a cold start's first stage, and Newton
                    # tries once more from there
                    state, f_mu, L, it, residual, converged = _fista(
                        model, prox, nonsmooth, fit_intercept, state, mu, L, stage_tol,
                        min(max_iter - total_iter, _RETRY_IDENTIFY),
                        settled=_Identification())
                    total_iter += it
                    work += it
                    if converged:
                        break
                cost = newton_step.pass_cost(state[0])
                # (the decrement is tested where the stage's tolerance is the solve's:
                # at the stop, such a stage's answer needs no check by ``_check_flat``)
                state, f_mu, residual, it, converged = newton_step(
                    state, mu, L, stage_tol, max_passes=min(16, max_iter - total_iter),
                    gap_tol=None if smooth and stage_tol > tol_grad else tol * scale)
                by_newton = converged
                total_iter += it
                work += newton_work(cost, it)
                if not converged and attempt == NEWTON_TRIES - 1:
                    newton_step = None  # the finer stages would be harder still
        # FISTA runs the stage until the next try of the pinned step is due, and the
        # step is tried from where FISTA is (the finest stages, where the kinks'
        # curvature t / mu slows FISTA, cost most)
        while (exact_step is not None or late_newton is not None and newton_step is None) \
                and smooth and not converged and max_iter > total_iter:
            # (after a decline at this mu, the next try within the stage comes at
            # DECLINED_GROWTH times the work: few restarts of FISTA's momentum, where
            # one-iteration runs, each restarting it, cost a hinge stage thousands of
            # iterations; at the stage's end only, a stage FISTA does not finish asked
            # no more: a gaussian fit on a masked box, n = 192, d = 5, alpha = 0.9,
            # ran out of its 20000 iterations, its program declined at 50 iterations)
            # (without an exact step, a Poisson box's: FISTA runs until Newton takes
            # the stage over, ``late_newton`` below; then it finishes the stage)
            next_try = LATE_NEWTON_WORK if exact_step is None else \
                DECLINED_GROWTH * declined_work if declined == mu else due
            chunk = min(max_iter - total_iter, max(int(np.ceil(next_try - work)), 1))
            state, f_mu, L, it, residual, converged = _fista(
                model, prox, nonsmooth, fit_intercept, state, mu, L, stage_tol, chunk)
            total_iter += it
            work += it
            pinned = try_exact(state, mu) if not converged and pinned_pays() else None
            if pinned is not None:
                (state, f_mu, residual), certified = pinned, True
                break
            if better is not None:
                state, better = better, None
            if late_newton is not None and newton_step is None and not converged \
                    and work >= LATE_NEWTON_WORK and max_iter > total_iter:
                # FISTA does not advance (ill-conditioned: columns on very different
                # scales): Newton takes this stage over, and the next stages' starts
                newton_step = late_newton
                state, f_mu, residual, it, converged = newton_step(
                    state, mu, L, stage_tol, max_passes=min(16, max_iter - total_iter))
                total_iter += it
                work += newton_work(newton_step.pass_cost(state[0]), it)
        if certified:
            break
        # the unsmoothed loss: FISTA that has not converged in DECREMENT_CHECK_AFTER
        # iterations (small curvature) hands over to Newton, tested by its decrement;
        # one that has is tested by the decrement too (where Newton applies): a clean
        # logistic fit with two nearly equal columns stopped after 15-17 iterations, its
        # residual met, 1e-4 to 5% above the optimum (curvature ~1e-9 along their
        # difference). The test costs one Newton pass where the stop holds (+10-25% on
        # bench_fast.py's logistic solves at n = 1e3 and 1e4, d = 50)
        flat_check = not smooth and not by_newton
        if not converged and max_iter > total_iter:  # (a spent budget keeps the residual)
            budget = max_iter - total_iter
            state, f_mu, L, it, residual, converged = _fista(
                model, prox, nonsmooth, fit_intercept, state, mu, L, stage_tol,
                min(budget, max(DECREMENT_CHECK_AFTER - total_iter, 1)) if flat_check
                else budget)
            total_iter += it
            work += it
        if first and cache is not None:
            cache["fast_first_stage_L"] = L
        first = False
        if flat_check and (total_iter >= DECREMENT_CHECK_AFTER
                           or converged and check_step is not None):
            state, f_mu, residual, it, converged, _ = _check_flat(
                model, prox, nonsmooth, fit_intercept, state, L, tol_grad, tol * scale,
                max_iter - total_iter, check_step)
            total_iter += it
        if not converged:
            # (explain: non-empty where a program proves that no minimiser exists)
            raise _out_of_budget(max_iter, residual / scale, why=explain())
        if not smooth:
            break
        # The exact objective at the stage solution approaches F* about linearly in mu, so
        # with mu divided by 10 per stage its decrease from the previous stage, Delta,
        # over-estimates the remaining gap about ninefold. Stop when Delta is below
        # 10 tol relative to F (and the last stage met the gradient tolerance), and so is
        # the smoothing gap F_mu - F at the stage solution: F_mu >= F, so
        # F(x_mu) - F* <= F_mu(x*) - F(x*), the gap at the solution, which the gap at
        # x_mu estimates. Delta alone stopped a hinge solve 1.2e-6 above the optimum (the
        # exact objective can stall for a stage while the smoothed one still moves).
        # ("relative to F": to |F| + STOP_FLOOR)
        exact = model.value(state[3], state[1], state[2], 0.0) + h(state[0])
        small = 10.0 * tol * (STOP_FLOOR + abs(exact))
        if previous - exact <= small and f_mu - exact <= small and stage_tol <= tol_grad:
            # the test estimates the gap; where the exact step has failed (a degenerate
            # problem, where it stopped up to 4e-2 above the optimum) it is asked once
            # more
            final = tried and declined != mu
            if final and hasattr(exact_step, "final"):
                # (the last try: a reduced program may grow past its usual limits, as the
                # alternative is an uncertified stop: ``working_set.hinge_exact``)
                exact_step.final = True
            pinned = try_exact(state, mu) if final else None
            if pinned is not None:
                (state, f_mu, residual), certified = pinned, True
                break
            if probe_stops and not probed and max_iter > total_iter:
                # in a narrow cone (``probe_stops``: NARROW_CONE) the residual understates
                # the slope along it, and F may fall linearly a long way past this stop:
                # long steps along the proximal-gradient arc test it
                better, passes = _long_steps(model, prox, h, fit_intercept, state, mu, L,
                                             exact, exact - small)
                total_iter += (passes + 1) // 2  # (two passes an iteration)
                if better is not None:  # the stop was premature: on from there
                    state, previous = better, np.inf
                    continue
                probed = True
            checker = newton_step or late_newton
            if (total_iter >= LATE_NEWTON_WORK or checker is not None) \
                    and max_iter > total_iter and not by_newton:
                # a slow solve is a flat valley, where the residual does not bound the
                # gap and consecutive stages, each stopped by it, barely move: a
                # gaussian l1-set solve on sparse columns (n = 2000, d = 1000) ended
                # 4.5e-4 above the optimum after 5526 iterations. Newton's decrement
                # (or a tighter residual) tests it, as for the unsmoothed loss; and, as
                # there, a fast stop where Newton applies: a clean Poisson fit with two
                # nearly equal columns stopped after 19-24 iterations 6e-5 to 6e-3 above
                # the optimum
                state, f_mu, residual, it, converged, settled = _check_flat(
                    model, prox, nonsmooth, fit_intercept, state, L, tol_grad,
                    tol * scale, max_iter - total_iter, checker, mu)
                total_iter += it
                # FISTA counts a residual at its rounding floor as converged (not
                # ``settled``), which in a flat valley bounds nothing (F - F* ~ r^2 /
                # (2 m), m small): a gaussian l1-set solve on text-like columns (n =
                # 1000, d = 500), where the pinned step has no manifold and the reduced
                # program had declined as costlier than the solve, stopped there 2.4e-6
                # relative above the optimum. Unsettled, the reduced program (of every
                # sample, for the gaussian loss) is tried whatever its cost, the last
                # resort before the floor's answer or an error
                # At beta = 0 with eps >= eps_max the solution is beta = 0 (exactly: its
                # intercept is polished below), whatever the residual's rounding floor
                # (responses of ~1e2, make_regression's: the floor of dF/db stayed above
                # the tightened tolerance, and the program of every sample ran, 3.5 s at
                # 2000 x 200, to return coefficients of 5e-4 at eps_max)
                null = not np.any(state[0]) and null_optimal is not None and null_optimal()
                if hasattr(exact_step, "final") and not settled and not null:
                    exact_step.final = True
                    pinned = try_exact(state, mu, budget=np.inf)
                    if pinned is not None:
                        (state, f_mu, residual), certified = pinned, True
                        break
                if not converged:
                    raise _out_of_budget(max_iter, residual / scale, "a flat valley: ")
            break
        # a costly continuation with a finer stage to come: end it here?
        pinned = try_exact(state, mu) if pinned_pays(stage_end=True) else None
        if pinned is not None:
            (state, f_mu, residual), certified = pinned, True
            break
        if better is not None:
            state, better = better, None
        previous = exact
        mu *= 0.1
    beta, b, t, Xb = state
    if smooth and fit_intercept and not certified:  # h does not depend on the intercept
        b = _polish_intercept(model, Xb, b, t, tol * scale)
    return beta, float(b), t, f_mu, residual / scale, total_iter


def _long_steps(model, prox, h, fit_intercept, state, mu, L, f0, target):
    """(point or None, passes): a point on the proximal-gradient arc x(k) =
    prox_{k h / L}(x - k grad F_mu(x) / L) (the projection onto K, or the penalty's
    prox), k = 2, 4, 8, ..., whose exact objective F + h is below ``target`` (the best
    until it stops falling), and the passes over X spent.

    Where the objective is linear along a feasible direction over a long way (a
    flat valley of linear pieces), the gradient mapping is small and bounds nothing;
    the arc follows the direction, and a point far below the stopping point's objective
    ``f0`` proves the stop premature. The doubling goes on while the decrease f0 - F
    grows about linearly with k (at least 1.5x a doubling) or has passed the target:
    where it grows less, curvature bounds what is left (a quadratic's decrease along a
    ray at most doubles past such a point), and the arc stops there (2-3 evaluations on
    well-conditioned paths, against 4-7 to the arc's first rise)."""
    beta, b, t, Xb = state
    _, g_beta, g_b, g_t = model.gradient(Xb, b, t, mu, fit_intercept, beta=beta)
    best, f_best, passes = None, f0, 1
    for j in range(1, 41):
        k = 2.0 ** j / L
        n_beta, n_t = prox(beta - k * g_beta, t - k * g_t, 1.0 / k)  # (step k: 1 / k)
        n_b = b - k * g_b + model.centred_step(beta, n_beta) if fit_intercept else b
        n_Xb, f = model.evaluate(n_beta, n_b, n_t, 0.0)
        f += h(n_beta)
        passes += 1
        if not f < f_best:
            break
        linear = f0 - f >= 1.5 * (f0 - f_best)
        best, f_best = (n_beta, n_b, n_t, n_Xb), f
        if not linear and f_best >= target:
            break
    return (best if f_best < target else None), passes


def _out_of_budget(max_iter, residual, what="", why=""):
    """The SolverError of a solve that ran out of ``max_iter`` iterations (``residual``
    relative to the objective scale; ``why``: a proof that no minimiser exists)."""
    return SolverError(f"the fast backend did not converge in {max_iter} iterations "
                       f"({what}gradient-mapping residual {residual:.2e}); raise max_iter "
                       f"or use backend='cvxpy'.{why}",
                       status="unbounded" if why else "max_iter", solver="FISTA")


# The unsmoothed (logistic) loss: FISTA that has run this many iterations hands over to
# Newton, whose solution is tested by its decrement (``_check_flat``). On
# well-conditioned problems FISTA converges in 10-50 (bench_fast.py: 12-17 at n = 1e4,
# d = 50), and one Newton pass confirms it by the decrement; slow convergence is the
# sign of small curvature, where the residual alone stopped 4e-4 above the optimum after
# 700-3400 iterations (breast cancer, standardised, eps 1e-3 to 3e-3 eps_max) and
# Newton takes 2-22 passes (a fast one is no proof of large curvature: ``_minimise``)
DECREMENT_CHECK_AFTER = 50
# Newton's passes in the check, and the residual tolerance's factor for FISTA where
# Newton cannot finish (F - F* ~ r^2 / (2 m) falls 1e4-fold)
_CHECK_PASSES = 50
_FLAT_TIGHTEN = 1e-2


def _check_flat(model, prox, nonsmooth, fit_intercept, state, L, tol_grad, gap_tol,
                budget, check_step, mu=0.0):
    """Finish and test FISTA's slow solve of an unsmoothed problem by Newton's decrement.

    The residual r <= ``tol_grad`` bounds F - F* by about r^2 / (2 m) for curvature m,
    which is no bound where m is small (a flat valley: nearly separable logistic data,
    where the coefficients grow and the loss's curvature vanishes). Newton's decrement
    lambda^2 = grad^T H^{-1} grad does not depend on the conditioning: Newton
    (``check_step`` with ``gap_tol``) continues from the solution until lambda^2 / 2 <=
    ``gap_tol`` as well as r <= tol_grad (from FISTA's solution, one pass where it passes
    the test; from an unconverged point, up to ``_CHECK_PASSES``).
    Where Newton cannot (no manifold, a working set too large, a stall) or there is none
    (``check_step`` None: the penalised twin), FISTA goes on from the last point with the
    residual tolerance ``_FLAT_TIGHTEN`` times smaller.
    Returns (state, F, residual, iterations, converged, settled): ``settled`` False where
    FISTA's answer met only its rounding floor (``_fista``), not that tolerance.
    """
    it = 0
    if check_step is not None:
        state, f, residual, it, converged = check_step(
            state, mu, L, tol_grad, max_passes=min(_CHECK_PASSES, budget), gap_tol=gap_tol)
        if converged:
            return state, f, residual, it, True, True
    tight = _FLAT_TIGHTEN * tol_grad
    state, f, _, more, residual, converged = _fista(
        model, prox, nonsmooth, fit_intercept, state, mu, L, tight, budget - it)
    return state, f, residual, it + more, converged, converged and residual <= tight


def _result(beta, b, f_mu, residual, n_iter, elapsed, objective, engine, bounds=None,
            **fields):
    """The Result and its certificate; ``bounds`` = (F, lower bound on F*) in original
    units where the hinge's reduced program certified the solution
    (``working_set.py``): the certificate's primal and dual objectives and gap."""
    primal, dual = (None, None) if bounds is None else bounds
    certificate = Certificate(backend="fast", solver="FISTA", status="optimal",
                              objective_numpy=objective, objective_solver=f_mu,
                              primal_objective=primal, dual_objective=dual,
                              gap=None if bounds is None else primal - dual,
                              residual=residual, engine=engine)
    return Result(coef=beta, intercept=b, objective=objective, status="optimal",
                  backend="fast", solver="FISTA", n_iter=n_iter, solve_time=elapsed,
                  certificate=certificate, engine=engine, **fields)


class _Chained:
    """Two exact steps with the interface of ``kinks.pinned_newton``: the ``first``, and
    from its ``after``-th failure on (a solve it has not settled: slow) the ``second``
    where the first does not certify. ``bounds``: the second's (``working_set.py``)."""

    def __init__(self, first, second, after=2):
        self.first, self.second, self.after, self.failures = first, second, after, 0

    @property
    def bounds(self):
        return self.second.bounds

    @property
    def work(self):
        return self.second.work

    @work.setter
    def work(self, value):  # (the second's budget: ``working_set.ReducedStep``)
        self.second.work = value

    @property
    def final(self):
        return self.second.final

    @final.setter
    def final(self, value):  # (the solve's last try: ``working_set.ReducedStep``)
        self.second.final = value

    def __call__(self, state, mu, tol, gap_tol):
        out = self.first(state, mu, tol, gap_tol)
        if out[4]:
            return out
        self.failures += 1
        if self.failures < self.after and not self.final:
            return out
        more = self.second(state, mu, tol, gap_tol)
        if more[3] is None:  # the second declined: the first's answer
            return out
        return (*more[:3], (out[3] or 0) + more[3], more[4])


class _NewtonStage:
    """``newton.newton`` on one problem: called with (state, mu, L, tol, max_passes)."""

    def __init__(self, model, manifold, prox, fit_intercept, eps, cache):
        self.args = (model, manifold, prox, fit_intercept)
        self.manifold, self.eps = manifold, eps
        # Newton's observed quadratic rates, shared along an eps path (``newton._Rates``)
        self.rates = cache.setdefault("fast_newton_rates", {})

    def __call__(self, state, mu, L, tol, max_passes, gap_tol=None):
        return newton(*self.args, state, mu, self.eps, L, tol, max_passes=max_passes,
                      rates=self.rates, gap_tol=gap_tol)

    def pass_cost(self, beta):
        return pass_cost(self.manifold, beta)

    def large(self, beta):
        """Whether the working set at beta is past ``newton.working_set_cap`` (its
        passes then form Gram matrices larger than MAX_WORKING_SET columns)."""
        W = self.manifold.working(np.asarray(beta, dtype=np.float64), {})[0]
        return W is not None and W.shape[0] > working_set_cap(self.args[0])


# A smoothed solve below the Newton size rule that FISTA has not finished after this much
# work (in FISTA iterations) hands its stages to Newton (``late_newton``): a Poisson solve
# on raw columns (scales 1e-2 to 1e3) ran out of its 20000 iterations
LATE_NEWTON_WORK = 1000
# the problem cache's flag: the symmetric losses' reduced program certified the last
# solve at a saturated solution (``_saturated``), so the next warm start goes to it first
_PROGRAM_FIRST = "fast_program_first"
# A solution is saturated where its samples at their kinks number at least this
# fraction of its unknowns (nonzero coefficients and the intercept): nearly a vertex
# of the loss's linear pieces, as in least absolute deviations, where the pinned step
# (at most as many constrained samples as unknowns, changed one at a time) fails and
# the reduced program certifies. Measured on eps paths of 20 radii: nearly-LAD Huber
# (diabetes, y x 1e4) had 6-11 kinks for 6-11 unknowns at every radius and took longer
# than the cold solves, each radius waiting for the pinned step's two failures (0.74 s;
# with the program first 0.20 s); high signal-to-noise least squares (make_regression,
# 1000 x 20, noise 5) is saturated only on a middle stretch (10-11 kinks for 11-12
# unknowns), after which the pinned step certifies each radius in 4-10 iterations (2-8
# kinks for 12-21 unknowns): with the program first to the end, whatever the solution,
# the path took 0.94 s, with this rule 0.52-0.59 s
SATURATED = 0.75
# a sample is at its kink where |r| <= KINK_TOL (1 + max |y|): the program's
# interior-point solution leaves its kink samples at 1e-15 to 5e-7 of that scale, the
# others began at 1e-5 at n = 1000, d = 20. (At n = 2e4 a few of the others fall below
# it: the count errs towards saturated, the program first, which certifies either way.
# A gap test, the smallest |r| up to the largest jump, misread kink samples spread over
# decades as two groups: 1.48 -> 1.67 s on a Huber path at n = 5000, d = 50.)
KINK_TOL = 1e-6


def _kink_share(prob, coef, eta):
    """The samples at their kinks per unknown of the solution (coef, X coef + b =
    ``eta``) of a symmetric loss: samples of weight > 0 with residual zero (to
    ``KINK_TOL``) against its nonzero coefficients and intercept."""
    y = prob.y
    at_kink = (np.abs(y - eta) <= KINK_TOL * (1.0 + np.max(np.abs(y)))) \
        & (prob.sample_weight > 0.0)
    unknowns = np.count_nonzero(coef) + int(prob.fit_intercept)
    return int(np.count_nonzero(at_kink)) / max(unknowns, 1)


def _saturated(share):
    """Whether a solution with ``share`` samples at kinks per unknown (``_kink_share``)
    is saturated (``SATURATED``)."""
    return share >= SATURATED


# the problem cache's entry: ``_kink_share`` of the last solve's solution, and the
# share below which a warm start of the gaussian loss goes to the pinned step first,
# from the predicted point (``_minimise``'s ``start_step``). There the line search
# (``kinks._line_minimum``) crosses the kinks a step from a predicted point meets, and
# the try certifies in 3-5 passes where FISTA's first stage and the early try took
# 10-15 iterations and two passes (50-radius paths, d = 20, benchmarks/bench_path.py:
# n = 2e4 0.54 -> 0.36 s, n = 2000 0.20 -> 0.15 s, diabetes 0.17 -> 0.13 s, the
# closed-form pass included; docs/performance.md, *Gaussian paths*). Where
# many samples are pinned (a solution of 1500 x 200 with ~90 at kinks for 139
# unknowns, 0.65) the first try from the warm start failed and cost the solve 1.5x;
# there FISTA goes first, as before. (Set by the solves where the reduced program
# applies, every gaussian one; none set: no pinned step first.)
KINK_SHARE = "fast_kink_share"
PINNED_FIRST_SHARE = 0.5


# the problem cache's flag: a warm start of a symmetric loss below the Newton size rule
# (FISTA and the early pinned step) took ``WARM_NEWTON_AFTER`` iterations or more, so
# the path's next warm starts take one Newton stage and the pinned step at its end
# (4-6 passes a radius, each about 4-5 FISTA iterations' cost at d = 20: 20-25 in all).
# Measured (benchmarks/bench_path.py, 50 radii, fast path): where FISTA's warm radii
# take 10-22 iterations (n = 2000 and 2e4, d = 20; n = 5000, d = 50, rho = 0.6) Newton
# on every warm radius made the paths slower (n = 2000, d = 20: 0.12 -> 0.14 s; Huber at
# n = 2e4, d = 20: 0.36 -> 0.48 s); where they took 30-52 (AR(1) features with rho =
# 0.9 at n = 2000, d = 50; the diabetes data's small radii) it made them faster
# (0.48 -> 0.17-0.19 s; 0.19-0.22 -> 0.10-0.11 s). With this flag the paths of the
# first kind keep FISTA's times and those of the second get Newton's
_WARM_NEWTON = "fast_warm_newton"
# the cache's key of F at the cold start in the scaled problem (``_null_objective``;
# the penalised twin's, unscaled, under this key + "_clean")
_NULL_OBJECTIVE = "fast_null_objective"
WARM_NEWTON_AFTER = 30
# A cold solve uses the Newton step from this many samples and entries of X on. Below,
# a pass over X costs less than the Newton pass's fixed work per block of rows (a Newton
# pass took ~10 X^T (X v) passes at n = 2e4, d = 20), and the smoothed kinks of few
# samples make its quadratic model poor from a cold start (it stalls at the finer
# smoothing stages for n in the hundreds); the kinks average out as n grows. A warm
# start (an eps path's predicted point, a solution for other parameters) uses it at
# every size: it starts inside Newton's region of fast convergence, where one or two
# passes replace FISTA's 5-15 iterations per radius (measured on 50-radius paths with n
# from 300 to 2e4, d = 10 and 20: binomial, gaussian and Poisson paths 1.0-2x faster,
# never more than 10% slower; benchmarks/bench_path.py, docs/performance.md).
NEWTON_MIN_SAMPLES = 5000
NEWTON_MIN_ENTRIES = 2_000_000
# A Poisson box has no exact step (the pinned step takes one shift), so below the size
# rule its continuation ran FISTA to the finest stages: it takes Newton's stages from any
# size instead. bench_fast.py's data at alpha = 0.5, d = 50 (20 at n = 1000), Box and
# masked box, four draws each, in all: n = 1000 269 -> 82 ms, n = 3000 1248 -> 428 ms,
# n = 1e4 1239 -> 668 ms (the logistic loss's the same either way: not changed)
POISSON_BOX_NEWTON = True
# From this many columns on a cold start of the symmetric losses tries the pinned step
# at its first stage's end above the size rule too (``first_order_early`` in
# ``solve_fast``). Measured (bench_fast.py's data, 0.2 eps_max), with the try against
# without: n = 4e4, d = 100, gaussian and Huber on nine sets 3.67 -> 2.48 s in all, none
# slower beyond the noise (Huber ``L1`` 0.43 -> 0.17 s); at n = 1e5, d = 50, where
# Newton's stages finish in 13-18 iterations, it cost more than it saved (gaussian
# ``Group`` 29 -> 62 X^T (X v) passes, ``L1`` 35 -> 58, ``Masked`` 37 -> 60)
EARLY_PINNED_MIN_FEATURES = 100


def _with_blas_threads(solve):
    """``solve(prob, ...)`` within ``engine.blas_threads(prob.engine)``: one BLAS thread
    where X is small enough that more only wait for each other (a busy machine)."""

    @wraps(solve)
    def solve_within(prob, *args, **kwargs):
        with blas_threads(prob.engine):
            return solve(prob, *args, **kwargs)

    return solve_within


# the problem cache's key of the null point's (b, F) (``_null_point``)
_NULL_POINT = "fast_null_point"


def _null_optimal(prob, compute=True):
    """Whether beta = 0 minimises ``prob``: eps >= eps_max (``path.eps_max``, kept in the
    problem's cache, which an eps path's radii share; its first radius is eps_max
    itself). Computed where not cached and ``compute``: for a smooth family one X^T pass
    at the intercept-only fit, then the set's norm (an asymmetric set: a small program
    in d variables); the hinge's only where cached (its eps_max is a program over the
    heavier class's samples). False with a penalty (for a non-convex one eps_max is
    where beta = 0 is a local minimiser) or constraints."""
    from ..path import eps_max, known_eps_max  # (the path module imports the solvers)

    if prob.penalty is not None or prob.constraints is not None:
        return False
    top = known_eps_max(prob)
    if top is None and compute and not isinstance(prob.family, Hinge):
        top = eps_max(prob)
    return top is not None and prob.eps >= top


def _null_point(prob):
    """(coef, b, eta, F) at beta = 0 and the intercept-only fit (``intercept_only``;
    the hinge's sign(W+ - W-), a minimiser of its piecewise-linear intercept problem):
    no read of X (eta = b). (b, F) are kept in the problem's cache, which a path's radii
    share: at beta = 0 the shift is 0 and F depends on neither eps nor alpha (no
    penalty here). (Each costs O(n); Huber's b a root search, 0.13 ms at n = 2000.)"""
    kept = prob._cache.get(_NULL_POINT)
    if kept is None:
        b = prob.family.intercept_only(prob.y, prob.sample_weight) \
            if prob.fit_intercept else 0.0
        eta = np.full(prob.n_samples, b)
        kept = prob._cache[_NULL_POINT] = (
            b, robust_objective(prob, np.zeros(prob.n_features), b, eta=eta))
    b, value = kept
    return np.zeros(prob.n_features), b, np.full(prob.n_samples, b), value


def _null_solution(prob, objective):
    """``_null_point`` where it minimises ``prob`` (``_null_optimal``) and the solve's
    answer, of objective ``objective``, is no better; else None. At eps = eps_max (a
    path's first radius) the conditions hold with equality, and FISTA stopped at
    coefficients of ~1e-7 (with weights) or an intercept 1e-6 off; the null solution is
    exact. eps_max is computed (one X^T pass) only where F there is no lower than
    FISTA's: at radii below eps_max FISTA's F is lower and nothing is read."""
    if not prob.on_host or not np.isfinite(objective) or prob.penalty is not None \
            or prob.constraints is not None:
        return None
    null = _null_point(prob)
    # (F at FISTA's answer rounds below the optimum's by ~1e-16 relative)
    if not null[3] <= objective + 1e-12 * abs(objective) or not _null_optimal(prob):
        return None
    return null


# Below this many columns a gaussian solve forms the Gram matrix of all columns before
# FISTA's first iteration whatever its set (``_gram_first``)
GRAM_FIRST_MAX_FEATURES = 512


def _gram_first(model, structure, penalised=False):
    """Whether the gaussian loss forms its Gram matrix of all columns before FISTA's first
    iteration (``model.Model.gram_first``), so that FISTA's gradients take X^T g from it
    (``model.Model.gradient``, where ``gram_gradient_pays``) and read X once an
    iteration, not twice: below GRAM_FIRST_MAX_FEATURES columns, and for a set whose
    working set is every coordinate (``L2``, an ellipsoid: its pinned pass forms the
    matrix anyway) within ``working_set_cap``. The penalised twin (``penalised``: FISTA
    alone, no pass forms it) below GRAM_RENT_MIN_FEATURES columns only.

    The Gram matrix costs about 2 X^T (X v) passes at n = 1e5, d = 50, 7-10 at d = 200-400
    and 20-28 at d = 1000 (BLAS-3 speed), an iteration's second read half a pass; below
    200 columns a Newton or pinned pass forms it anyway (``newton.gram_columns``), above
    they form the working set's. Measured at n = 1e5 (passes, sets with sparse
    solutions; docs/performance.md, session 41): d = 300 and 400 ``Linf`` 25-26 -> 23-24,
    ``L1`` 43-64 -> 33-51, ``Group`` 34-40 -> 30-34; d = 600 ``Linf`` 29-31 -> 29-34,
    ``L1`` 39-40 -> 30-32; d = 1000 ``Linf`` 23-25 -> 36, ``L1`` 71-77 -> 148-156.
    """
    if structure is None or not model.gram_gradient_pays():
        return False
    d = model.engine.shape[1]
    if penalised:
        return d < GRAM_RENT_MIN_FEATURES
    return d < GRAM_FIRST_MAX_FEATURES or (isinstance(structure, EveryCoordinate)
                                           and d <= working_set_cap(model))


@_with_blas_threads
def solve_fast(prob, tol=1e-8, max_iter=20_000, warm_start=None):
    """Solve ``prob`` with the first-order path; return a Result with a residual certificate.

    Parameters
    ----------
    prob : AdversarialProblem
    tol : float
        Accuracy target relative to the objective scale 1 + |F(start)|: the iterations
        stop when the gradient-mapping norm is below 100 tol and (kinked families) the
        exact objective decreased by less than 10 tol relative to |F| (with a floor,
        ``STOP_FLOOR``) over the last continuation stage.
    max_iter : int
        Total iteration budget over all continuation stages.
    warm_start : Result or (coef, intercept) or None
        Starting point. A Result with this problem's eps and alpha is tried as a
        candidate solution: the kinked families' exact step certifies it, the others'
        first step or Newton pass confirms it (at most a few iterations when it is
        one).

    Raises
    ------
    NotImplementedError
        For a problem the fast path does not cover (the message names the cvxpy backend).
    SolverError
        When the iteration budget runs out before the tolerance is met.
    """
    shift = shift_set(prob)
    check_poisson_zeros(prob, "FISTA")
    if prob.alpha == 1.0 and prob.eps != 0.0:
        # alpha = 1: the worst-case term has weight 1 - alpha = 0, so F does not depend
        # on eps and the problem is the one at eps = 0 (the clean fit). Solved as given,
        # the constraint eps sigma_S(beta) <= t stays with t costing nothing: the
        # projection pulls beta towards 0 at every step while the gradient never moves t
        # up, and at eps = 1e5 FISTA's residual test passed at beta ~ 0 (gaussian,
        # Huber and Poisson 0.2-0.6% above the clean fit's objective)
        same = _same_parameters(warm_start, prob.eps, prob.alpha, None)
        res = solve_fast(prob.with_params(eps=0.0), tol, max_iter,
                         dataclasses.replace(warm_start, eps=0.0) if same else warm_start)
        return dataclasses.replace(res, eps=prob.eps)
    if prob.eps == 0.0 and isinstance(shift, BoxShift):
        # eps = 0: the clean fit, whatever the set (both shifts are 0), solved with a
        # symmetric set, whose structure at eps = 0 (``Free``) gives Newton and the
        # pinned step; a box's pair of shifts has no manifold, and FISTA alone stopped a
        # least-squares fit on columns of scales 2 and 0.1 (no intercept) 1.6e-6 above
        # the optimum
        return solve_fast(prob._with_perturbation(WeightedLinf(np.ones(prob.n_features))),
                          tol, max_iter, warm_start)
    centred = centred_box(prob)
    if centred is not None:  # a box at alpha = 0: the weighted l-inf problem
        return _solve_centred_box(prob, *centred, tol, max_iter, warm_start)
    start = time.perf_counter()
    if prob.on_host and _null_optimal(prob, compute=False):
        # eps at or beyond a known eps_max (an eps path's first radius): the null solution
        # without an iteration (hinge L2 paths of 20 radii, n = 2000, d = 20: the first
        # radius took 0.41 s of 0.52, FISTA and the reduced programs at beta = 0)
        coef, b, _, objective = _null_point(prob)
        if np.isfinite(b) and np.isfinite(objective):
            return _result(coef, b, objective, 0.0, 0, time.perf_counter() - start,
                           objective, prob.engine.name, eps=prob.eps, alpha=prob.alpha)
    sc = fast_scaling(prob)  # solve for (beta'', b'') of the well-scaled equivalent problem
    model = Model(prob, sc)
    eps = prob.eps * sc.eps
    beta, b = _start(prob, sc, warm_start)

    # the step of the indicator of K: the projection onto K (FISTA's in the t metric)
    prox = EpigraphProx(shift, eps, t_metric(eps, prob.alpha))

    # a Result of this problem's parameters: probed as a candidate solution
    candidate = _same_parameters(warm_start, prob.eps, prob.alpha, None)
    large = prob.n_samples >= NEWTON_MIN_SAMPLES \
        and prob.n_samples * prob.n_features >= NEWTON_MIN_ENTRIES
    # the pinned step predicts its constraints (the symmetric losses): below the size
    # rule it is tried at the end of the first converged stage; from it, on a cold
    # start with EARLY_PINNED_MIN_FEATURES columns or more, too (``first_order_early``),
    # where it was tried once the work reached PINNED_MIN_WORK, which a solve of ~43
    # FISTA iterations never did. With the Gram matrix of the working set alone
    # (``newton.gram_columns``): n = 1e5, d = 1000, gaussian ``Linf`` 52-58 -> 28-47
    # X^T (X v) passes over three draws, ``L2`` 106-139 -> 82-87, ``L1`` 300 -> 84; 24
    # gaussian and Huber solves at n = 5000, d = 400 and n = 2e4, d = 200 (``Linf``,
    # ``L1``) 13.3 -> 6.8 s in all, the objectives exact (1e-9 lower).
    early_exact = kinks.predicts(prob.family) and not large
    first_order_early = kinks.predicts(prob.family) and large and warm_start is None \
        and prob.n_features >= EARLY_PINNED_MIN_FEATURES
    # Poisson's cold solves by Newton (from the size rule on): the pinned step is tried
    # at the end of every stage, from the stage's solution, where Newton has converged
    # it (``every_stage_end``). Newton's stages take 10-16 passes each at n = 1e5, and
    # from the first stage's solution (mu = 1e-2 of the objective scale) the try, the
    # band's samples nearest their kinks constrained, certified in 6-10 passes where
    # two or three more stages followed. bench_fast.py's Poisson at n = 1e5, d = 50,
    # seven sets: 346 -> 248 iterations in all (Linf and the box 56 -> 24, L2 50 -> 28,
    # Group 65 -> 42; WeightedLinf 41 -> 51, a try that failed after 9 passes); on the
    # generator's next draw 309 -> 277 (Linf 47 -> 60: a try stuck at its first
    # residual for 12 passes); 56 problems at n = 2e4, d = 100 (AR(1) columns, rho 0
    # and 0.6, seven sets, 0.05 and 0.2 eps_max) 10636 -> 6496. A try that fails there
    # is not tried again until the solve has done as much work again as it cost, and
    # moves the regular tries (PINNED_MIN_WORK's doubling) by that cost: counted as
    # work, its passes had made the next regular try due at once (a second failure),
    # and doubling after it, four of the 56 took 1.2-1.6x the iterations. Below the
    # size rule (FISTA's stages) and on warm starts (an eps path's Newton stages of
    # 1-7 passes) the rule is PINNED_MIN_WORK's: at each stage's end there, Poisson's
    # try failed more often than it saved (a masked set at n = 1e4: 52 -> 222
    # iterations; 50-radius paths at n = 2e4, d = 20 no faster)
    stage_ends = isinstance(prob.family, Poisson) and large and warm_start is None
    # below the size rule a warm start takes Newton, a candidate solution the cheaper
    # probe (one FISTA step: 1-2 iterations in all, where Newton's check costs 3-4), and
    # the symmetric losses FISTA with the early pinned step, as a cold start: Newton's
    # smoothed stages (two at least, which the continuation's stopping test compares)
    # took 4-40 passes a radius where FISTA's first stage and the pinned step took
    # 10-15 iterations and two passes (eps paths, n = 2000 and 2e4, d = 20). Along a
    # path where such a warm start's FISTA was slow (``_WARM_NEWTON``), one Newton stage
    # and the pinned step at its end (``stage_end_due`` 0) instead. (Along a path whose
    # last solve the symmetric losses' reduced program certified at a saturated
    # solution, a warm start goes to it first, from the predicted point:
    # ``program_first``, ``_saturated``.) From the size rule on, where a warm start
    # takes Newton's stages, a predicted point is offered to the pinned step first
    # too (``pinned_first``): 50-radius gaussian path at n = 1e5, d = 50, 326 -> 227
    # iterations, 712 -> 640 reads of X (``_WARM_NEWTON`` is not used there).
    pert = _formulated_set(prob)
    program_first = warm_start is not None and linear_pieces.covers(prob.family, pert) \
        and prob._cache.get(_PROGRAM_FIRST, False)
    symmetric_warm = kinks.predicts(prob.family) and warm_start is not None \
        and not candidate and not program_first
    warm_newton = symmetric_warm and not large and prob._cache.get(_WARM_NEWTON, False)
    pinned_first = symmetric_warm and not warm_newton and kinks.steps_to_kinks(prob.family) \
        and prob._cache.get(KINK_SHARE, np.inf) < PINNED_FIRST_SHARE
    near = warm_start is not None and not candidate and (not early_exact or warm_newton)
    # None: FISTA and continuation only; at eps = 0 the shift vanishes for every set
    # (a box keeps its two shifts: its structure stays ``manifold_of``'s)
    structure = Free() if eps == 0.0 and not isinstance(shift, BoxShift) else \
        manifold_of(shift, prob.n_features)
    if isinstance(structure, BoxOrthant) and isinstance(prob.family, _SymmetricFamily):
        # A box's orthants (two shifts, ``newton.BoxOrthant``) serve the logistic and
        # Poisson losses' Newton stages and checks. The symmetric losses finish a box by
        # the reduced program (``linear_pieces``), and their Newton passes on a box,
        # the blocked pass rather than their own (``model.Model``), cost more than the
        # FISTA iterations they save: n = 1e5, d = 50, alpha = 0.5, gaussian ``Box``
        # 121-123 -> 158-159 ms, Huber masked box 134-139 -> 249-279 ms (Poisson 1.5x
        # faster with them, the logistic loss the same)
        structure = None
    # (the pinned step and the gaussian Gram gradients take one shift)
    one_shift = None if isinstance(structure, BoxOrthant) else structure
    # (``POISSON_BOX_NEWTON``: a Poisson box's Newton stages from any size)
    poisson_box = POISSON_BOX_NEWTON and isinstance(structure, BoxOrthant) \
        and isinstance(prob.family, Poisson)
    manifold = structure if has_second_order(prob.family) and (large or near or poisson_box) \
        else None
    if _gram_first(model, one_shift):
        model.gram_first()
    newton_step = None if manifold is None else _NewtonStage(
        model, manifold, prox, prob.fit_intercept, eps, prob._cache)
    # the unsmoothed (logistic) loss: FISTA's slow solutions are finished by Newton and
    # tested by its decrement (``_check_flat``), at every size
    check_step = newton_step
    if check_step is None and structure is not None and not needs_smoothing(prob.family):
        check_step = _NewtonStage(model, structure, prox, prob.fit_intercept, eps,
                                  prob._cache)
    exact_step = None if one_shift is None or not kinks.covers(prob.family) else partial(
        kinks.pinned_newton, model, one_shift, prob.fit_intercept, eps)
    first_due = PINNED_MIN_WORK
    program = None  # the symmetric losses' reduced program, where it applies
    if linear_pieces.covers(prob.family, pert):
        # the reduced program certifies where the pinned step does not settle (nearly
        # least absolute deviations): after its first failure, or alone (no manifold).
        # A declined try widens the next where the program is the whole problem
        # (``linear_pieces.whole_problem``); where the far samples are a quadratic or
        # Huber's linear pieces the near set is small and a try declines for its cost
        # only: widened, it costs more at each try and declined to the last
        # (make_regression 2000 x 200: gaussian 404 -> 2000 rows, 4 s a radius; Huber's
        # last program 8403 rows, 8.6 s, against 6867 unwidened, the path 48 -> 45 s)
        program = working_set.ReducedStep(
            linear_pieces.symmetric_exact, model, shift, pert, prob.fit_intercept, eps,
            widen_declined=linear_pieces.whole_problem(model))
        exact_step = program if exact_step is None or program_first else \
            _Chained(exact_step, program)
    if working_set.covers(prob.family, pert):
        # hinge: the reduced program on the samples near their kinks (its cost does not
        # grow with n), tried early: within the first stage or at its end
        exact_step = working_set.ReducedStep(working_set.hinge_exact, model, shift, pert,
                                             prob.fit_intercept, eps)
        early_exact = True
        first_due = working_set.FIRST_TRY if warm_start is None else \
            working_set.warm_first_try(model)
    # (below the size rule: Newton only once FISTA has not advanced, LATE_NEWTON_WORK;
    # a Poisson box's Newton stages, once given up, come back so too: without an exact
    # step FISTA alone ran out of its iterations at a finer stage, n = 35, d = 45,
    # columns five decades apart, where the late hand-over had solved it)
    late_newton = _NewtonStage(model, structure, prox, prob.fit_intercept, eps,
                               prob._cache) if (newton_step is None or poisson_box) \
        and structure is not None and has_second_order(prob.family) \
        and needs_smoothing(prob.family) else None
    # F at the cold start, which bounds a warm start's objective scale
    null_value = None if warm_start is None else \
        _null_objective(model, prob, sc, _NULL_OBJECTIVE)
    beta, b, _, f_mu, residual, n_iter = _minimise(
        model, prox, None, prob.fit_intercept, beta, b,
        eps * shift.value(beta), needs_smoothing(prob.family), tol, max_iter,
        warm_start is not None, cache=prob._cache, explain=lambda: explain_failure(prob),
        newton_step=newton_step, candidate=candidate, exact_step=exact_step,
        early_exact=early_exact or stage_ends or first_order_early,
        every_stage_end=stage_ends,
        first_due=first_due, check_step=check_step,
        late_newton=late_newton, start_exact=program_first,
        start_step=partial(kinks.pinned_newton, model, one_shift, prob.fit_intercept, eps,
                           search=True) if pinned_first and one_shift is not None else None,
        first_mu=3e-3 if isinstance(prob.family, _SymmetricFamily) else 1e-2,
        stage_end_due=0.0 if warm_newton else PINNED_STAGE_END, null_value=null_value,
        probe_stops=eps >= NARROW_CONE, null_optimal=partial(_null_optimal, prob))
    if symmetric_warm and not warm_newton and not large:
        prob._cache[_WARM_NEWTON] = n_iter >= WARM_NEWTON_AFTER
    elapsed = time.perf_counter() - start
    coef, b = sc.to_original(beta, b)
    b = float(b) if prob.fit_intercept else 0.0
    finite = np.all(np.isfinite(coef)) and np.isfinite(b)
    # the certificate's objective in numpy from the returned point, in original units
    # (an evaluation independent of the scaled model's); its X coef serves the check too
    eta = prob.linear_predictor(coef, b) if finite else None
    objective = robust_objective(prob, coef, b, eta=eta) if finite else np.nan
    null = _null_solution(prob, objective)
    if null is not None:
        coef, b, eta, objective = null
    check_finite(coef, b, objective, "optimal", "fast", "FISTA")
    check_minimiser_exists(prob, coef, b, "fast", "FISTA", eta=eta)
    bounds = getattr(exact_step, "bounds", None)  # a reduced program's
    if program is not None:
        share = prob._cache[KINK_SHARE] = _kink_share(prob, coef, eta)
        prob._cache[_PROGRAM_FIRST] = program.bounds is not None and _saturated(share)
    return _result(coef, b, sc.objective(f_mu), residual, n_iter, elapsed, objective,
                   model.engine.name, bounds=None if bounds is None else
                   tuple(sc.objective(v) for v in bounds), eps=prob.eps, alpha=prob.alpha)


def _solve_centred_box(prob, equivalent, centre, tol, max_iter, warm_start):
    """``prob`` (a box, alpha = 0) by its symmetric ``equivalent`` (``box.centred_box``):
    the same coefficients and the intercept b = b' - eps m^T beta of the equivalent's
    b'. The objectives are equal, F(beta, b) = F_q(beta, b'), so the equivalent's numpy
    objective (its certificate's) is ``prob``'s without another pass over X (the
    identity is tested against both sets' own worst cases)."""
    def moved(coef):  # eps m^T beta: b' - b
        return prob.eps * float(centre @ np.asarray(coef, dtype=np.float64))

    start = warm_start
    if isinstance(warm_start, Result):  # (a Result stays one: a candidate solution)
        start = dataclasses.replace(warm_start,
                                    intercept=warm_start.intercept + moved(warm_start.coef))
    elif warm_start is not None:
        coef, b = warm_start
        start = (coef, b + moved(coef))
    res = solve_fast(equivalent, tol=tol, max_iter=max_iter, warm_start=start)
    b = res.intercept - moved(res.coef) if prob.fit_intercept else 0.0
    return dataclasses.replace(res, intercept=b)


def check_penalized_fast(prob, penalty):
    """Raise NotImplementedError (naming cvxpy) unless the fast path covers the twin."""
    _check_data_covered(prob)
    _check_prox(penalty, prob.n_features)


@_with_blas_threads
def solve_fast_penalized(prob, penalty, lam, objective, tol=1e-8, max_iter=20_000,
                         warm_start=None):
    """Penalised likelihood by accelerated proximal gradient.

    .. math:: \\min_{\\beta, b}\\; \\sum_i w_i l(y_i, \\eta_i) + \\lambda P(\\beta),

    the step beta+ = prox_{lam P / L}(beta - grad / L) (for a dual norm, Moreau: the
    identity minus the projection onto the (lam / L)-ball of its dual). ``prob`` supplies
    the data, family, weights and intercept; its eps and perturbation are not used (the
    clean loss is the smooth part: alpha = 1, hinge smoothed with continuation).
    ``objective(coef, intercept)`` is the numpy objective for the certificate.
    """
    check_penalized_fast(prob, penalty)
    start = time.perf_counter()
    sc = Scaling(prob, identity=True)  # lam P is not invariant under the scaling
    model = Model(prob, sc, alpha=1.0)
    beta, b = _start(prob, sc, warm_start)
    if _gram_first(model, Free(), penalised=True):
        model.gram_first()

    def prox(v_beta, v_t, L):
        return penalty.prox(v_beta, lam / L), 0.0

    def nonsmooth(v):
        return lam * penalty.value(v)

    beta, b, _, f_mu, residual, n_iter = _minimise(
        model, prox, nonsmooth, prob.fit_intercept, beta, b, 0.0,
        isinstance(prob.family, Hinge), tol, max_iter, warm_start is not None,
        cache=prob._cache, candidate=_same_parameters(warm_start, 0.0, 1.0, lam),
        null_value=None if warm_start is None else
        _null_objective(model, prob, sc, _NULL_OBJECTIVE + "_clean"))  # (unscaled)
    # (a slow solve ends with FISTA's tighter tolerance: no Newton for a penalty)
    b = b if prob.fit_intercept else 0.0
    if lam == 0.0:  # the clean fit: separable classes have no minimiser (as cvxpy's twin)
        check_minimiser_exists(prob, beta, float(b), "fast", "FISTA")
    elapsed = time.perf_counter() - start
    return _result(beta, b, f_mu, residual, n_iter, elapsed, objective(beta, b),
                   model.engine.name, eps=0.0, alpha=1.0, lam=lam)
