"""Checks shared by the backends so that a failed or meaningless solve is never reported
as optimal: finiteness of the returned point, and problems without a minimiser.

**No minimiser (separable classes).** For the binomial family the robust margin of
sample i at theta = (beta, b) is

.. math:: m_i(\\theta) = z_i \\eta_i - \\epsilon\\,\\sigma_S(-z_i \\beta),

(the clean margin z_i eta_i at eps = 0 or alpha = 1), concave and positively homogeneous
in theta when the shift is (a support function, a norm penalty). If m_i(theta) > 0 for
every sample with positive weight, then by superadditivity m_i(theta' + s theta) >=
m_i(theta') + s m_i(theta) > m_i(theta') for every theta' and s > 0: the objective
decreases strictly along theta from every point, so no minimiser exists (the classes are
separable with margin larger than eps in the dual norm). A returned point with all
margins positive is therefore a proof, not a heuristic, that the solve is meaningless.
Quasi-complete separation (margins >= 0 along a direction, some zero) leaves only some
margins positive, but huge; such a point triggers the linear program below, whose
positive optimum is the proof.
Hinge, gaussian and huber losses are bounded below and piecewise linear-quadratic in eta,
so their minimum is always attained; the robust poisson objective with eps > 0 and
alpha < 1 is coercive in beta and attains its minimum too.

When a solver fails, ``explain_failure`` solves a small conic feasibility problem for a
direction of recession (separation for binomial; for poisson at eps = 0, a direction that
leaves every positive count's predictor unchanged and lowers some zero count's) and says
whether one exists.
"""

from __future__ import annotations

import warnings

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from .exceptions import SolverError
from .families import Binomial, Poisson

#: A robust margin z_i eta_i - shift above this (logistic loss below e^-25 ~ 1e-11) is
#: the symptom of quasi-complete separation that triggers the linear-program check.
SATURATION = 25.0

SEPARATION_ADVICE = ("use eps > 0 larger than the separation margin, alpha < 1, a penalty, "
                     "or bound constraints on the coefficients")


def _homogeneous(prob):
    """True when the robust margins are positively homogeneous of degree 1 in theta and
    scaling theta keeps it feasible (so the margin argument above applies)."""
    if prob.constraints is not None and not prob.constraints.is_cone:
        return False
    if prob.eps == 0.0 or prob.alpha >= 1.0:
        return True
    return prob.shift_degree == 1.0


def robust_margins(prob, coef, intercept, eta=None):
    """Per-sample margins z_i eta_i minus the adversarial shift (clean ones if alpha = 1),
    as arrays of X's engine (numpy for numpy / scipy.sparse X). ``eta``: the linear
    predictor X coef + intercept when already computed."""
    xp, z, _ = prob.per_sample(prob.family.signed_label(prob.y))
    eta = prob.linear_predictor(coef, intercept) if eta is None else eta
    clean = z * eta
    if prob.alpha >= 1.0 or prob.eps == 0.0:
        return clean, clean
    up, down = (float(v) for v in prob.unit_shift(coef))
    # z = +1: the attacker lowers eta by eps*down; z = -1: raises it by eps*up.
    return clean - prob.eps * xp.where(z > 0, down, xp.full_like(z, up)), clean


