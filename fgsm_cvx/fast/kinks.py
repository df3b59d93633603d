"""The exact solution at the kinks: Newton with the pinned samples as constraints.

Continuation on the smoothing mu reaches the exact solution only linearly in mu: the
samples pinned at their kink at the solution sit O(mu) away from it at every stage, and
each finer stage is a new solve. Each sample's worst-case term is smooth but for a
kink B |k_i| in one scalar, its kink coordinate k_i(eta_i, t):

* symmetric losses (gaussian, Huber): k = r = y - eta, the term rho(|r| + t), whose kink
  has size (per unit weight) (1 - alpha) rho'(t);
* Poisson: k = x = e^eta sinh(t)/t - y, the term e^eta cosh t - y eta + t |x|
  (``objective.adversarial_terms``), kink size (1 - alpha) t.

There are generically at most d + 1 pinned samples, and with their set Z known the exact
problem is smooth on a manifold,

.. math::

    \\min\\; \\Phi(\\beta, b_c) = \\sum_i w_i [\\alpha\\, l(y_i, \\eta_i)
        + (1 - \\alpha) H_i^{s_i}(\\eta_i, t)], \\quad t = \\epsilon \\sigma(\\beta),
    \\quad \\text{subject to } k_i = 0,\\ i \\in Z,

H^s the term's smooth piece on the side s = sign(k) (|k| -> s k), s = 0 on Z (the term's
smooth part there), sigma on the orthant or manifold of ``newton.py``. Its KKT conditions

.. math::

    \\nabla \\Phi + J^\\top \\nu = 0, \\qquad |\\nu_i| \\le B_i, \\qquad
    J_i = \\partial k_i / \\partial (\\beta_W, b_c)

are the exact problem's optimality conditions: the kink term B_i |k_i| has
subdifferential B_i [-1, 1] in k_i at k_i = 0. So a point meeting them within the
tolerance is certified optimal for the unsmoothed (convex) objective, whatever the set Z
was; off by k_Z != 0 it is within 2 sum_Z B_i |k_i| of the optimum in objective.

Each Newton pass (``newton._Point`` with the samples' reference signs s) gives H and the
gradient on W, the rows of Z come from the engine, and the step solves the KKT system
[[H + sum nu_i grad^2 k_i, J^T], [J, 0]] [dz; nu] = [-grad; -k_Z] (for the gaussian loss
with a polyhedral set, a quadratic program on the manifold: one step is exact). The
active set moves as a primal-dual method's: a free sample that a step takes across its
kink moves to the piece of its new side (the pass updated on the host: its quantities
are sums over the samples), and is pinned the second time, keeping the piece it has
(whose derivative in k at 0 is B_i s_i: the exact problem's multiplier is then
nu_i + B_i s_i); a constrained sample whose multiplier exceeds its bound is released on
the side it points to (s_i = sign(nu_i)), one at a time. The active set starts from
the band samples that the unconstrained step takes across their kinks, and any band
sample a later step would take across joins it (a primal test, next to the multipliers'
dual one). Where the KKT system is singular and the objective linear along its null
direction (Huber's linear pieces), the step follows that direction to its first
breakpoint, as the simplex method does (``_ray_step``). Anything else (no manifold, too
many pinned samples, no certificate within ``max_passes``) returns not converged, and
the continuation goes on.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from ..families import Poisson, _SymmetricFamily
from .newton import _block, _Point, basis, congruence, lift, newton_system, pinned_cap, times_basis
from .objective import _sinhc_derivatives, second_order_terms

# The most constrained samples, in working-set caps (``newton.working_set_cap``): the
# KKT system has |W| + 1 + |Z| rows (generically |Z| <= |W| + 1 at a solution); beyond,
# the continuation is left to finish
PINNED_PER_WORKING_SET = 2
# A try's KKT solves (one per change of the active set, each (2 / 3) m^3 flops by LU for
# m rows) may cost as many as this many solves of the largest system a working-set cap
# allows, (16 / 3) cap^3 flops: with the gaussian loss's larger caps a one-at-a-time
# release loop on |W| = 1000 (gaussian, L2, n = 1e4) took 88 solves of 27 ms a try
KKT_SOLVES = 10
# Above this many constrained samples a symmetric loss's try releases every sample whose
# multiplier exceeds its bound at once (a primal-dual active-set step), below one at a
# time: a gaussian try with 139 samples pinned for 138 coefficients (n = 1200, d = 250)
# spent its KKT budget releasing them one at a time, and certified in one try releasing
# them together; on the tests' problems (at most ~40 constrained samples) releasing
# together took two to four tries where one had certified, and slowed Poisson's (whose
# kink coordinate is not linear in the step)
BATCH_RELEASE = 64
# Passes of a try (each a pass over X and its KKT solves). Poisson's active set settles
# over more of them, its kink coordinate not being linear in the step (each pass a step
# of sequential quadratic programming): a cold L2 solve at n = 1e4, d = 50
# (bench_fast.py) failed its first two tries at 5 passes each and was certified by a
# third after 145 more FISTA iterations (272 iterations in all); its first try, allowed
# more, certified at pass 9 (59 iterations, 0.36 -> 0.13 s). A failing try's passes are
# lost, though (and postpone the next try): Poisson's go past PINNED_PASSES only while
# the KKT residual stays within SETTLING times the first pass's (failing tries' rose
# 7e-2 -> 5.7 -> 96 -> 2200 on an ill-conditioned problem, n = 500, d = 50, rho = 0.9,
# where 12 passes unconditionally cost 1.4-1.8x the iterations), up to POISSON_PASSES.
# bench_fast.py's Poisson at n = 1e4: L2, L1, Group, the masked box 2.2-3.2x faster,
# the others unchanged; 24 paths 12.7 -> 12.3 s (docs/performance.md). The symmetric
# losses keep 5: on a settled active set one KKT step is exact there.
PINNED_PASSES = 5
POISSON_PASSES = 12
SETTLING = 10.0


def covers(family):
    """True for the families whose kinks the pinned step treats exactly: the symmetric
    losses (gaussian, Huber) and Poisson."""
    return isinstance(family, (_SymmetricFamily, Poisson))


def predicts(family):
    """True for the families whose try predicts its first constraints
    (``_predict_pinned``): the symmetric losses, whose kink coordinate r = y - eta is
    linear in the step (the crossing test is then exact)."""
    return isinstance(family, _SymmetricFamily)


def steps_to_kinks(family):
    """True for the families whose KKT steps stop at the kinks they cross (the pivots
    of ``_first_kink``, the line search of ``_line_minimum``): the gaussian loss
    (symmetric, no threshold)."""
    return predicts(family) and getattr(family, "threshold", None) is None


def _kink(model, t):
    """The size of the kink per unit weight at the shift u = t + offset (the LLA
    majoriser's): (1 - alpha) rho'(u) (rho'(u) = -l'(u, 0)), Poisson (1 - alpha) u."""
    u = t + model.offset
    if isinstance(model.family, Poisson):
        return (1.0 - model.alpha) * u
    return (1.0 - model.alpha) * float(-model.family.grad(np.array([u]), 0.0, np)[0])


def _coordinate(model, y, eta, t, derivatives=True):
    """(k, k_e, k_t, k_ee, k_et, k_tt): the kink coordinates of samples (labels y,
    predictors eta) and their derivatives in (eta, t), or k alone. Symmetric: k = y - eta
    (k_e = -1, the rest 0); Poisson: k = e^eta s(u) - y with s(u) = sinh(u)/u,
    k_e = k_ee = e^eta s, k_t = k_et = e^eta s', k_tt = e^eta s''."""
    if isinstance(model.family, Poisson):
        e = np.exp(eta)
        sc, s1, s2 = _sinhc_derivatives(t + model.offset)[:3]
        if not derivatives:
            return e * sc - y
        return e * sc - y, e * sc, e * s1, e * sc, e * s1, e * s2
    if not derivatives:
        return y - eta
    zero = np.zeros_like(eta)
    return y - eta, -np.ones_like(eta), zero, zero, zero, zero


def _missed(model, k, ref, idx, t):
    """sum_i w_i [h_i - H_i^{s_i}] over the samples ``idx``: the objective the pieces
    miss where a sample is on the other side of its kink than its piece (released, not
    yet stepped); the pieces are below the term (|k| >= s k), so this bounds the
    certificate's error. Symmetric: (1 - alpha) [rho(|r| + u) - rho(s r + u)];
    Poisson: (1 - alpha) u (|x| - s x)."""
    if not idx.size:
        return 0.0
    u, k, s = t + model.offset, k[idx], ref[idx]
    if isinstance(model.family, Poisson):
        diff = u * (np.abs(k) - s * k)
    else:
        rho = model.family.loss
        diff = rho(np.abs(k) + u, 0.0, np) - rho(s * k + u, 0.0, np)
    return (1.0 - model.alpha) * float(model.w_host[idx] @ diff)


def _release(model, point, rows, idx, eta, t, old, new):
    """Update the pass ``point`` for the samples ``idx`` whose reference signs change from
    ``old`` to ``new``: exactly, since its quantities are sums over the samples (X_c^T G
    and the Gram matrix through their centred ``rows``, the sums directly)."""
    y, w = model.y_host[idx], model.w_host[idx]
    terms = [second_order_terms(model.family, y, eta, t + model.offset, 0.0, model.alpha,
                                np, ref=s) for s in (old, new)]
    _, d_e, d_t, d_ee, d_et, d_tt = (w * (b - a) for a, b in zip(*terms, strict=True))
    point.XtG += rows.T @ np.stack([d_e, d_et, d_ee], axis=1)  # the columns of G
    g_b, T, S_ee, S_et, S_tt = point.sums
    point.sums = (g_b + d_e.sum(), T + d_t.sum(), S_ee + d_ee.sum(), S_et + d_et.sum(),
                  S_tt + d_tt.sum())
    R = rows if point.cols is None else rows[:, point.cols]
    point._gram += R.T @ (d_ee[:, None] * R)


def _unknowns(manifold, beta, W, signs, fit_intercept):
    """The step's unknowns on the manifold at beta: its coordinates (``newton.basis``:
    fewer than beta_W's where ``_Max``'s ties hold) and the intercept's."""
    P = basis(manifold, beta, W, signs, fit_intercept)
    return W.shape[0] + int(fit_intercept) if P is None else P.shape[1]


def _row_W(A, W, fit_intercept):
    """The rows (or row) A on the unknowns (beta_W, b_c): the columns W, and a column of
    ones for the intercept."""
    A = np.atleast_2d(A)[:, W]
    return np.hstack([A, np.ones((A.shape[0], 1))]) if fit_intercept else A


def _crossings(model, point, k, eta, t, ref, con, flips, limit, most):
    """Samples the last step took across their kinks: a first crossing moves the sample
    to the piece of its new side (the pass updated on the host, ``_release``), a second
    one pins it (constrained, on the piece it has), up to ``limit`` constrained samples
    in all (the nearest their kinks; the others move to their new side). False when more
    than ``most`` crossed (the step was far from the solution). A free sample on the
    pinned piece (ref 0: it lay exactly at its kink, where that piece's zero force is a
    subgradient) whose k has left 0 has crossed too: the pinned piece leaves its kink
    term B |k| out, so it is valid only at k = 0 (a duplicate of a pinned row lands
    there, and had stayed on it, unseen, once it moved: gaussian fits certified 1e-3
    above the optimum)."""
    crossed = np.flatnonzero(~con & (np.sign(k) != ref))
    if crossed.shape[0] > most:
        return False
    again = crossed[(flips[crossed] > 0) | (k[crossed] == 0.0)]
    again = again[np.argsort(np.abs(k[again]))[:max(limit - int(con.sum()), 0)]]
    con[again] = True
    first = np.setdiff1d(crossed, again)
    if first.size:
        new = np.sign(k[first])
        _release(model, point, model.rows(first), first, eta[first], t, ref[first], new)
        ref[first] = new
        flips[first] += 1
    return True


def _solve_kkt(K, rhs):
    """K^{-1} rhs by LU; least squares where K is singular (dependent constraints); None
    where neither gives a finite answer. (LU in numpy's LAPACK: scipy's Cholesky of H
    with the constraints' Schur complement, a third of the flops, took 10-110 ms where
    LU took 20-30 at |W| = 1000 inside a solve, its BLAS threads competing with
    numpy's, which the passes over X had just used.)"""
    try:
        sol = np.linalg.solve(K, rhs)
        if np.all(np.isfinite(sol)):
            return sol
    except np.linalg.LinAlgError:
        pass
    return _lstsq(K, rhs)


# The least squares of a tall A (rows >= columns) by the corrected semi-normal
# equations where the Cholesky factor of A^T A shows cond(A) below 1 / CSNE_RANK_RATIO
# (the ratio of its smallest to its largest diagonal entry, a proxy for 1 / cond(A)).
CSNE_RANK_RATIO = 1e-4


def _lstsq(A, b):
    """The least-squares solution of A x = b (the least-norm one where A's rank is
    short), or None (no finite one: the factorisation failed).

    A tall, well-conditioned A (``_csne``): the corrected semi-normal equations. Else by
    LAPACK's pivoted QR (gelsy) where A has full column rank, the solution then being
    unique; else by numpy's SVD (gelsd), whose least-norm solution the certificate's
    multipliers have always been. The certificate's least squares took 2.7 ms a call
    by the SVD at 112 x 100, 1.3 ms by QR (10.5 and 4.3 ms at 201 x 200): a third of the
    pinned step's time on make_regression 2000 x 200 (600 calls, 1.2 s of 3.9 s)."""
    if not np.all(np.isfinite(A)) or not np.all(np.isfinite(b)):
        return None
    sol = _csne(A, b)
    if sol is not None:
        return sol
    try:
        sol, _, rank, _ = scipy.linalg.lstsq(A, b, lapack_driver="gelsy",
                                             check_finite=False)
        if rank < min(A.shape):
            sol = np.linalg.lstsq(A, b, rcond=None)[0]
    except (np.linalg.LinAlgError, ValueError):
        return None
    return sol if np.all(np.isfinite(sol)) else None


def _csne(A, b):
    """min ||A x - b|| for a tall A by the corrected semi-normal equations, or None
    where A is not tall or its Gram matrix's Cholesky factor R (R^T R = A^T A) shows
    it ill-conditioned (``CSNE_RANK_RATIO``).

    x = (R^T R)^{-1} A^T b, then one correction by the residual r = b - A x,
    x += (R^T R)^{-1} A^T r: the solution to about cond(A) times the rounding unit, as
    QR's (Bjorck, *Numerical Methods for Least Squares Problems*, 6.6.5), for 2 m n^2
    flops in BLAS-3 products where the pivoted QR's panels are BLAS-2. The certificate's
    multipliers at d = 1000 (J^T of 1001 x 133-147): 1-3 ms against gelsy's 15-45 ms
    (whose threads also compete with numpy's after a pass over X). Any multipliers give
    a valid certificate (``_pinned_newton`` clips them to their bounds): an inaccurate
    solution could only fail one, not certify a wrong point."""
    m, n = A.shape
    if n == 0 or m < n:
        return None
    try:
        L = np.linalg.cholesky(A.T @ A)  # (lower: A^T A = L L^T, R = L^T)
    except np.linalg.LinAlgError:
        return None
    diag = np.diag(L)
    if not np.all(np.isfinite(diag)) or not diag.min() > CSNE_RANK_RATIO * diag.max():
        return None
    factor = (L, True)
    x = scipy.linalg.cho_solve(factor, A.T @ b, check_finite=False)
    x = x + scipy.linalg.cho_solve(factor, A.T @ (b - A @ x), check_finite=False)
    return x if np.all(np.isfinite(x)) else None


def _jacobian(rows, W, fit_intercept, coords, g, P=None):
    """J on the unknowns (beta_W, b_c): k_e a_i + k_t du/dz for a_i = (x_c,iW, 1) and
    du/dz = g = eps (grad sigma_W, 0); on z (J P) where the manifold's coordinates are
    z, (beta_W, b_c) = P z (``newton.basis``)."""
    J = coords[1][:, None] * _row_W(rows, W, fit_intercept) + np.outer(coords[2], g)
    return J if P is None else times_basis(J, P)


def _constraint_curvature(rows, W, fit_intercept, coords, g, nu, hess_sigma, eps):
    """sum_i nu_i grad^2 k_i on (beta_W, b_c): k_ee a a^T + k_et (a g^T + g a^T) +
    k_tt g g^T + k_t eps Hess sigma (Poisson's; zero for the symmetric losses, whose k is
    linear in eta and free of t)."""
    _, _, k_t, k_ee, k_et, k_tt = coords
    a = _row_W(rows, W, fit_intercept)
    out = (a * (nu * k_ee)[:, None]).T @ a
    v = a.T @ (nu * k_et)
    out += np.outer(v, g) + np.outer(g, v) + float(nu @ k_tt) * np.outer(g, g)
    if hess_sigma is not None:
        m = hess_sigma.shape[0]
        out[:m, :m] += float(nu @ k_t) * eps * hess_sigma
    return out


def _cached_rows(model, rows, idx, d):
    """The rows X_c[idx] as a (|idx|, d) array, from the dict ``rows`` (sample -> row),
    fetching the missing ones from the engine in one call."""
    missing = [i for i in idx.tolist() if i not in rows]
    if missing:
        rows.update(zip(missing, model.rows(np.array(missing)), strict=True))
    return np.array([rows[i] for i in idx.tolist()]).reshape(idx.shape[0], d)


def _predict_pinned(model, manifold, point, beta, W, signs, band, k, eta, t, eps,
                    fit_intercept, ref, con, rows):
    """Constrain the band samples that the unconstrained step takes across their kinks.

    At a smoothed solution the band |k_i| <= mu holds the samples pinned at the exact
    solution and as many others that merely lie near their kinks (about n x density x
    2 mu of them, far more than the few pinned on well-conditioned data). The Newton
    step on the pieces of the samples' sides (no constraint) moves a pinned sample
    across its kink (its piece's force B s pushes it there) and leaves most of the
    others on their sides: those it takes across (and any at k = 0), at most as many as
    unknowns, the nearest their kinks, start constrained, the pass ``point`` updated
    (``_release`` to the pinned piece s = 0). Measured at n = 1e4, d = 50 (gaussian,
    L2): the first KKT solve has 6 constraints, one released, where constraining the
    whole band (51 samples) took 47 releases."""
    gram = point.gram(W)
    if gram is None:
        return
    H, grad = newton_system(manifold, beta, W, signs, gram, point.XtG, point.sums, eps,
                            fit_intercept)
    A = _cached_rows(model, rows, band, beta.shape[0])  # (kept for the crossing tests)
    k_band = k[band]
    try:
        step = np.linalg.solve(H, -grad)
    except np.linalg.LinAlgError:
        step = None
    if step is not None and np.all(np.isfinite(step)):
        g = eps * manifold.gradient(beta, W, signs)
        if fit_intercept:
            g = np.append(g, 0.0)
        J = _jacobian(A, W, fit_intercept,
                      _coordinate(model, model.y_host[band], eta[band], t), g,
                      basis(manifold, beta, W, signs, fit_intercept))
        # (k changes by J dz: exactly, k being linear in eta and free of t)
        pick = np.flatnonzero((np.sign(k_band + J @ step) != np.sign(k_band))
                              | (k_band == 0.0))
    else:
        # no unconstrained step (a Huber fit with every sample past its threshold: the
        # pieces are linear, H = 0): the whole band
        pick = np.arange(band.shape[0])
    pick = pick[np.argsort(np.abs(k_band[pick]))[:W.shape[0] + int(fit_intercept)]]
    if pick.size:
        idx = band[pick]
        _release(model, point, A[pick], idx, eta[idx], t, ref[idx], np.zeros(idx.shape[0]))
        con[idx], ref[idx] = True, 0.0


def _kink_steps(model, beta, W, d_W, d_bc, k, con, ref, memo=None):
    """(dk, tau): each sample's rate dk along the direction (``d_W`` on W, ``d_bc`` on
    the centred intercept) and the step tau at which a free sample leaving its piece
    reaches its kink (inf for the others). The symmetric losses only (k = y - eta, linear
    along the direction): one product with X gives every sample's rate. ``memo``: a
    list that keeps that product, s X d (the next pass's predictors are s X beta plus
    tau times it: ``_pinned_newton``).

    A sample's side is its piece's sign ``ref`` (sign(k) where ref is 0): the pass's
    model takes the piece s_i = ref_i, so it agrees with the objective while
    ref_i k_i >= 0, and a step leaves that only for ref_i k_i > 0, ref_i dk_i < 0, at
    tau = -k_i / dk_i. A sample just released at its kink sits there on its new piece,
    k_i = +-1e-16 by rounding, either sign; taking its side from sign(k_i) read a step
    into its piece as a crossing at tau ~ 1e-12. Those pivots cycled (released, pinned at
    the next pivot, released again): at n = 1e5, d = 1000 an ``L1`` try ran out of its 16
    passes on them (docs/performance.md, session 42)."""
    full = np.zeros_like(beta)
    full[W] = d_W
    if memo:
        sXd = memo[0]
    else:
        sXd = model.engine.fetch(model.engine.matvec(full * model.scale))[0]
        if memo is not None:
            memo.append(sXd)
    # eta = s X beta + b with b = b_c - s c^T beta: d eta = s X d + d_bc - s c^T d
    deta = sXd + d_bc + model.centred_step(np.zeros_like(full), full)
    dk = -deta  # k = y - eta
    side = np.where(ref != 0.0, ref, np.sign(k))
    with np.errstate(divide="ignore", invalid="ignore"):
        return dk, np.where(~con & (side * k > 0.0) & (side * dk < 0.0), -k / dk, np.inf)


def _ray_step(model, manifold, beta, b, W, signs, H, J, grad, k, ref, con, t, g,
              fit_intercept):
    """(beta, b, sample or None): the step along a direction where the KKT system is
    singular and the objective linear, to its first breakpoint; None if there is none.

    Where Huber's pieces are linear (samples past the threshold) H can vanish along a
    direction d with J d = 0 too, while grad . d != 0: the KKT system has no solution,
    its least-squares step is zero, and the objective falls linearly along
    d = -P grad (P the projection onto the null space of [H; J]) until a breakpoint, as
    in the simplex method: a free sample reaching its kink (then constrained), a sample
    past the threshold reaching it (its curvature returns), or a coordinate of W reaching
    zero. The symmetric losses only (k = y - eta, linear along d); one product with X
    gives every sample's rate. ``g`` = du/dz = eps (grad sigma_W, 0), as in ``_jacobian``."""
    if not predicts(model.family):
        return None
    stacked = np.vstack([H, J]) if J.size else H
    _, sv, Vt = np.linalg.svd(stacked)
    null = Vt[sv <= 1e-10 * max(float(sv.max(initial=0.0)), 1e-300)]
    if sv.shape[0] < Vt.shape[0]:  # (more unknowns than rows: the rest is null too)
        null = np.vstack([null, Vt[sv.shape[0]:]])
    if not null.size:
        return None
    d = -null.T @ (null @ grad)
    if not float(d @ d) > 1e-24 * (1.0 + float(grad @ grad)):
        return None
    d_W, d_bc = d[:W.shape[0]], (d[-1] if fit_intercept else 0.0)
    dk, kink = _kink_steps(model, beta, W, d_W, d_bc, k, con, ref)
    dt = float(g @ d)
    with np.errstate(divide="ignore", invalid="ignore"):
        free = ~con
        steps = [kink]
        threshold = getattr(model.family, "threshold", None)
        if threshold is not None:
            u = ref * k + t + model.offset
            du = ref * dk + dt
            steps.append(np.where(free & (u > threshold) & (du < 0.0),
                                  (u - threshold) / -du, np.inf))
        zero = np.where(beta[W] * d_W < 0.0, -beta[W] / d_W, np.inf)
    tau_k = np.min(np.concatenate(steps), initial=np.inf)
    tau = min(tau_k, float(np.min(zero, initial=np.inf)))
    if not np.isfinite(tau) or tau <= 0.0:
        return None
    n_beta = beta.copy()
    n_beta[W] += tau * d_W
    n_beta = manifold.project(n_beta, W, signs)
    b = b + tau * d_bc + model.centred_step(beta, n_beta)
    pin = int(np.argmin(kink)) if tau == tau_k and np.min(kink) == tau else None
    return n_beta, b, pin


# The gaussian loss's pivots: where a KKT step would take more than one free sample
# across its kink, it stops at the first (a ratio test, as the simplex method and
# homotopy methods take) and that sample is constrained; each pivot is a pass, at most
# PIVOT_PASSES beyond a try's own (with ``max_passes`` given, none). The loss is
# quadratic between kinks, so each shortened step still descends. At a saturated
# solution (about as many samples at kinks as unknowns: high signal-to-noise least
# squares) the full steps crossed many kinks and the tries ran out of passes or gave
# up ('too many crossed'); make_regression 1000 x 20, 19 cold solves: 0.99 -> 0.54 s,
# the i.i.d. benchmarks unchanged. Huber's pieces also break at its threshold, which
# this test does not see: its cold solves were slower with it (3.25 -> 4.05 s at
# 5000 x 50), so Huber keeps the full steps (and its reduced program).
#
# A try with ``search`` (a path's warm start offered to the pinned step first:
# ``solver.PINNED_FIRST_SHARE``) takes the line search instead (``_line_minimum``): as
# far along the step as the objective falls, which is to the first kink only where the
# directional derivative turns nonnegative there. Where no sample is pinned at the
# solution (i.i.d. noise) a step from a predicted point crosses 100-500 kinks, at one
# pivot a pass (tries of 25 passes failed); the search crosses them while the objective
# falls (3-5 passes a try). After FISTA's stages the pivots stay: there the search's
# longer steps failed a try that the pivots had certified (the saturated solution of
# ``test_gaussian_pinned_step_pivots_to_a_saturated_solution``: 82 -> 173 iterations).
# Above BATCH_RELEASE constrained samples, where the violators are released together (a
# primal-dual active-set method, not monotone, whose full steps settle the set in a few
# passes), the search's steps are full: its short monotone steps failed a warm try of
# 1500 x 200 with ~90 samples pinned that the full steps certified (0.07 -> 0.45 s).
PIVOT_PASSES = 20


def _line_minimum(model, beta, W, step, d_bc, k, con, ref, t, dt, slope, curv,
                  memo=None):
    """(tau, sample): the minimum of the objective along the fraction tau in (0, 1] of
    the KKT step (``step`` on W, ``d_bc`` on the centred intercept), and the sample at
    whose kink it lies (None: between kinks, or no kink crossed: tau = 1).

    phi(tau) = F(z + tau dz) is, for the gaussian loss, the quadratic model of the
    current pieces (phi'(0) = ``slope`` = grad . dz, phi'' = ``curv`` = dz^T H dz) until
    the first free sample reaches its kink (``_kink_steps``) at tau_i. There its term
    w_i (1 - a) rho(s_i k_i + u), u = t + tau dt the shift (``dt`` its rate, linear on
    a polyhedral set's manifold), moves to the other side's piece: phi' jumps by
    2 w_i (1 - a) |dk_i| rho'(u) = 2 w_i (1 - a) |dk_i| u >= 0 (the two pieces' slopes
    (+-s_i dk_i + dt) u at k_i = 0) and phi'' by 4 w_i (1 - a) |dk_i| dt (the difference
    of (-s_i dk_i + dt)^2 and (s_i dk_i + dt)^2). phi' is piecewise linear; the walk
    over the crossings in order stops where it turns nonnegative. A step that crosses
    at most one kink, or along which the model does not descend (``slope`` >= 0: the
    KKT steps of an active-set method need not), is taken whole, as the pivots take it.
    ``memo``: ``_kink_steps``'.
    """
    if not slope < 0.0:  # not a descent direction of the model: the full step
        return 1.0, None
    dk, frac = _kink_steps(model, beta, W, step[:W.shape[0]], d_bc, k, con, ref, memo)
    crossing = np.flatnonzero(frac < 1.0)
    if crossing.size <= 1:
        return 1.0, None
    order = crossing[np.argsort(frac[crossing], kind="stable")]
    taus = frac[order]
    rate = 2.0 * (1.0 - model.alpha) * model.w_host[order] * np.abs(dk[order])
    jump = rate * (t + model.offset + taus * dt)  # rho'(u) = u
    bend = 2.0 * rate * dt
    low = 0.0  # phi' on [low, tau_j] is slope + curv tau
    for j in range(order.shape[0]):
        tau = float(taus[j])
        before = slope + curv * tau
        if before >= 0.0:  # the minimum lies between the last kink and this one
            return (max(-slope / curv, low) if curv > 0.0 else low), None
        if before + jump[j] >= 0.0:
            return tau, int(order[j])
        # the linear piece past the kink: (slope + jump_j - bend_j tau_j) + (curv + bend_j) tau
        slope, curv, low = slope + jump[j] - bend[j] * tau, curv + bend[j], tau
    if slope + curv >= 0.0 and curv > 0.0:
        return max(-slope / curv, low), None
    return 1.0, None


def _first_kink(model, beta, W, step, d_bc, k, con, ref, memo=None):
    """(tau, sample): where the KKT step (``step`` on W, ``d_bc`` on the centred
    intercept) takes more than one free sample across its kink, the fraction tau of it
    at which the first of them reaches its kink, and that sample; else (1, None)
    (``_kink_steps``, which keeps its product with X in ``memo``)."""
    frac = _kink_steps(model, beta, W, step[:W.shape[0]], d_bc, k, con, ref, memo)[1]
    crossing = np.flatnonzero(frac < 1.0)
    if crossing.size <= 1:
        return 1.0, None
    first = int(crossing[np.argmin(frac[crossing])])
    return float(frac[first]), first


def _bounded(residual, H, step, grad, beta, b, gap_tol):
    """Whether the KKT residual bounds F - F* within ``gap_tol``.

    A small residual r bounds the objective's excess only through the curvature: about
    r^2 / (2 m) for the model's least curvature m (the quadratic model's minimum), and
    r ||x - x*|| where the objective is linear (F convex: F(x) - F* <= g^T (x - x*)),
    estimated by r (1 + ||x||). Where most samples lie beyond Huber's threshold the
    pieces are nearly linear (m ~ 0): the pinned step certified a vertex with a residual
    of 1.7e-6, 2.3e-3 above the optimum, coefficients of ~1e2 in the scaled problem. The
    quadratic model's decrease along this active set's KKT step (Newton's decrement:
    ``newton.decrement``) must be within the tolerance too.
    """
    decrease = -float(grad @ step + 0.5 * step @ H @ step)
    if not decrease <= gap_tol:
        return False
    if residual * (1.0 + float(np.sqrt(beta @ beta + b * b))) <= gap_tol:
        return True
    # r^2 / (2 m) <= gap_tol: the least eigenvalue m at least r^2 / (2 gap_tol), that is
    # H - (r^2 / (2 gap_tol)) I positive definite (its Cholesky factor exists: 25 ms where
    # the eigenvalues took 50-70 at |W| = 1000)
    if H.size == 0 or not gap_tol > 0.0:
        return False
    shifted = H - (residual * residual / (2.0 * gap_tol)) * np.eye(H.shape[0])
    try:
        return bool(np.all(np.isfinite(np.linalg.cholesky(shifted))))
    except np.linalg.LinAlgError:
        return False


def pinned_newton(model, manifold, fit_intercept, eps, state, mu, tol, gap_tol,
                  max_passes=None, max_changes=50, search=False):
    """``_pinned_newton`` with floating-point overflow silenced: a multiplier over a
    bound of ~1e-300, or a KKT residual past 1e154 on badly scaled columns, is inf, which
    the step's tests read as a violation or no certificate (numpy's RuntimeWarnings
    reached the user: columns on scales from 1e-3 to 1e3, tiny Poisson problems)."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return _pinned_newton(model, manifold, fit_intercept, eps, state, mu, tol, gap_tol,
                              max_passes, max_changes, search)


def _pinned_newton(model, manifold, fit_intercept, eps, state, mu, tol, gap_tol,
                   max_passes=None, max_changes=50, search=False):
    """The exact solution from a smoothed one, ``state`` = (beta, b, t, X beta) at mu.

    Of the samples inside the smoothing band (|k_i| <= mu), those the unconstrained step
    takes across their kinks start constrained, at most as many as unknowns
    (``_predict_pinned``); after each KKT solve a band or released sample that the step
    would take across is constrained too. ``tol``: the stationarity tolerance (FISTA's
    gradient-mapping units), ``gap_tol``: the objective tolerance on 2 sum_Z B_i |k_i|.
    At most ``max_passes`` passes (``PINNED_PASSES``; Poisson's up to ``POISSON_PASSES``
    while its residual stays within ``SETTLING`` times the first pass's).
    Within one pass the active set changes up to ``max_changes`` times (releases and
    entering coordinates update the pass on the host). Returns (state, F, residual,
    passes, converged) with F the exact objective and residual the KKT residual; when
    not converged the state is the one given. ``search``: the gaussian loss's KKT steps
    take the line search over the kinks (``_line_minimum``), not the pivots.
    """
    beta, b = np.array(state[0], dtype=np.float64), float(state[1])
    # rounding left by the projection and the centring is a zero coordinate
    beta[np.abs(beta) <= 1e-14 * max(float(np.max(np.abs(beta), initial=0.0)), 1e-300)] = 0.0
    y, w = model.y_host, model.w_host
    cap = pinned_cap(model)
    most = PINNED_PER_WORKING_SET * cap  # constrained samples
    kkt_budget = KKT_SOLVES * (16.0 / 3.0) * float(cap) ** 3  # flops
    W, signs = manifold.working(beta, {})
    if W is None or not np.any(beta):  # beta = 0 (eps >= eps_max): FISTA's answer
        return state, np.inf, np.inf, 0, False
    t = eps * manifold.value(beta)
    k = _coordinate(model, y, model.engine.fetch(state[3])[0] + b, t, derivatives=False)
    ref = np.sign(k)
    # the candidates for constraints: the band, if there is a kink (t > 0, alpha < 1)
    con = np.zeros(k.shape[0], dtype=bool)
    band = np.flatnonzero(np.abs(k) <= mu) if _kink(model, t) > 0.0 else k[:0].astype(np.intp)
    if not predicts(model.family):
        # Poisson's k is not linear in the step, which the prediction and the crossing
        # test of the band rely on: the whole band starts constrained, at most as many
        # samples as unknowns, the nearest their kinks (the prediction measured 1.5-3x
        # the iterations on its n = 2000 test problems). The unknowns are the manifold's
        # coordinates (``_unknowns``), fewer than beta_W's and b_c where ``_Max``'s ties
        # hold; counting beta_W and b_c made the KKT system singular there (an L1 set, 9
        # coordinates tied at max |beta_j|: multipliers of 1e18-1e21, released one at a
        # time in an order set by rounding, and the try ran out of its changes on some
        # data and not on other)
        m = _unknowns(manifold, beta, W, signs, fit_intercept)
        con[band[np.argsort(np.abs(k[band]))[:m]]] = True
        ref[con] = 0.0
        band = band[:0]
    watched = set(band.tolist())  # tested for crossings, with the released samples
    entering, passes, residual, stepped, rows = {}, 0, np.inf, False, {}
    last = {}  # the pieces' multipliers of the last KKT step, by sample
    flips = np.zeros(k.shape[0], dtype=np.int8)  # kinks crossed, per sample
    extra = PIVOT_PASSES if max_passes is None else 0
    if max_passes is None:
        max_passes = POISSON_PASSES if isinstance(model.family, Poisson) else PINNED_PASSES
    first = None  # the KKT residual of the first pass's certificate
    # the next pass's predictors s X beta where they are known: the state's for the
    # first pass (as the band's kink coordinates above), then the last step's product
    # with X (the gaussian pass: ``Model._gaussian_second_order``)
    known = state[3] if model.constant_curvature() and np.array_equal(beta, state[0]) \
        else None
    pivots, searched = 0, set()  # (the samples the line search pinned)
    pivoting = steps_to_kinks(model.family)
    while passes < max_passes + min(pivots, extra):
        if passes >= PINNED_PASSES and not (first is not None
                                            and residual <= SETTLING * first):
            break  # (Poisson's extra passes: only while the try settles)
        W, signs = manifold.working(beta, entering)
        if W is None or W.shape[0] > cap:
            break
        t = eps * manifold.value(beta)
        point = _Point(model, beta, b, t, 0.0, W, ref=ref, Xb=known)
        known = None
        passes += 1
        if not (np.isfinite(point.f) and np.all(np.isfinite(point.XtG))
                and np.all(np.isfinite(point.sums))):
            break  # a step too long (e^eta overflowed): Newton has no line search here
        eta = model.engine.fetch(point.Xb)[0] + b
        k = _coordinate(model, y, eta, t, derivatives=False)
        # (no sample is pinned where there is no kink: t = 0 or alpha = 1; at most as
        # many as the manifold's unknowns, ``_unknowns``)
        limit = _unknowns(manifold, beta, W, signs, fit_intercept) \
            if _kink(model, t) > 0.0 else 0
        if stepped and not _crossings(model, point, k, eta, t, ref, con, flips, limit,
                                      most):
            break  # the step crossed too many kinks: far from the solution
        stepped, released, frozen = False, set(), set()
        if passes == 1 and band.size:  # the constrained samples to start with
            _predict_pinned(model, manifold, point, beta, W, signs, band, k, eta, t, eps,
                            fit_intercept, ref, con, rows)
        for _ in range(max_changes):
            W, signs = manifold.working(beta, entering)
            if W is None:  # no manifold at the stepped point (the outer test ends it)
                break
            gram = point.gram(W)
            Z = np.flatnonzero(con)
            if gram is None or Z.shape[0] > most:
                break  # coordinates entered: their Gram rows need another pass
            A = _cached_rows(model, rows, Z, beta.shape[0])
            coords = _coordinate(model, y[Z], eta[Z], t)
            bound = w[Z] * _kink(model, t)
            force = bound * ref[Z]  # a crossed sample's piece: dH/dk = B s at k = 0
            g = eps * manifold.gradient(beta, W, signs)
            if fit_intercept:
                g = np.append(g, 0.0)
            P = basis(manifold, beta, W, signs, fit_intercept)
            J = _jacobian(A, W, fit_intercept, coords, g, P)
            H, grad = newton_system(manifold, beta, W, signs, gram, point.XtG,
                                    point.sums, eps, fit_intercept)
            T, m = point.sums[1], H.shape[0]
            # the KKT step for this active set, the constraints' curvature (Poisson's)
            # taken at the last multipliers (as SQP does)
            if Z.size and isinstance(model.family, Poisson):  # (k is linear otherwise)
                Hs = manifold.hessian(beta, W)
                nu = np.array([last.get(i, 0.0) for i in Z])
                C = _constraint_curvature(A, W, fit_intercept, coords, g, nu,
                                          None if Hs is None else _block(Hs, W), eps)
                H = H + (C if P is None else congruence(C, P))
            K = np.zeros((m + Z.shape[0], m + Z.shape[0]))  # [[H, J^T], [J, 0]]
            K[:m, :m], K[:m, m:], K[m:, :m] = H, J.T, J
            kkt_budget -= (2.0 / 3.0) * float(K.shape[0]) ** 3
            if kkt_budget < 0.0:
                return state, np.inf, residual, passes, False  # too many changes
            sol = _solve_kkt(K, np.concatenate([-grad, -k[Z]]))
            if sol is None:
                return state, np.inf, residual, passes, False
            step, nu_new = sol[:m], sol[m:] + force  # the exact problem's multipliers
            excess_nu = np.abs(nu_new) - bound * (1.0 + 1e-9)
            if frozen:
                excess_nu[np.isin(Z, list(frozen))] = 0.0
            if Z.size and excess_nu.max() > 0.0:
                # the most violating sample is released, on the side its multiplier
                # points to (one at a time, as an active-set method: releasing several
                # at once can cycle); with more than BATCH_RELEASE constrained samples
                # of a symmetric loss, every violating one at once
                excess_nu = excess_nu / np.maximum(bound, 1e-300)
                js = np.flatnonzero(excess_nu > 0.0) \
                    if Z.shape[0] > BATCH_RELEASE and predicts(model.family) \
                    else np.array([int(np.argmax(excess_nu))])
                new_ref = np.sign(nu_new[js])
                _release(model, point, A[js], Z[js], eta[Z[js]], t, ref[Z[js]], new_ref)
                con[Z[js]], ref[Z[js]] = False, new_ref
                released.update(Z[js].tolist())
                continue
            last.update(zip(Z.tolist(), (np.clip(nu_new, -bound, bound) - force).tolist(),
                            strict=True))
            # the certificate at this point, for the settled active set: multipliers by
            # least squares, clipped to their bounds (nu the pieces' multipliers, the
            # exact problem's nu + force)
            nu = _lstsq(J.T, -grad) if Z.size else force
            if nu is None:
                return state, np.inf, residual, passes, False
            nu = np.clip(nu + force, -bound, bound) - force
            stat = grad + J.T @ nu
            # the zero coordinates' conditions with the constraints' forces: the loss
            # gradient X_c^T (w H_e) + sum nu_i k_e,i x_c,i and the shift's
            # T + sum nu_i k_t,i
            g_full = point.g_loss + A.T @ (nu * coords[1])
            T_full = T + float(nu @ coords[2])
            excess = manifold.violation(beta, g_full, eps * T_full, W)
            residual = float(np.sqrt(stat @ stat + excess @ excess))
            wrong = np.array([i for i in released if not con[i] and ref[i] * k[i] < 0.0],
                             dtype=np.intp)
            gap = 2.0 * float(bound @ np.abs(k[Z])) + _missed(model, k, ref, wrong, t)
            first = residual if first is None else first
            if residual <= tol and gap <= gap_tol \
                    and _bounded(residual, H, step, grad, beta, b, gap_tol):
                f = model.value(point.Xb, b, t, 0.0)
                return (beta, b, t, point.Xb), f, residual, passes, True
            # (a coordinate changes piece: it enters W, or a tie leaves it, ``_Max``)
            current = dict(zip(W.tolist(), np.ones(W.shape[0]) if signs is None
                               else signs.tolist(), strict=True))
            new = {j: s for j, s in manifold.entering(beta, g_full, eps * T_full,
                                                      1e-3 * tol).items()
                   if current.get(j) != s}
            if new:  # coordinates enter (their Gram rows, if this pass formed them)
                entering.update(new)
                continue
            # a released or band sample that the step would leave on the other side of
            # its kink than its piece (k changes by J dz, to first order) is constrained,
            # the nearest their kinks while there are fewer constraints than unknowns
            watch = np.array([i for i in (released | watched) if not con[i]], dtype=np.intp)
            if watch.size:
                A_w = _cached_rows(model, rows, watch, beta.shape[0])
                J_w = _jacobian(A_w, W, fit_intercept,
                                _coordinate(model, y[watch], eta[watch], t), g, P)
                k_new = k[watch] + J_w @ step
                back = watch[ref[watch] * k_new < 0.0]
                back = back[np.argsort(np.abs(k[back]))[:max(m - Z.shape[0], 0)]]
                # (constrained for this pass: a release and a return can cycle; and never
                # more constraints than unknowns)
                con[back] = True
                frozen.update(back.tolist())
                if back.size:
                    continue
            if not np.max(np.abs(step), initial=0.0) > 1e-12 * (1.0 + np.max(np.abs(beta))):
                # no step solves the system: a singular direction, if the objective falls
                # along it (Huber's linear pieces), to its first breakpoint
                ray = None if P is not None else _ray_step(
                    model, manifold, beta, b, W, signs, H, J, grad, k, ref, con, t, g,
                    fit_intercept)  # (its breakpoints are those of beta_W's orthant)
                if ray is None:
                    return state, np.inf, residual, passes, False  # stalled, not certified
                beta, b, pin = ray
                if pin is not None and Z.shape[0] < m:
                    con[pin] = True  # at its kink (never more constraints than unknowns)
                entering, stepped = {}, True
                break
            if search and pivoting:
                # phi'(0) and phi'' along the step, for the line search (in z or not
                # alike); the constrained samples' kink terms B_i |k_i|, which their
                # pinned pieces leave out, fall linearly to 0 along it (J dz = -k_Z)
                slope = float(grad @ step) - float(bound @ np.abs(k[Z]))
                curv = float(step @ H @ step)
            step = lift(P, step)
            d_bc = step[-1] if fit_intercept else 0.0
            tau, pin, memo = 1.0, None, []
            if pivoting and Z.shape[0] < m:  # (never more constraints than unknowns)
                if not search:
                    tau, pin = _first_kink(model, beta, W, step, d_bc, k, con, ref, memo)
                elif Z.shape[0] <= BATCH_RELEASE:  # (above: full steps, ``PIVOT_PASSES``)
                    tau, pin = _line_minimum(model, beta, W, step, d_bc, k, con, ref, t,
                                             float(g @ step), slope, curv, memo)
                    if pin in searched:
                        # a sample the search pinned before, released since by its
                        # multiplier: the search and the KKT conditions disagree (a
                        # degenerate kink, where the pinned and the released steps each
                        # move it back: the point stalled, and tries of 25 passes failed
                        # on make_regression's path); full steps from here
                        pivoting, tau, pin = False, 1.0, None
            if tau < 1.0:  # to the first kink, or the objective's minimum along the step
                step, d_bc = tau * step, tau * d_bc
                pivots += 1
            if pin is not None:  # at its kink: that sample is pinned
                con[pin] = True
                searched.add(pin)
            n_beta = beta.copy()
            n_beta[W] += step[:W.shape[0]]
            moved = n_beta.copy() if memo else None
            n_beta = manifold.project(n_beta, W, signs)
            if memo and np.array_equal(n_beta, moved) and model.constant_curvature():
                # s X (beta + tau d) = s X beta + tau s X d: no read of X for the next
                # pass (where the projection moved nothing)
                known = point.Xb + tau * memo[0]
            # b = b_c - s c^T beta: b moves by the step of b_c minus s c^T (n_beta - beta)
            b = b + d_bc + model.centred_step(beta, n_beta)
            beta, entering, stepped = n_beta, {}, True
            break
        else:
            break  # the active set did not settle within this pass
    return state, np.inf, residual, passes, False
