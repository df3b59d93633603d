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
thousands of iterations. The gaussian loss has no linear piece, but off its kink a
sample's adversarial term (|a_i| + u)^2 has the minorant (s_i a_i + u)^2 (u >= 0), equal
to it while s_i a_i >= 0: the far samples' terms are then one quadratic in
(beta, b_c, t), z^T P z / 2 + q^T z (``_far_quadratic``: their Gram matrix, the cached
one less the near rows', and one X^T pass), and the program holds the samples near their
kinks (at least MIN_NEAR_PER_UNKNOWN per unknown) besides a dense d x d block of P (on
dense host rows, ``quadratic_far``; on sparse rows every sample is near, the program the
whole problem, tried only where it is small: n at most MAX_NEAR_PER_UNKNOWN samples per
unknown). High signal-to-noise least squares (make_regression 2000 x 200, noise 5) has
saturated solutions on a stretch of radii, which only the program certifies: 3-4 s a
program of all samples, 0.5-0.9 s one of the 404 nearest and the quadratic (a 20-radius
``L2`` path 34 -> 9 s). Every program, Huber's too, waits until the
solve's work so far pays for it (``program_pays``), Huber's on dense rows only past a
larger floor (``program_floor``): a nearly-LAD fit's is small and runs at once, one with
most residuals within the threshold is nearly the whole problem.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..families import _SymmetricFamily
from . import conic
from .model import centred_intercept, uncentred
from .working_set import (
    MAX_ROUNDS,
    certify,
    linear_coefficient,
    lower_of,
    near_cap,
    near_set,
    program_point,
    uncertified,
)

# the near set's growth where the reduced program is unbounded below
GROWTH = 4
# The gaussian loss's program is the whole problem, a generic interior-point solve: it
# is tried where its cost is at most twice the solve's work so far, or PROGRAM_MIN_SECONDS.
# The cost model, in seconds of the project's 2-core machine (only the ratio matters):
# the program about PROGRAM_SECONDS m d^2 for m near samples (Clarabel's factorisations
# with dense rows: 0.2 s at m = 260, d = 130; 1.9 s at 1000 x 250; 4.2 s at 2500 x 250), a
# FISTA iteration about ITERATION_SECONDS = (2.5e-4, 2e-8, 3.4e-10) as fixed + per sample
# + per entry (its Python work, per-sample maps, two products: 0.3 ms at 1000 x 250,
# 0.9 ms at 2e4 x 20). A solve at n = 2500, d = 250 (L2) had spent 8.4 s in two programs
# where its FISTA iterations and pinned steps took 0.7 s. Huber's program on dense rows
# runs at once up to HUBER_PROGRAM_SECONDS, budgeted alike beyond: on nearly-LAD fits,
# which FISTA does not finish, its far samples make it small; and below that floor its
# early programs were worth their cost (n = 400, d = 150, L1: 0.27 s with them, 0.60 s
# and 801 iterations with the gaussian's floor), while with most residuals within the
# threshold it is nearly the whole problem (n = 5000, d = 400: 9.8 s in one program,
# modelled 21.6 s, where FISTA alone finished in 1.3 s). (Sparse rows keep the
# gaussian's floor: a Huber program of tf-idf rows at n = 5000, d = 1000 took 3 s where
# FISTA had finished in 0.17 s.)
PROGRAM_SECONDS = 3e-8
ITERATION_SECONDS = (2.5e-4, 2e-8, 3.4e-10)
PROGRAM_MIN_SECONDS = 0.05
HUBER_PROGRAM_SECONDS = 1.0


def iteration_seconds(n, d, density=1.0):
    """A FISTA iteration's seconds in the cost model above, on n samples, d columns of
    X of ``density`` (its stored entries' fraction)."""
    fixed, per_sample, per_entry = ITERATION_SECONDS
    return fixed + per_sample * n + density * per_entry * n * d


def program_pays(m, n, d, work, density=1.0, floor=PROGRAM_MIN_SECONDS):
    """Whether a program of m near samples (of n, d columns) costs at most twice the
    work so far (``work`` FISTA iterations) or ``floor`` seconds, in the cost model
    above; rows of ``density`` (sparse X, ``model.Model.program_rows``) cost that
    fraction of dense ones (a rough model: the factorisation's fill depends on the
    pattern)."""
    iteration = iteration_seconds(n, d, density)
    return PROGRAM_SECONDS * density * m * d * d <= max(floor, 2.0 * work * iteration)


def program_floor(model):
    """The seconds up to which ``model``'s program runs whatever the work so far:
    HUBER_PROGRAM_SECONDS for Huber on dense rows, PROGRAM_MIN_SECONDS otherwise."""
    huber = _threshold(model.family) > 0.0 and not model.sparse_rows()
    return HUBER_PROGRAM_SECONDS if huber else PROGRAM_MIN_SECONDS


def program_pays_for(model, m, work):
    """``program_pays`` for a program of m rows of ``model``'s X (its n, d, for sparse
    rows density, and ``program_floor``)."""
    n, d = model.engine.shape
    return program_pays(m, n, d, work, model.density(), program_floor(model))


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


def quadratic_far(model):
    """Whether the gaussian loss's far samples enter its program as one quadratic
    (``_far_quadratic``): the gaussian loss with a kink (alpha < 1) on dense host rows
    (their constant Gram matrix: ``Model.constant_curvature``; centred program rows,
    ``Model.program_rows``). Otherwise every gaussian sample is near: the program is the
    whole problem."""
    return not _threshold(model.family) and model.alpha < 1.0 \
        and model.constant_curvature() and not model.sparse_rows()


def whole_problem(model):
    """Whether the program holds every sample: the gaussian loss (no linear pieces)
    where its far samples are no quadratic (``quadratic_far``). Huber's far samples
    are its linear pieces, the gaussian's on dense host rows a quadratic: their near
    sets are small."""
    return not _threshold(model.family) and not quadratic_far(model)


def _distance(model, r, t):
    """Each sample's distance to leaving the pieces of its terms: the clean term's
    |r| >= M, the adversarial term's kink at a = r - h = 0 and |a| + u >= M
    (``_interval``); -inf too where r and a have opposite signs (the two terms' pieces
    on different sides). The gaussian loss: |a| (the kink) where its far samples are a
    quadratic (``quadratic_far``), else -inf (every sample near)."""
    threshold = _threshold(model.family)
    if not threshold:
        if not quadratic_far(model):
            return np.full(r.shape[0], -np.inf)
        return np.abs(r - _interval(t, model.offset)[0])
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


def _far_quadratic(model, near, s, box, rows=None):
    """(P, q, const): the gaussian far samples' terms as z^T P z / 2 + q^T z + const in
    z = (beta, b_c, t) (t one shift, or (t_up, t_dn) on a box), X_c the centred rows.

    A far sample i (side s_i of a = r - h) has the terms
    w_i [alpha r_i^2 + (1 - alpha) (s_i a_i + u)^2] / 2, a minorant of its own
    w_i [alpha r_i^2 + (1 - alpha) (|a_i| + u)^2] / 2 (|s a + u| <= |a| + u for u >= 0),
    equal to it while s_i a_i >= 0: G stays a minorant of F, equal to it where the split
    holds, as Huber's linear pieces are (the module's docstring). With s^2 = 1 and
    s_i a_i + u = s_i r_i + tau_i + offset, tau_i the shift on sample i's side (t; a box
    t_dn for s = +1 and t_up for s = -1: ``_interval``), the terms are
    w [r^2 + (1 - alpha) (2 s r (tau + offset) + (tau + offset)^2)] / 2 with
    r = y - x_c^T beta - b_c: P's beta block is X_F^T W X_F = X_c^T W X_c (the cached
    Gram matrix, ``Model.whole_gram``) less the near rows' and the rest come from one
    read of X, X_c^T of (w, w y, the shifts' w s) on the far samples. ``rows``: the near
    samples' centred rows X_c[near] where the caller has them (the program's).
    """
    w, y, alpha, off = model.w_host, model.y_host, model.alpha, model.offset
    d = model.engine.shape[1]
    s = np.where(s < 0.0, -1.0, 1.0)  # (a = 0: either side's term is |a| + u)
    wf = np.where(near, 0.0, w)
    ws = wf * s
    # w s on each shift's far samples (a box: t_up takes s = -1, t_dn s = +1)
    shifts = [np.where(s < 0.0, ws, 0.0), np.where(s > 0.0, ws, 0.0)] if box else [ws]
    vectors = [wf, wf * y] + shifts
    Xt = np.asarray(model.engine.rmatvecs(*vectors), dtype=np.float64) * model.scale
    if model.centre is not None:  # X_c^T v = s X^T v - s c sum_i v_i
        Xt = Xt - np.outer([float(np.sum(v)) for v in vectors], model.centre)
    idx = np.flatnonzero(near)
    A = model.rows(idx) if rows is None else rows
    n_t, c1 = len(shifts), 1.0 - alpha
    B, T = d, d + 1 + np.arange(n_t)
    P, q = np.zeros((d + 1 + n_t,) * 2), np.zeros(d + 1 + n_t)
    # w r^2 / 2: the beta block, its cross terms with b_c, and b_c's
    P[:d, :d] = model.whole_gram() - A.T @ (w[idx, None] * A)
    P[:d, B] = P[B, :d] = Xt[0]
    P[B, B] = float(np.sum(wf))
    q[:d], q[B] = -Xt[1], -float(wf @ y)
    const = 0.5 * float(wf @ (y * y))
    for k, v in enumerate(shifts):
        # (1 - alpha) w s r tau: the cross terms of tau with beta and b_c, and w s y tau;
        # (1 - alpha) w (tau + offset)^2 / 2 (|w s| = w)
        P[:d, T[k]] = P[T[k], :d] = -c1 * Xt[2 + k]
        P[B, T[k]] = P[T[k], B] = -c1 * float(np.sum(v))
        P[T[k], T[k]] = c1 * float(np.sum(np.abs(v)))
        q[T[k]] = c1 * (float(v @ y) + off * float(np.sum(np.abs(v))))
    # (1 - alpha) w s r offset, and (1 - alpha) w offset^2 / 2
    q[:d] -= c1 * off * Xt[2:].sum(axis=0)
    q[B] -= c1 * off * float(np.sum(ws))
    const += c1 * off * float(ws @ y) + 0.5 * c1 * off * off * float(np.sum(wf))
    return P, q, const


def _program(rows, y, w, family, alpha, lin, template, eps, offset, fit_intercept, b_fixed,
             kappa, quad=None):
    """G on the near rows as Clarabel data: (P, q, A, b, cones, constant, sigma), the
    minimum of G being kappa (that of x^T P x / 2 + q^T x subject to b - A x in the
    cones, plus the constant).

    ``lin`` = (const, g_beta, g_b, g_t): the far samples' part const + g_beta^T beta +
    g_b b_c + g_t t; ``template`` the set's ``conic.SupportTemplate``. The program is
    posed in units of the near responses' scale sigma (beta = sigma beta~, b_c = sigma
    b~, t = sigma t~: the constraint is homogeneous) and of the objective's ``kappa``
    (the objective at the point: the program's value is then of order one, where
    Clarabel's gap tolerance, relative to max(1, |value|), is a relative one), with
    rho_M(sigma v) = sigma^2 rho_{M/sigma}(v). Nearly least absolute deviations in the
    fast path's scaled units have responses of ~1e4 and thresholds of ~1e-4, where
    Clarabel reported the unscaled program infeasible.

    Columns x = (beta~, b~ [with an intercept], t~ (one, or (t_up, t_dn) on a box), the
    residuals r = y / sigma - rows beta~ - b~ (m, by equality rows: the only rows that
    read X; with r folded into every row Clarabel stopped "almost solved" on a
    gaussian `Lp(3)` program at d = 60), per term of weight c > 0 (c = alpha clean,
    1 - alpha adversarial) a block p and for Huber a block a, then the support
    template's columns). With M the scaled threshold (Huber as the infimal convolution
    of p^2 / 2 and M |.|):

    * clean, rho(r) = min p^2/2 + M a s.t. a >= |r - p| (gaussian: r^2 / 2, no block);
    * adversarial, rho(v) for v = |r - h| + u >= 0, rho nondecreasing there:
      min p^2/2 + M a s.t. p + a >= v, a >= 0 (gaussian: p >= v), v >= r - h + u and
      v >= h - r + u written as two rows; one shift: h = 0, u = t + offset / sigma; a
      box: r - h + u = r + t_dn + offset / sigma and h - r + u = t_up - r + offset / sigma
      (``_interval``).

    P is diagonal: c w sigma^2 / kappa on each p (on r for the gaussian clean term); q
    holds c w sigma^2 / kappa M on each a and the far part, sigma (g_beta, g_b, g_t) /
    kappa. ``quad``: the gaussian far samples' quadratic (P_F, q_F, const_F) in
    z = (beta, b_c, t) (``_far_quadratic``): sigma^2 P_F / kappa on the first columns,
    sigma q_F / kappa added to q (without an intercept b_c = b_fixed, a constant).
    Rows: the residuals' equalities (a zero cone), then t >= 0 and the terms'
    rows (nonnegative), then eps sigma_S(+-beta~) <= t~ (``conic.epigraph_rows``). Each
    row is an expression e^T x + c in the cone, i.e. A = -e, b = c.
    """
    m, d = rows.shape
    threshold = _threshold(family)
    if quad is not None:
        P_F, q_F, const_F = quad
        if not fit_intercept:  # b_c = b_fixed: its row of P_F and q_F to q and const
            const_F = const_F + b_fixed * (q_F[d] + 0.5 * b_fixed * P_F[d, d])
            q_F = q_F + b_fixed * P_F[:, d]
            keep = np.r_[np.arange(d), np.arange(d + 1, P_F.shape[0])]
            P_F, q_F = P_F[np.ix_(keep, keep)], q_F[keep]
        lin = (lin[0] + const_F,) + tuple(lin[1:])
    sigma = float(np.sqrt(np.mean(y * y))) if y.size else 0.0
    sigma = sigma if sigma > 0.0 else 1.0
    M = threshold / sigma
    const, g_beta, g_b, g_t = lin
    box = np.ndim(g_t) > 0
    n_t = 2 if box else 1
    col_b, col_t = d, d + int(fit_intercept)
    col_r = col_t + n_t
    # the terms' blocks: (weight c, adversarial?, first column); gaussian clean: none
    blocks, col = [], col_r + m
    for k, c in enumerate((alpha, 1.0 - alpha)):
        if c > 0.0 and m and (k or M > 0.0):
            blocks.append((c, k, col))
            col += m * (2 if M > 0.0 else 1)  # p (and a)
    col_aux = col
    n_cols = col_aux + n_t * template.n_aux
    q = np.zeros(n_cols)
    q[:d], q[col_t:col_r] = sigma * np.asarray(g_beta) / kappa, sigma * np.asarray(g_t) / kappa
    if fit_intercept:
        q[col_b] = sigma * g_b / kappa
    else:
        const = const + g_b * b_fixed  # g_b b_c, a constant
    weight = w * (sigma * sigma / kappa)  # rho(sigma v) / kappa
    p_diag = np.zeros(n_cols)
    at, ones = np.arange(m), np.ones(m)
    r = col_r + at
    if alpha > 0.0 and not M > 0.0:
        p_diag[r] = alpha * weight  # the gaussian clean term r^2 / 2
    # r + rows beta~ + b~ - r0 = 0, r0 = y / sigma (less b_fixed / sigma without an
    # intercept)
    entries = [conic.row_entries(rows), (at, r, ones)]
    if fit_intercept:
        entries.append((at, np.full(m, col_b), ones))
    zero = [(entries, -(y - (0.0 if fit_intercept else b_fixed)) / sigma)]
    nonneg = [([(np.arange(n_t), col_t + np.arange(n_t), np.ones(n_t))],
               np.zeros(n_t))]  # t >= 0
    off = offset / sigma
    t_dn, t_up = (col_t + 1, col_t) if box else (col_t, col_t)
    for c, k, first in blocks:
        p = first + at
        a = p + m  # (Huber only)
        p_diag[p] = c * weight
        if M > 0.0:
            q[a] = c * weight * M
        if not k:  # clean (Huber): a - r + p >= 0 and a + r - p >= 0
            nonneg.append(([(at, a, ones), (at, r, -ones), (at, p, ones)], np.zeros(m)))
            nonneg.append(([(at, a, ones), (at, r, ones), (at, p, -ones)], np.zeros(m)))
            continue
        v = [(at, p, ones)] + ([(at, a, ones)] if M > 0.0 else [])  # v: p (+ a)
        # v - r - t_dn - off >= 0 (one shift: t) and v + r - t_up - off >= 0
        nonneg.append((v + [(at, r, -ones), (at, np.full(m, t_dn), -ones)],
                       np.full(m, -off)))
        nonneg.append((v + [(at, r, ones), (at, np.full(m, t_up), -ones)],
                       np.full(m, -off)))
        if M > 0.0:  # a >= 0
            nonneg.append(([(at, a, ones)], np.zeros(m)))
    blocks, rhs, cones = [], [], []
    for parts, cone in ((zero, conic.zero_cone), (nonneg, conic.nonneg_cone)):
        block, b_k = _stack(parts)
        if block[3]:
            blocks.append(block)
            rhs.append(b_k)
            cones.append(cone(block[3]))
    A, b, cones = conic.with_epigraphs(blocks, rhs, cones, template, eps, n_t, col_t,
                                       col_aux, n_cols)
    P = sp.diags(p_diag, format="csc")
    if quad is not None:  # (columns (beta, [b], t) first: P_F's order; upper triangle)
        q[:col_r] += sigma * q_F / kappa
        i, j = np.triu_indices(col_r)
        P = (P + sp.csc_matrix(((sigma * sigma / kappa) * P_F[i, j], (i, j)),
                               shape=(n_cols, n_cols))).tocsc()
    return P, q, A, b, cones, const / kappa, sigma


def _stack(parts):
    """(block, b) of blocks of rows, each (entries, constants): an entry (rows, columns,
    values) of the expressions e^T x + c, each block's rows from 0, stacked into one block
    of entries (rows, columns, values, n_rows) (``conic.with_epigraphs``); A = -e,
    b = c (Clarabel's b - A x in the cone)."""
    entries, rhs, top = [], [], 0
    for block, c in parts:
        entries += [(top + r, col, -val) for r, col, val in block]
        rhs.append(np.asarray(c, dtype=np.float64))
        top += rhs[-1].shape[0]
    if not entries:
        return (np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0), 0), np.zeros(0)
    r, col, val = (np.concatenate(x) for x in zip(*entries, strict=True))
    return (r, col, val, top), np.concatenate(rhs)


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
                    widen=1, work=0.0, final=False):
    """The exact solution of a symmetric loss from a point ``state`` = (beta, b, t, X beta).

    As ``working_set.hinge_exact``: ``tol`` is unused, ``gap_tol`` the absolute objective
    tolerance on F(x*) minus the program's dual bound; ``work`` the solve's work so far in
    FISTA iterations. Returns ((state, F, gap, passes, certified), lower bound); not
    certified, the programs' best point and F there (the given state and inf where no
    program was solved); passes None where the step declined (too many near samples,
    or a program costlier than the work so far: ``program_pays``, past
    ``program_floor``; ``work`` infinite: the solve's last resort before an error,
    ``solver._minimise``). ``final`` (the solve's last try) changes nothing here: the
    rounds are limited by the near set's cap only.
    """
    del tol, final
    engine = model.engine
    _, b0, t0, Xb0 = state
    d = engine.shape[1]
    template = conic.support_template(pert, d)
    if template is None:  # (declined: no cone template)
        return (state, np.inf, np.inf, None, False), None
    y, w = model.y_host, model.w_host
    r = y - (engine.fetch(Xb0)[0] + b0)
    box = np.ndim(t0) > 0
    dist, unknowns = _distance(model, r, t0), d + int(fit_intercept) + (2 if box else 1)
    entries = model.row_entries()  # (d, or fewer for sparse X's rows)
    near = near_set(dist, w, mu, unknowns, entries, widen=widen)
    quad = quadratic_far(model)
    # (every program is budgeted, Huber's on dense rows above a larger floor: its far
    # samples shrink it only where most residuals lie beyond the threshold; with most
    # within it, it is nearly the whole problem; ``program_floor``. The gaussian far
    # samples' quadratic, a dense d x d block of P, is not counted: with it a program
    # of m near rows took what Huber's of the same rows did, make_regression, n =
    # 1000-3000, m = 2d: 0.33 against 0.34-0.37 s at d = 200, 0.44-0.49 against
    # 0.45-0.62 at d = 250, 0.72-0.75 against 0.94-1.15 at d = 300; counted as d more
    # rows, the model put it at 2.2-3.4 times its time, and a solve at 1000 x 250 waited
    # 2000 FISTA iterations, 2.7 s, for a program of 0.5 s)
    if near is None or not program_pays_for(model, np.count_nonzero(near), work):
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
    cap = near_cap(unknowns, entries, widen)
    best = None  # the uncertified programs' best point and F there
    for _ in range(MAX_ROUNDS + 2):  # (up to two growths where G is unbounded)
        idx = np.flatnonzero(near)
        rows, c = model.program_rows(idx)
        P, q, A, rhs, cones, const, sigma = _program(
            rows, y[idx], w[idx], model.family, model.alpha,
            uncentred(_far_part(model, u, near, g_beta, box), c), template, eps,
            model.offset, fit_intercept, b_fixed, kappa,
            quad=_far_quadratic(model, near, s, box, rows) if quad else None)
        passes += int(quad)
        solved = conic.solve_program(q, A, rhs, cones, gap_tol / kappa, P=P)
        if solved.status == "unbounded":
            # G unbounded below: too few samples kept whole to hold the linear pieces
            # (the point's split is off); four times as many, the nearest, once more
            wider = near_set(dist, w, mu, unknowns, entries,
                             least=min(GROWTH * idx.size, cap),
                             widen=widen)
            # (budgeted as the first program, as is a grown one below)
            if wider is None or np.count_nonzero(wider & ~near) == 0 \
                    or not program_pays_for(model, np.count_nonzero(wider), work):
                break
            moved = np.flatnonzero(wider & ~near)
            g_beta = g_beta + _far_gradient_change(model, moved, u)
            u[moved], near[moved] = 0.0, True
            continue
        if solved.status != "optimal":
            return (state, np.inf, np.inf, passes, False), None

        def point_of(solution, const=const, sigma=sigma, c=c):
            lower, x = (solution.dual + const) * kappa, solution.x
            beta = sigma * x[:d]
            return (*program_point(model, shift, eps, beta, centred_intercept(
                beta, sigma * float(x[d]), c) if fit_intercept else b_fixed, lower,
                gap_tol), lower)

        point, F, certified, evaluated, lower = certify(
            point_of, solved, lambda P=P, q=q, A=A, rhs=rhs, cones=cones: conic.solve_again(
                q, A, rhs, cones, gap_tol / kappa, P=P), gap_tol)
        passes += evaluated
        if certified:
            return (point, F, max(F - lower, 0.0), passes, True), lower
        best = lower_of(best, point, F)
        _, b, t, Xb = point
        r = y - (engine.fetch(Xb)[0] + b)
        # far samples whose linear pieces no longer equal their terms
        moved = np.flatnonzero(_off_pieces(model, s, r, t) & ~near)
        # (unlike the hinge's, no limit on the fraction that moves: a point whose near
        # set is the least one, the continuation's last, left 6x that many on the
        # wrong side, and the next program certified)
        if not moved.size or idx.size + moved.size > cap:
            break  # the split holds (the solve was not accurate enough), or too many
        if not program_pays_for(model, idx.size + moved.size, work):
            # the grown program is budgeted as the first: along a Huber path on
            # make_regression 2000 x 200 a predicted point's split was off by ~2400
            # samples, and programs of 4000 ran at once, 2-8 s a radius where FISTA's
            # iterations and a later try cost less (the path 69 -> 49 s)
            break
        g_beta = g_beta + _far_gradient_change(model, moved, u)
        u[moved], near[moved] = 0.0, True
    return uncertified(state, best, passes)