def check_minimiser_exists(prob, coef, intercept, backend, solver, eta=None):
    """Raise SolverError when (coef, intercept) proves that no minimiser exists (``eta``:
    its linear predictor, when already computed)."""
    if not isinstance(prob.family, Binomial) or not _homogeneous(prob):
        return
    if not np.any(coef) and intercept == 0.0:
        return
    margins, clean = robust_margins(prob, coef, intercept, eta)
    if prob.on_host:
        live = prob.sample_weight > 0
        largest, worst = float(np.max(np.abs(clean[live]))), float(np.min(margins[live]))
    else:  # both extremes over the samples with positive weight in one reduction
        xp, live, _ = prob.per_sample(prob.sample_weight > 0)
        eng = prob.engine
        largest, worst = eng.fetch(xp.max(xp.where(live, xp.abs(clean), 0.0)),
                                   xp.min(xp.where(live, margins, np.inf)))
    # rounding in eta is at most a few ulps of the terms that make it up
    slack = 1e-9 * (1.0 + largest)
    if worst > slack:
        raise SolverError(
            f"{solver} ({backend}) returned a point at which every sample has a positive "
            f"robust margin (smallest {worst:.3g}): the classes are separable with a margin "
            f"larger than eps = {prob.eps:g}, so the objective keeps decreasing as the "
            f"coefficients grow and no minimiser exists; {SEPARATION_ADVICE}",
            status="unbounded", solver=solver)
    # Quasi-complete separation: a direction theta with m_i(theta) >= 0 for every sample
    # and > 0 for some has no minimiser either (the loss of each sample is nonincreasing
    # along theta, strictly for the positive ones), but the returned point then has only
    # some margins positive, and huge (the solver stops where their loss underflows its
    # tolerance). A margin beyond SATURATION is the symptom; the linear program decides.
    if float(np.max(margins[live])) > SATURATION and recession_direction(prob):
        raise SolverError(
            f"{solver} ({backend}) returned robust margins up to "
            f"{float(np.max(margins[live])):.3g}: the classes are quasi-separable (a "
            "direction exists along which no sample's robust margin decreases and some "
            "increase; checked by a linear program), so the objective keeps decreasing as "
            f"the coefficients grow and no minimiser exists; {SEPARATION_ADVICE}",
            status="unbounded", solver=solver)


def check_finite(coef, intercept, objective, status, backend, solver):
    """Raise SolverError for a non-finite point or objective (never reported as optimal)."""
    if not (np.all(np.isfinite(coef)) and np.isfinite(intercept)):
        raise SolverError(f"{solver} ({backend}) reported '{status}' but returned non-finite "
                          "coefficients; standardise X or try another backend/solver",
                          status=status, solver=solver)
    if not np.isfinite(objective):
        raise SolverError(f"{solver} ({backend}) reported '{status}' but the robust objective "
                          f"at the returned point is {objective} (overflow of the loss, e.g. "
                          "e^eta for poisson); standardise X or rescale y",
                          status=status, solver=solver)


def recession_direction(prob, max_size=2_000_000):
    """True / False: does a direction exist along which the objective decreases forever?

    Binomial: maximise sum_i w_i m_i(u, c) over the box |u|, |c| <= 1 subject to
    m_i >= 0 (m the robust margins, linear in (u, c) up to the concave shift). Poisson:
    maximise -sum_{y_i = 0} w_i eta_i(u, c) subject to eta_i(u, c) = 0 where y_i > 0
    and <= 0 where y_i = 0, and (eps > 0, alpha < 1) sigma(u) = sigma(-u) = 0 (u
    orthogonal to the set's span, ``check_poisson_zeros``). A positive optimum is such a
    direction. Returns None when the check does not apply or is too large to run.
    """
    fam = prob.family
    n, d = prob.X.shape
    if n * d > max_size or not prob.on_host:  # the program would need X in memory
        return None
    if prob.constraints is not None and not prob.constraints.is_cone:
        return None
    poisson_case = isinstance(fam, Poisson)
    if not (isinstance(fam, Binomial) and _homogeneous(prob)) and not poisson_case:
        return None
    s = prob.x_scale
    shifted = prob.eps > 0 and prob.alpha < 1.0
    # The program depends on eps only through a parameter (DPP): built and canonicalised
    # once for the data, set and penalty, and kept in the problem's cache, which its
    # copies along an eps path share (one program per radius cost ~22 ms of cvxpy's
    # canonicalisation at n = 569, d = 30, more than the solve itself)
    key = ("recession_program", poisson_case, shifted)
    cached = prob._cache.get(key)
    if cached is None or cached[0] is not prob.perturbation or cached[1] is not prob.penalty:
        cached = prob._cache[key] = (prob.perturbation, prob.penalty,
                                     *_recession_program(prob, s, poisson_case, shifted))
    lp, eps, u, c = cached[2:]
    if eps is not None:
        eps.value = prob.eps * s ** prob.shift_degree
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lp.solve(solver="CLARABEL")
    except cp.error.SolverError:
        return None
    if lp.status not in ("optimal", "optimal_inaccurate"):
        return None
    if not lp.value > 1e-6:
        return False
    # the solver's direction, checked in numpy at unit size (a direction of 1e-6 within
    # the solver's tolerance passed the value's test where none exists: a duplicated
    # pair carrying both labels, eps = 1e-6 eps_max, every margin ~1e-6 but the pair's
    # -1.5e-10, -1.5e-4 at unit size)
    coef = s * np.asarray(u.value, dtype=np.float64)
    b = float(c.value) if prob.fit_intercept else 0.0
    size = max(float(np.max(np.abs(u.value), initial=0.0)), abs(b))
    return size > 0.0 and _is_recession(prob, coef / size, b / size, poisson_case)


