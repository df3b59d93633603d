"""The exact solution at the kinks: Newton with the pinned samples as constraints.

Continuation on the smoothing mu reaches the exact solution of a symmetric loss
(gaussian, Huber) only linearly in mu: the samples whose residual r_i = y_i - eta_i is
zero at the solution, pinned at the kink of rho(|r| + t), sit O(mu) away from it at every
stage, and each finer stage is a new solve. There are generically at most d + 1 of them,
and with their set Z known the exact problem is smooth on a manifold:

.. math::

    \\min\\; \\Phi(\\beta, b_c) = \\sum_i w_i [\\alpha \\rho(|r_i|)
        + (1 - \\alpha) \\rho(s_i r_i + t)], \\quad t = \\epsilon \\sigma(\\beta),
    \\quad \\text{subject to } r_i = 0,\\ i \\in Z,

with s_i = sign(r_i) fixed off Z (s_i = 0 on Z: the term is rho(t) there) and sigma on
the orthant or manifold of ``newton.py``. Its KKT conditions

.. math::

    \\nabla \\Phi + A^\\top \\lambda = 0, \\qquad |\\lambda_i| \\le B_i
    = (1 - \\alpha) w_i \\rho'(t), \\qquad A = [\\tilde X_{Z W}, 1]

are the exact problem's optimality conditions: the kink term
(1 - alpha) w_i [rho(|r_i| + t) - rho(t)] = B_i |r_i| + O(r_i^2) has subdifferential
[-B_i, B_i] in eta_i at r_i = 0 and derivative 0 in t. So a point meeting them within
the tolerance is certified optimal for the unsmoothed (convex) objective, whatever the
set Z was; off by r_Z != 0 it is within 2 sum_Z B_i |r_i| of the optimum in objective.

Each Newton pass (``newton._Point`` with the samples' reference signs s) gives H and the
gradient on W, the rows A come from the engine (|Z| of them), and the step solves the KKT
system [[H, A^T], [A, 0]] [dz; lambda] = [-grad; r_Z] (for the gaussian loss with a
polyhedral set, a quadratic program on the manifold: one step is exact). The active set
moves as a primal-dual method's: a sample that crossed zero is constrained (it keeps
its reference sign, whose piece rho(s r + t) has derivative -B_i s at r = 0: the
multiplier of the exact problem is then lambda_i - B_i s_i), and a constrained sample
whose multiplier exceeds its bound is released on the side that bound points to
(s_i = -sign(lambda_i)). Anything else (no manifold, too many pinned samples, no
certificate within ``max_passes``) returns not converged and the continuation goes on.
"""

from __future__ import annotations

import numpy as np

from ..engine import to_numpy
from ..families import _SymmetricFamily
from .newton import MAX_WORKING_SET, _Point, newton_system
from .objective import second_order_terms

# The most constrained samples: the KKT system has |W| + 1 + |Z| rows (generically
# |Z| <= |W| + 1 at a solution); beyond, the continuation is left to finish
MAX_PINNED = 2 * MAX_WORKING_SET


def covers(family):
    """True for the families whose kinks the pinned step treats exactly (the symmetric
    losses: gaussian, Huber)."""
    return isinstance(family, _SymmetricFamily)


def _host(v):
    return np.asarray(to_numpy(v), dtype=np.float64)


def _kink(model, t):
    """The size of the kink per unit weight, (1 - alpha) rho'(t) (rho'(u) = -l'(u, 0);
    the model's shift is t plus the LLA majoriser's offset)."""
    u = np.array([t + model.offset])
    return (1.0 - model.alpha) * float(-model.family.grad(u, 0.0, np)[0])


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


def _row_W(A, W, fit_intercept):
    """The rows (or row) A on the unknowns (beta_W, b_c): the columns W, and a column of
    ones for the intercept."""
    A = np.atleast_2d(A)[:, W]
    return np.hstack([A, np.ones((A.shape[0], 1))]) if fit_intercept else A


def _crossings(model, point, r, eta, t, ref, con, flips, limit):
    """Samples the last step took across their kinks: a first crossing moves the sample
    to the piece of its new side (the pass updated on the host, ``_release``), a second
    one pins it (constrained, on the piece it has), up to ``limit`` constrained samples
    in all (the nearest their kinks; the others move to their new side). False when more
    than ``MAX_PINNED`` crossed (the step was far from the solution)."""
    crossed = np.flatnonzero(~con & (ref != 0.0) & (np.sign(r) != ref))
    if crossed.shape[0] > MAX_PINNED:
        return False
    again = crossed[(flips[crossed] > 0) | (r[crossed] == 0.0)]
    again = again[np.argsort(np.abs(r[again]))[:max(limit - int(con.sum()), 0)]]
    con[again] = True
    first = np.setdiff1d(crossed, again)
    if first.size:
        new = np.sign(r[first])
        _release(model, point, model.rows(first), first, eta[first], t, ref[first], new)
        ref[first] = new
        flips[first] += 1
    return True


def _solve_kkt(K, rhs):
    """K^{-1} rhs by LU; least squares where K is singular (dependent constraints)."""
    try:
        sol = np.linalg.solve(K, rhs)
        if np.all(np.isfinite(sol)):
            return sol
    except np.linalg.LinAlgError:
        pass
    return np.linalg.lstsq(K, rhs, rcond=None)[0]


def _wrong_side(model, r, ref, con, t):
    """sum_i w_i (1 - alpha) [rho(|r_i| + t) - rho(s_i r_i + t)] over the free samples on
    the other side of their kinks than their pieces (released, not yet stepped): the
    objective the pieces miss there, an upper bound on the certificate's error (the
    pieces are below the loss: |r| >= s r)."""
    idx = np.flatnonzero(~con & (ref != 0.0) & (np.sign(r) != ref))
    if not idx.size:
        return 0.0
    u = t + model.offset
    rho = model.family.loss
    diff = rho(np.abs(r[idx]) + u, 0.0, np) - rho(ref[idx] * r[idx] + u, 0.0, np)
    return (1.0 - model.alpha) * float(model.w_host[idx] @ diff)


def pinned_newton(model, manifold, fit_intercept, eps, state, mu, tol, gap_tol,
                  max_passes=5, max_changes=50, memory=None, recall=False):
    """The exact solution from a smoothed one, ``state`` = (beta, b, t, X beta) at mu.

    The samples inside the smoothing band (|r_i| <= mu) start constrained, at most as many
    as unknowns. ``tol``: the stationarity tolerance (FISTA's gradient-mapping units),
    ``gap_tol``: the objective tolerance on 2 sum_Z B_i |r_i|. Within one pass the active
    set changes up to ``max_changes`` times (releases and entering coordinates update
    the pass on the host). Returns (state, F, residual, passes, converged) with F the
    exact objective and residual the KKT residual; when not converged the state is the
    one given. ``memory`` (a problem's cache, shared along a path) keeps the pinned set
    of a certified solution; with ``recall`` (a warm start) the step starts from it.
    """
    beta, b = np.array(state[0], dtype=np.float64), float(state[1])
    # rounding left by the projection and the centring is a zero coordinate
    beta[np.abs(beta) <= 1e-14 * max(float(np.max(np.abs(beta), initial=0.0)), 1e-300)] = 0.0
    y, w = model.y_host, model.w_host
    r = y - (_host(state[3]) + b)
    ref = np.sign(r)
    # constrained samples: those in the band, if there is a kink (t > 0, alpha < 1), and
    # of them at most as many as unknowns (beta_W, b_c), the nearest their kinks
    con = np.zeros(r.shape[0], dtype=bool)
    band = np.flatnonzero(np.abs(r) <= mu)
    W = manifold.working(beta, {})[0]
    if W is None or not np.any(beta):  # beta = 0 (eps >= eps_max): FISTA's answer
        return state, np.inf, np.inf, 0, False
    known = None if memory is None or not recall else memory.get("fast_pinned")
    if _kink(model, eps * manifold.value(beta)) > 0.0:
        if known is not None and known.shape[0] and known.max() < r.shape[0]:
            con[known] = True  # the last solution's pinned samples (along a path)
        else:
            m = W.shape[0] + int(fit_intercept)
            con[band[np.argsort(np.abs(r[band]))[:m]]] = True
    ref[con] = 0.0
    entering, passes, residual, stepped, rows = {}, 0, np.inf, False, {}
    flips = np.zeros(r.shape[0], dtype=np.int8)  # kinks crossed, per sample
    while passes < max_passes:
        W, signs = manifold.working(beta, entering)
        if W is None or W.shape[0] > MAX_WORKING_SET:
            break
        t = eps * manifold.value(beta)
        point = _Point(model, beta, b, t, 0.0, W, ref=ref)
        passes += 1
        eta = _host(point.Xb) + b
        r = y - eta
        if stepped and not _crossings(model, point, r, eta, t, ref, con, flips,
                                      W.shape[0] + int(fit_intercept)):
            break  # the step crossed too many kinks: far from the solution
        stepped, released, frozen = False, set(), set()
        for _ in range(max_changes):
            W, signs = manifold.working(beta, entering)
            gram = point.gram(W)
            Z = np.flatnonzero(con)
            if gram is None or Z.shape[0] > MAX_PINNED:
                break  # coordinates entered: their Gram rows need another pass
            for i in Z:
                if i not in rows:
                    rows[i] = None
            missing = [i for i in Z if rows[i] is None]
            if missing:
                for i, row in zip(missing, model.rows(np.array(missing)), strict=True):
                    rows[i] = row
            A = np.array([rows[i] for i in Z]).reshape(Z.shape[0], beta.shape[0])
            bound = w[Z] * _kink(model, t)
            force = bound * ref[Z]  # the piece's -dH/deta_i at r = 0 (crossed samples)
            AW = _row_W(A, W, fit_intercept)
            H, grad = newton_system(manifold, beta, W, signs, gram, point.XtG,
                                    point.sums, eps, fit_intercept)
            T = point.sums[1]
            # the certificate: multipliers by least squares, clipped to their bounds
            lam = np.linalg.lstsq(AW.T, -grad, rcond=None)[0] - force if Z.size \
                else force
            lam = np.clip(lam, -bound, bound)
            stat = grad + AW.T @ (lam + force)
            g_full = point.g_loss + A.T @ (lam + force)
            excess = manifold.violation(beta, g_full, eps * T)
            if excess.size:
                excess[W] = 0.0
            residual = float(np.sqrt(stat @ stat + excess @ excess))
            gap = 2.0 * float(bound @ np.abs(r[Z])) + _wrong_side(model, r, ref, con, t)
            if residual <= tol and gap <= gap_tol:
                f = model.value(point.Xb, b, t, 0.0)
                if memory is not None:
                    memory["fast_pinned"] = Z
                return (beta, b, t, point.Xb), f, residual, passes, True
            inW = set(W.tolist())
            new = {j: s for j, s in manifold.entering(beta, g_full, eps * T, 1e-3 * tol)
                   .items() if j not in inW}
            if new:  # coordinates enter (their Gram rows, if this pass formed them)
                entering.update(new)
                continue
            m = H.shape[0]
            K = np.block([[H, AW.T], [AW, np.zeros((Z.shape[0], Z.shape[0]))]])
            sol = _solve_kkt(K, np.concatenate([-grad, r[Z]]))
            if not np.all(np.isfinite(sol)):
                return state, np.inf, residual, passes, False
            step, lam = sol[:m], sol[m:] - force
            excess_lam = np.abs(lam) - bound * (1.0 + 1e-9)
            excess_lam[np.isin(Z, list(frozen))] = 0.0
            if Z.size and excess_lam.max() > 0.0:
                # the most violating sample is released, on the side its multiplier
                # points to (one at a time, as an active-set method: releasing several
                # at once can cycle)
                k = int(np.argmax(excess_lam / np.maximum(bound, 1e-300)))
                i, new_ref = Z[k], -np.sign(lam[k])
                _release(model, point, A[k:k + 1], Z[k:k + 1], eta[Z[k:k + 1]], t,
                         ref[Z[k:k + 1]], np.array([new_ref]))
                con[i], ref[i] = False, new_ref
                released.add(int(i))
                continue
            # a released sample that the step would leave on the other side of its
            # kink than its piece is constrained again (r changes by -x_c^T d(beta, b_c))
            back = [i for i in released if not con[i] and ref[i] * (
                r[i] - (_row_W(rows[i], W, fit_intercept) @ step)[0]) < 0.0]
            if back and Z.shape[0] + len(back) <= H.shape[0]:
                # (kept for this pass: a release and a return can cycle; and never more
                # constraints than unknowns)
                con[back] = True
                frozen.update(back)
                continue
            if not np.max(np.abs(step), initial=0.0) > 1e-12 * (1.0 + np.max(np.abs(beta))):
                return state, np.inf, residual, passes, False  # stalled, not certified
            n_beta = beta.copy()
            n_beta[W] += step[:W.shape[0]]
            n_beta = manifold.project(n_beta, W, signs)
            d_bc = step[-1] if fit_intercept else 0.0
            # b = b_c - s c^T beta: b moves by the step of b_c minus s c^T (n_beta - beta)
            b = b + d_bc + model.centred_step(beta, n_beta)
            beta, entering, stepped = n_beta, {}, True
            break
        else:
            break  # the active set did not settle within this pass
    return state, np.inf, residual, passes, False