def _is_recession(prob, coef, intercept, poisson_case):
    """Whether the direction (coef, intercept) of unit size (box norm, X scaled) keeps
    every robust margin >= 0 and raises some (binomial), or every positive count's
    predictor at 0 and lowers some zero count's (Poisson), to rounding: slack 1e-7 of
    the predictors' size."""
    live = prob.sample_weight > 0
    w = prob.sample_weight
    if poisson_case:
        eta = prob.linear_predictor(coef, intercept)
        slack = 1e-7 * (1.0 + float(np.max(np.abs(eta[live]), initial=0.0)))
        pos, zero = live & (prob.y > 0), live & (prob.y == 0)
        # (eps > 0, alpha < 1: no shift either way along it, to the solver's rounding)
        still = prob.eps == 0.0 or prob.alpha >= 1.0 or max(
            float(v) for v in prob.unit_shift(coef)) <= 1e-7 * (1.0 + np.max(np.abs(coef)))
        return bool(still and np.all(np.abs(eta[pos]) <= slack)
                    and np.all(eta[zero] <= slack) and -(w[zero] @ eta[zero]) > 1e-6)
    margins, clean = robust_margins(prob, coef, intercept)
    slack = 1e-7 * (1.0 + float(np.max(np.abs(clean[live]), initial=0.0)))
    return bool(np.all(margins[live] >= -slack)
                and w[live] @ np.maximum(margins[live], 0.0) > 1e-6)


def _recession_program(prob, s, poisson_case, shifted):
    """(program, eps parameter or None, u, c) of ``recession_direction`` on X scaled by s
    (c is 0.0 without an intercept)."""
    fam = prob.family
    d = prob.n_features
    X = prob.X * s
    u = cp.Variable(d)
    c = cp.Variable() if prob.fit_intercept else 0.0
    eta = X @ u + c
    w = prob.sample_weight
    cons = [cp.abs(u) <= 1]
    if prob.fit_intercept:
        cons.append(cp.abs(c) <= 1)
    if prob.constraints is not None:
        cons += [u[np.flatnonzero(prob.constraints.lower == 0)] >= 0,
                 u[np.flatnonzero(prob.constraints.upper == 0)] <= 0]
    eps = None
    shift = prob.penalty.cvx if prob.penalty is not None else prob.perturbation.support_cvx
    if poisson_case:
        pos = prob.y > 0
        cons += [eta[np.flatnonzero(pos)] == 0, eta[np.flatnonzero(~pos)] <= 0]
        if shifted:  # (shifts >= 0: both zero)
            cons += [shift(u) <= 0] + ([] if prob.symmetric else [shift(-u) <= 0])
        objective = -(w[~pos] @ eta[np.flatnonzero(~pos)])
    else:
        z = fam.signed_label(prob.y)
        margin = cp.multiply(z, eta)
        if shifted:
            eps = cp.Parameter(nonneg=True)
            up = cp.Variable(nonneg=True)
            down = up if prob.symmetric else cp.Variable(nonneg=True)
            cons += [eps * shift(u) <= up, eps * shift(-u) <= down]
            margin = margin - (up * (z < 0).astype(float) + down * (z > 0).astype(float))
        cons.append(margin >= 0)
        objective = w @ margin
    return cp.Problem(cp.Maximize(objective), cons), eps, u, c


def check_poisson_zeros(prob, solver):
    """Poisson with zero counts: raise when no minimiser exists.

    e^eta - y eta is coercive in eta wherever y > 0, and a positive count's worst case
    grows without bound with either shift: along a direction with sigma(beta) > 0 the
    attacker's eps sigma(beta) raises e^(eta + shift), with sigma(-beta) > 0 the term
    y times the downward shift. So the poisson problems without a minimiser are these:
    a direction that keeps every positive count's predictor and lowers some zero
    count's, drives e^eta -> 0 forever, and (eps > 0, alpha < 1) moves neither shift,
    sigma(beta) = sigma(-beta) = 0: beta in ``Perturbation.immutable``, the directions
    a set that does not span R^d leaves alone (a masked feature, a zero scale or box
    side, a feature in no group, a rank-deficient ellipsoid). Where every such direction
    (and the intercept's) moves some positive count's predictor (``_moves_positive_counts``:
    one rank test, nothing for a set that spans R^d) none exists; else one small linear
    program decides it before solving (``recession_direction``: 0.5-0.9 s at n = 1e4,
    d = 50 for a masked set, where the rank test takes ~1 ms).
    """
    if not isinstance(prob.family, Poisson):
        return
    if not np.any(prob.y[prob.sample_weight > 0] == 0):
        return
    if prob.eps == 0.0 or prob.alpha >= 1.0:
        free, known = None, True  # (every direction)
    else:  # (with a penalty, or a set that cannot tell: the program decides)
        free = None if prob.penalty is not None else \
            prob.perturbation.immutable(prob.n_features)
        known = free is not None
    if known and _moves_positive_counts(prob, free):
        return  # (no direction keeps them: no program needed)
    if recession_direction(prob):
        unmoved = "" if prob.eps == 0.0 or prob.alpha >= 1.0 else \
            " and that the attacker cannot move (features the perturbation set leaves " \
            "immutable)"
        raise SolverError(
            "no minimiser exists: some zero counts can be fitted by e^eta -> 0 without "
            "changing the predictors of the positive counts (a linear program found such a "
            f"direction, e.g. a feature that is nonzero only where y = 0{unmoved}); use eps > 0 "
            "with alpha < 1 and a set that perturbs those features, a penalty, or drop "
            "that feature", status="unbounded", solver=solver)


def _moves_positive_counts(prob, free, max_size=2_000_000):
    """Whether every direction (beta, c) with beta in the span of ``free``'s columns
    (None: every beta; c the intercept's, with one) and not zero changes some positive
    count's predictor (weight > 0): [X_+ free, 1] of full column rank, its columns scaled
    to unit norm and its least singular value above 1e-9 of its largest (a
    rank-deficient matrix's is at rounding level; where the test is not sure, or the
    matrix has more than ``max_size`` entries, the linear program decides)."""
    rows = np.flatnonzero((prob.y > 0) & (prob.sample_weight > 0))
    k = prob.n_features if free is None else free.shape[1]
    if k == 0:  # (a set that spans R^d: the intercept's direction alone, if any)
        return rows.size > 0 or not prob.fit_intercept
    if not prob.on_host or rows.size < k + int(prob.fit_intercept) \
            or rows.size * (k + 1) > max_size:
        return False
    X = prob.X[rows]
    if free is None:
        M = X.toarray() if sp.issparse(X) else X
    else:
        M = X @ free
    M = np.asarray(M, dtype=np.float64)
    if prob.fit_intercept:
        M = np.column_stack([M, np.ones(rows.size)])
    norms = np.linalg.norm(M, axis=0)
    if not np.all(norms > 0.0):
        return False
    sv = np.linalg.svd(M / norms, compute_uv=False)
    return bool(sv[-1] > 1e-9 * sv[0])


def explain_failure(prob):
    """A sentence on why no minimiser exists, or '' when the data shows no such cause.

    Non-empty only where the program found a direction of recession: a proof, so the
    backends raise their failure with status "unbounded" then."""
    try:
        found = recession_direction(prob)
    except Exception:  # the explanation must never mask the original failure
        return ""
    if not found:
        return ""
    if isinstance(prob.family, Binomial):
        return (" The classes are separable with a margin larger than eps (checked by a "
                "linear program), so no minimiser exists; " + SEPARATION_ADVICE + ".")
    return (" Some zero counts can be fitted by e^eta -> 0 without changing the positive "
            "counts' predictors (checked by a linear program), so no minimiser exists at "
            "eps = 0; use eps > 0 with alpha < 1, a penalty, or drop the feature that "
            "separates the zeros.")
