"""Gaussian eps paths by an active-set method on the loss's quadratic pieces.

With the squared loss and a shift that is a weighted l1 norm, t = eps sum_j a_j |beta_j|
(``Linf``, ``WeightedLinf``, ``Group`` with p = inf and their ``Masked`` versions; a_j =
0 for a free coordinate), the robust objective is, with r = y - X beta - b, W = sum_i w_i
and rho = sum_i w_i |r_i| (since (|r| + t)^2 = r^2 + 2 t |r| + t^2),

.. math::

    F(\\beta, b) = \\sum_i w_i [\\alpha r_i^2 / 2 + (1 - \\alpha) (|r_i| + t)^2 / 2]
                 = \\tfrac12 \\sum_i w_i r_i^2 + (1 - \\alpha) (t \\rho + W t^2 / 2).

F is convex and piecewise quadratic: on a *piece*, the samples' residual signs s_i and
the coefficients' signs sigma_j fixed, rho = sum w_i s_i r_i and t = g^T z are linear in
z = (beta_C, b) (g = eps a_C sigma_C, C the nonzero and free coordinates). A *face* of
it also holds the samples Z at their kinks (r_i = 0) and the other coordinates at zero.
Its minimiser is one linear (KKT) system,

.. math::

    \\begin{pmatrix} H & \\tilde X_Z^\\top \\\\ \\tilde X_Z & 0 \\end{pmatrix}
    \\begin{pmatrix} z \\\\ \\lambda \\end{pmatrix} =
    \\begin{pmatrix} c \\\\ y_Z \\end{pmatrix}, \\quad
    H = G_{CC} + (1 - \\alpha)(W g g^\\top - g m^\\top - m g^\\top), \\quad
    c = \\tilde X_C^\\top (w \\circ y) - (1 - \\alpha)\\, g\\, (\\bar s^\\top (w \\circ y)),

G = X~^T diag(w) X~ (X~ = [X, 1]), m = X~_C^T (w o s-bar), s-bar = s off Z and 0 on Z
(the Z rows' r^2 / 2 and their part of the bilinear term vanish on the face), solved by
the null-space method (``_Face``: B^T = X~_Z^T = Q_1 R_1, its null space Q_2; the QR
factors kept by updates as samples and coordinates come and go). Where it is also F's
minimiser the exact problem's subgradient conditions hold (``_subgradient``): a pinned
sample's multiplier gives its subgradient u_i = -lambda_i / ((1 - alpha) w_i t) of |r_i|,
which must lie in [-1, 1], and an off-support coordinate's correlation h_j =
x_j^T (w o (r + (1 - alpha) t u)) must not exceed (1 - alpha) eps a_j (rho + W t).

The method (a primal active-set method on the pieces, as the simplex method walks a
polyhedron's vertices): from the previous radius's solution, its samples at their kinks
and its support, each iteration solves the face's KKT system and searches the segment to
its minimiser exactly (``_line_search``: along it F is quadratic between the breakpoints
where a residual or a coefficient changes sign, so its derivative is piecewise linear
and the first zero is found by cumulative sums). Samples and coefficients the step takes
across their kinks change sides; one it stops at joins Z or leaves the support. Where the
step reaches the face's minimiser, pinned samples whose multipliers exceed their bounds
are released and violated coordinates enter (all at once; where that direction does not
descend, the single worst one). F never rises, and the answer is certified by the
subgradient conditions recomputed from the returned point (``_certified``).

Each iteration costs one product X~ p, O(n) for the search, and O(k^2 f) for the face
(k = |C| + 1 unknowns, f = k - |Z| the face's dimension: at a vertex, f = 0, its
minimiser is the point itself and no search is made). This is the
homotopy that high signal-to-noise paths need: on make_regression 2000 x 200 (noise 5)
the solutions are saturated (about one sample at its kink per unknown) on most radii,
where the smoothed first-order solves and the pinned step (``kinks.py``) need the
reduced conic program (``linear_pieces.py``, 0.35-0.56 s a radius, docs/performance.md).
"""

from __future__ import annotations

import time

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from ..families import Gaussian
from ..problem import robust_objective
from ..result import Certificate, Result

# (samples with |r| <= KINK_TOL (1 + max |y|) at the start are taken as pinned, as the
# solver's kink share counts them: a wrong guess costs iterations, not correctness, a
# pinned sample whose multiplier exceeds its bound being released, a free one the step
# meets pinned)
from .newton import _WeightedL1, manifold_of
from .solver import KINK_TOL, _kink_share, shift_set

# a vertex's step to its own minimiser (the pinned residuals' rounding) up to this
# relative length is none
VERTEX_STEP = 1e-12
# a step is clean (it reached the face's minimiser) from this relative length on
CLEAN_RTOL = 1e-9
# residuals within this (1 + max |y|) of zero are at their kinks to rounding
EXACT = 1e-12
# iterations allowed per unknown (coefficient and intercept) before the method gives up
# (the path then solves the radius as a cold start would: ``follow`` returns None). The
# saturated radii of make_regression 2000 x 200 take 400-880 (each a pivot: most pin
# one sample or release the violated ones; a sample is pinned and released up to ten
# times on one radius); at 4 per unknown one or two of them ran out and cost their
# iterations and a regular solve (the path 6.5 s, at 6 per unknown 5.5 s). Releasing
# only the most violated sample at a time (the simplex method's rule) took more
# iterations where many coordinates enter (radii 6-7: 983 and 1532 against 98 and 176)
ITERATIONS_PER_UNKNOWN = 6
MIN_ITERATIONS = 20
# relative slack of the subgradient bounds in the release and entering tests
BOUND_RTOL = 1e-9
_GRAM = "active_set_gram"
# repeated samples are merged on dense X of at most this many entries (``_Data``)
MERGE_ENTRIES = 10_000_000


# an eps path follows its radii by this method where n <= SAMPLES_PER_UNKNOWN (d + 1):
# its iterations cost a product X~ p and O(n) work each, and the changes of the active
# set between neighbouring radii grow with n; 50-radius paths (benchmarks/bench_path.py,
# one thread, against the tree before) took the same time at n = 2000, d = 20 (0.11 s)
# and n = 5000, d = 50 (0.14-0.15 s), longer at n = 2e4, d = 20 (0.21 -> 0.25 s) and at
# n = 1e5, d = 50 (1.7 -> 5.1 s: 4-67 iterations a radius of ~7 ms, where FISTA and the
# pinned step took 2-10 iterations), and far less where the solutions are saturated:
# make_regression 2000 x 200 (noise 5) 20 -> 6.0 s, 1000 x 20 0.71 -> 0.26 s, the
# diabetes data 0.09 -> 0.04 s
SAMPLES_PER_UNKNOWN = 200
# consecutive radii it may fail to certify before the path stops trying it
FAILURES = 2
# A radius is followed from a solution with at least FOLLOW_SHARE samples at their kinks
# per unknown (nearly a vertex: saturated, where the regular warm solve needs the
# reduced conic program, ``solver.SATURATED``), or from one the method itself reached
# in at most CHEAP_PER_UNKNOWN (d + 1) iterations. Elsewhere the regular warm solve
# (the pinned step from the predicted point, which changes many samples a pass) took
# less: AR(1) columns, n = 2000, d = 50, rho = 0.9, 50 radii 0.15 s where every radius
# followed took 0.22-0.24 s (10-67 pivots a radius, ~0.35 ms each, against 4-8 passes of
# ~0.5 ms); n = 5000, d = 50, rho = 0.6, 0.13 against 0.21 s
FOLLOW_SHARE = 0.5
CHEAP_PER_UNKNOWN = 0.25


def covers(prob):
    """True where ``follow`` applies: the gaussian loss (alpha < 1) with a weighted-l1
    shift, no penalty or constraints, X a float64 numpy array or scipy.sparse matrix."""
    if type(prob.family) is not Gaussian or prob.alpha >= 1.0 or prob.penalty is not None \
            or prob.constraints is not None or not prob.on_host \
            or prob.X.dtype != np.float64:
        return False
    return _weights(prob) is not None


def pays(prob):
    """Whether an eps path of ``prob`` (``covers``) may follow its radii by this method:
    n <= SAMPLES_PER_UNKNOWN (d + 1)."""
    return prob.n_samples <= SAMPLES_PER_UNKNOWN * (prob.n_features + 1)


def follows(prob, last):
    """Whether the next radius of a path of ``prob`` (``pays``) is followed from its
    last Result ``last``: reached by the method in at most CHEAP_PER_UNKNOWN (d + 1)
    iterations, or with FOLLOW_SHARE samples at their kinks per unknown (nonzero
    coefficients and the intercept; one product X beta)."""
    d = prob.n_features
    if last.solver == "active-set" and last.n_iter <= CHEAP_PER_UNKNOWN * (d + 1):
        return True
    return _kink_share(prob, last.coef, _data(prob).predictor(last)) >= FOLLOW_SHARE


def _weights(prob):
    """The shift's weights a (t = eps sum_j a_j |beta_j|), or None for another shift."""
    try:
        structure = manifold_of(shift_set(prob), prob.n_features)
    except NotImplementedError:
        return None
    # (exactly the weighted l1 norm: a box's orthant, a subclass, has two shifts)
    return structure.a if type(structure) is _WeightedL1 else None


class _Data:
    """What every radius of a path shares (cached on the problem): X~ = [X, 1] (the
    column of ones only with an intercept) as products, its weighted Gram matrix G and
    X~^T (w o y).

    Samples repeated exactly (the same row of X and the same response) are one sample
    of their summed weight (``inverse`` maps the samples to them; None where none
    repeat): F is the same, and a face's constraints stay independent (two copies at
    their kink are one constraint twice, which left the method no face to solve on data
    with repeated rows). Looked for on dense X of at most MERGE_ENTRIES entries (the
    search sorts a copy of [X, y])."""

    def __init__(self, prob):
        X, y, w = prob.X, np.asarray(prob.y, dtype=np.float64), prob.sample_weight
        self.X_all = X  # (the problem's: ``predictor``)
        self.first = self.inverse = None
        self._memo = (None, None)
        if not sp.issparse(X) and X.size <= MERGE_ENTRIES:
            rows = np.ascontiguousarray(np.column_stack([X, y]))
            keys = rows.view(np.dtype((np.void, rows.itemsize * rows.shape[1]))).ravel()
            _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
            if len(first) < len(y):
                X, y = X[first], y[first]
                w = np.bincount(inverse.ravel(), weights=w, minlength=len(first))
                self.first, self.inverse = first, inverse.ravel()
        self.X, self.y, self.w = X, y, w
        self.n, self.d = X.shape
        self.intercept = bool(prob.fit_intercept)
        self.W = float(w.sum())
        k = self.d + int(self.intercept)
        self.G = np.empty((k, k))
        self.G[:self.d, :self.d] = _gram(X, w)
        self.Xty = self.transpose_times(w * y)
        if self.intercept:
            col = self.transpose_times(w)  # (X^T w, W): the intercept's column of G
            self.G[:, self.d] = self.G[self.d, :] = col
        # weighted column RMS: the residual's units (coefficients of standardised columns;
        # 1 for a zero column, whose gradient is 0)
        rms = np.sqrt(np.maximum(np.diag(self.G), 0.0) / max(self.W, 1e-300))
        self.rms = np.where(rms > 0, rms, 1.0)
        self.y_scale = 1.0 + float(np.max(np.abs(y))) if self.n else 1.0
        self.all_cols = np.arange(self.d + 1)  # (column d: ones, as rows() gives it)

    def predictor(self, result):
        """X beta + b of a Result on the problem's samples (one product; kept for the
        last Result asked: a path's rule and its step ask for the same one)."""
        if self._memo[0] is not result:
            coef = np.asarray(result.coef, dtype=np.float64)
            eta = np.asarray(self.X_all @ coef).ravel()
            self._memo = (result, eta + result.intercept if self.intercept else eta)
        return self._memo[1]

    def times(self, cols, v):
        """X~[:, cols] v (cols over the d + 1 columns of X~; a product with all of X
        costs less than gathering the columns)."""
        full = np.zeros(self.d + 1)
        full[cols] = v
        return np.asarray(self.X @ full[:self.d]).ravel() + full[self.d]

    def rows(self, Z, cols):
        """The dense block X~[Z, cols] (column d of X~: ones)."""
        block = np.ones((len(Z), len(cols)))
        beta = cols < self.d
        part = self.X[Z][:, cols[beta]]
        block[:, beta] = part.toarray() if sp.issparse(part) else part
        return block

    def transpose_times(self, u):
        """X~^T u (d + 1 entries with an intercept)."""
        out = np.asarray(self.X.T @ u).ravel()
        return np.append(out, u.sum()) if self.intercept else out


def _gram(X, w, block=4096):
    """X^T diag(w) X, dense, over blocks of rows (no copy of X)."""
    if sp.issparse(X):
        out = X.T @ sp.diags(w) @ X
        return out.toarray()
    out = np.zeros((X.shape[1], X.shape[1]))
    for start in range(0, X.shape[0], block):
        part = X[start:start + block]
        out += part.T @ (part * w[start:start + block, None])
    return out


def _data(prob):
    out = prob._cache.get(_GRAM)
    if out is None:
        out = prob._cache[_GRAM] = _Data(prob)
    return out


def _line_search(r, q, w, beta, p, e, kappa, W, Z):
    """The exact minimiser over tau in [0, 1] of F(z + tau p) (r -> r - tau q, beta_C ->
    beta_C + tau p, e = eps a_C): tau and the sorted breakpoints' positions and owners.

    rho(tau) = sum w |r - tau q| and t(tau) = sum e |beta + tau p| are piecewise linear
    and convex, with breakpoints where a residual or a coefficient crosses zero; between
    them F'(tau) = -w^T (q o (r - tau q)) + kappa (t' rho + t rho' + W t t') is linear,
    and convex F's derivative is nondecreasing: the first breakpoint or interval where it
    reaches zero holds the minimiser. Returns (tau, kink, T, owner) with ``kink`` True
    where tau is a breakpoint at which F' jumps across zero (its samples or coordinates
    stop at zero there), T the breakpoints before or at tau and ``owner`` their indices
    (samples as i >= 0, coordinates as -1 - j). The pinned samples ``Z`` have none: the
    step keeps them at their kinks (it takes their residuals, zero to rounding, to zero).
    """
    # slopes at tau = 0+: -sign(r) q for r != 0, |q| for r = 0 (a released sample)
    drho = np.where(r != 0, -np.sign(r) * q, np.abs(q))
    dt = np.where(beta != 0, np.sign(beta) * p, np.abs(p))
    hit_s = (r * q > 0) & (np.abs(r) <= np.abs(q)) & (w > 0) & ~Z
    hit_c = (beta * p < 0) & (np.abs(beta) <= np.abs(p)) & (e > 0)
    i_s, i_c = np.flatnonzero(hit_s), np.flatnonzero(hit_c)
    T = np.concatenate([r[i_s] / q[i_s], -beta[i_c] / p[i_c]])
    j_rho = np.concatenate([2.0 * w[i_s] * np.abs(q[i_s]), np.zeros(len(i_c))])
    j_t = np.concatenate([np.zeros(len(i_s)), 2.0 * e[i_c] * np.abs(p[i_c])])
    owner = np.concatenate([i_s, -1 - i_c])
    order = np.argsort(T, kind="stable")
    T, j_rho, j_t, owner = T[order], j_rho[order], j_t[order], owner[order]
    starts = np.concatenate([[0.0], T])
    lengths = np.diff(np.concatenate([starts, [1.0]]))
    rho1 = w @ drho + np.concatenate([[0.0], np.cumsum(j_rho)])
    t1 = e @ dt + np.concatenate([[0.0], np.cumsum(j_t)])
    rho0 = w @ np.abs(r) + np.concatenate([[0.0], np.cumsum(rho1[:-1] * lengths[:-1])])
    t0 = e @ np.abs(beta) + np.concatenate([[0.0], np.cumsum(t1[:-1] * lengths[:-1])])
    a0, a1 = -float(w @ (q * r)), float(w @ (q * q))
    right = a0 + a1 * starts + kappa * (t1 * rho0 + t0 * rho1 + W * t0 * t1)  # F'(start+)
    slope = a1 + kappa * (2.0 * t1 * rho1 + W * t1 * t1)
    left = right + slope * lengths  # F' at each interval's end, from the left
    k = int(np.argmax(left >= 0.0)) if np.any(left >= 0.0) else len(left) - 1
    if right[k] >= 0.0:  # at the interval's start: a kink (or no descent at k = 0)
        tau, kink = starts[k], k > 0
        before = np.searchsorted(T, tau, side="right")
    else:
        tau = min(starts[k] - right[k] / slope[k], starts[k] + lengths[k]) \
            if slope[k] > 0 else starts[k] + lengths[k]
        kink, before = False, k
    return tau, kink, T[:before], owner[:before]


def follow(prob, start, tol=1e-8, max_iter=None):
    """The solution of ``prob`` (``covers``) from a nearby solution ``start`` (a Result,
    the previous radius of a path), by the active-set method above; None where it does
    not certify one within ``max_iter`` iterations (default ITERATIONS_PER_UNKNOWN per
    unknown, at least MIN_ITERATIONS), where a face's system is singular (a face with
    many minimisers: more unknowns than free samples) or where no change of the active
    set descends.

    Returns a Result (backend "fast", solver "active-set") whose certificate's
    ``residual`` is the norm of a subgradient of F at the returned point, recomputed
    from it (the pinned samples' subgradients from the multipliers, clipped to [-1, 1]),
    in units of standardised columns and relative to 1 + |F|; it is returned only where
    that is at most ``tol``.
    """
    clock = time.perf_counter()
    data, a = _data(prob), _weights(prob)
    d, w, y, W = data.d, data.w, data.y, data.W
    kappa, eps = 1.0 - prob.alpha, float(prob.eps)
    # z = (beta, b) over the d + 1 columns of X~ (b = 0 without an intercept); the
    # intercept's column is unpenalised, as a free coordinate (a = 0)
    z = np.append(np.asarray(start.coef, dtype=np.float64),
                  float(start.intercept) if data.intercept else 0.0)
    e = eps * np.append(a, 0.0)  # t = sum_j e_j |z_j|
    eta = data.predictor(start)
    r = y - (eta if data.first is None else eta[data.first])
    Z = (w > 0) & (np.abs(r) <= KINK_TOL * data.y_scale)
    s = np.where(Z, 0.0, np.sign(r))
    sig = np.sign(z)
    face = _Face(data, np.flatnonzero((z[:d] != 0) | (a == 0)), np.flatnonzero(Z))
    if face.Q is None:
        return None
    m = data.transpose_times(w * s)  # X~^T (w o s-bar): s-bar = s off Z, 0 on Z
    if not data.intercept:
        m = np.append(m, 0.0)
    sy = float((w * s) @ y)
    cap = max_iter if max_iter is not None else \
        max(MIN_ITERATIONS, ITERATIONS_PER_UNKNOWN * (d + 1))
    saved, changed = None, False  # the face before a batch of changes; a face changed
    lam, converged, it = None, False, 0
    while it < cap:
        it += 1
        cols, Zi = face.cols, face.samples
        g = e[cols] * sig[cols]  # t = g^T z on the piece
        step = face.minimiser(z[cols], r[Zi], g, m[cols], sy, kappa)
        if step is None:
            return None
        p, lam = step
        if len(Zi) == len(cols) and np.max(np.abs(p), initial=0.0) <= VERTEX_STEP * (
                1.0 + np.max(np.abs(z[cols]), initial=0.0)):
            # a vertex (as many pinned samples as unknowns) the last step reached: its
            # own minimiser, no step to search (half the iterations of a long radius)
            tau, kink, T, owner = 0.0, False, np.zeros(0), np.zeros(0, dtype=int)
        else:
            q = data.times(cols, p)
            tau, kink, T, owner = _line_search(r, q, w, z[cols], p, e[cols], kappa, W, Z)
        stalled = tau <= 0.0  # (at the face's minimiser already, or a change that
        if stalled and changed:  # does not descend)
            if saved is None:
                return None  # a single change of the active set that does not descend
            face, Z, s, sig, m, sy, worst = saved  # the batch did not: its worst change
            Z, s, sig = Z.copy(), s.copy(), sig.copy()
            m, sy = _apply(data, face, worst, Z, s, sig, m, sy, w, y)
            saved = None
            continue
        changed, saved = False, None
        if not stalled:
            # a clean step reaches the face's minimiser: no breakpoint before it (an
            # earlier minimum along the segment, none crossed, means the piece's signs
            # were not the point's: the signs below are updated and the face solved
            # again)
            clean = len(owner) == 0 and not kink and tau >= 1.0 - CLEAN_RTOL
            step_length = 1.0 if clean else tau
            z[cols] += step_length * p
            r -= step_length * q
            at = T == tau if kink else np.zeros(len(T), dtype=bool)
            pinned = owner[(owner >= 0) & at]
            zeroed = cols[-1 - owner[(owner < 0) & at]]
            z[zeroed] = 0.0
            for j in zeroed:
                face.drop(j)
            for i in pinned:
                face.pin(i)
            if face.Q is None:
                return None
            s_old = s.copy()
            Z[pinned] = True
            s[pinned] = 0.0
            moved = np.flatnonzero(~Z & (r != 0) & (np.sign(r) != s))  # (crossed)
            s[moved] = np.sign(r[moved])
            flips = np.concatenate([pinned, moved])
            m, sy = _shift_signs(data, flips, s[flips] - s_old[flips], m, sy, w, y)
            sig = np.where(z != 0, np.sign(z), sig)
            if not clean or len(moved):
                continue
        # the face's minimiser: release the pinned samples whose multipliers exceed their
        # bounds, enter the violated coordinates
        t = float(g @ z[cols])
        _, h, bound = _subgradient(data, r, s, Zi, lam, t, kappa, e[:d], w)
        over_Z = np.abs(lam) - kappa * w[Zi] * t * (1.0 + BOUND_RTOL)
        inC = np.zeros(d + 1, dtype=bool)
        inC[cols] = True
        over_C = np.where(~inC[:d], np.abs(h[:d]) - bound * (1.0 + BOUND_RTOL), -np.inf)
        release = over_Z > 0  # (positions in Zi)
        enter = np.flatnonzero(over_C > 0)
        if not release.any() and len(enter) == 0:
            converged = True
            break
        # (relative violations: the worst one alone where the batch does not descend)
        rel = np.concatenate([over_Z[release] / np.maximum(kappa * w[Zi[release]] * t,
                                                           1e-300),
                              over_C[enter] / np.maximum(bound[enter], 1e-300)])
        changes = (Zi[release], -np.sign(lam[release]), enter, np.sign(h[enter]))
        worst = _one(changes, int(np.argmax(rel)))
        if len(rel) > 1:
            saved = (face.copy(), Z.copy(), s.copy(), sig.copy(), m.copy(), sy, worst)
        m, sy = _apply(data, face, changes, Z, s, sig, m, sy, w, y)
        if face.Q is None:
            return None
        changed = True
    if not converged:
        return None
    return _certified(prob, data, z, face.samples, lam, s, a, kappa, eps, tol, it, clock)


class _Face:
    """The face's unknowns ``cols`` (columns of X~, the intercept first) and pinned
    ``samples``, with the QR factors of B^T = X~[samples, cols]^T (k x |Z|), kept by
    updates (``scipy.linalg.qr_insert`` / ``qr_delete``, O(k^2) each) as samples are
    pinned and released and coordinates enter and leave. ``Q`` is None where the
    constraints are dependent (|Z| > k, or a tiny diagonal of R)."""

    def __init__(self, data, coords, samples):
        self.data = data
        first = [data.d] if data.intercept else []
        self.cols = np.concatenate([first, coords]).astype(int)
        self.samples = np.asarray(samples, dtype=int)
        Bt = data.rows(self.samples, self.cols).T
        self.Q, self.R = scipy.linalg.qr(Bt)
        self._G = None
        self._check()

    def copy(self):
        out = object.__new__(_Face)
        out.__dict__.update(self.__dict__)
        return out  # (the arrays are replaced, never changed in place)

    def _check(self):
        nz = len(self.samples)
        if nz > len(self.cols):
            self.Q = None
        elif nz:
            diag = np.abs(np.diag(self.R[:nz, :nz]))
            if diag.min() <= 1e-10 * max(diag.max(), 1e-300):
                self.Q = None

    def pin(self, i):
        if self.Q is None:
            return
        u = self.data.rows(np.array([i]), self.cols)[0]
        self.Q, self.R = scipy.linalg.qr_insert(self.Q, self.R, u, len(self.samples),
                                                which="col", check_finite=False)
        self.samples = np.append(self.samples, i)
        self._check()

    def release(self, i):
        if self.Q is None:
            return
        k = int(np.flatnonzero(self.samples == i)[0])
        self.samples = np.delete(self.samples, k)
        if len(self.samples) == 0:
            self.Q, self.R = np.eye(len(self.cols)), np.zeros((len(self.cols), 0))
        else:
            self.Q, self.R = scipy.linalg.qr_delete(self.Q, self.R, k, 1, which="col",
                                                    check_finite=False)

    def enter(self, j):
        if self.Q is None:
            return
        row = self.data.rows(self.samples, np.array([j]))[:, 0]
        k = len(self.cols)
        self.Q, self.R = scipy.linalg.qr_insert(self.Q, self.R, row, k, which="row",
                                                check_finite=False)
        self.cols = np.append(self.cols, j)
        self._G = None
        self._check()

    def drop(self, j):
        if self.Q is None:
            return
        k = int(np.flatnonzero(self.cols == j)[0])
        self.cols = np.delete(self.cols, k)
        self._G = None
        self.Q, self.R = scipy.linalg.qr_delete(self.Q, self.R, k, 1, which="row",
                                                check_finite=False)
        self._check()

    def minimiser(self, zc, rZ, g, m, sy, kappa):
        """(p, lambda): the step from ``zc`` to the face's minimiser, and the pinned
        samples' multipliers there, or None where its reduced Hessian is singular.

        B p = r_Z puts the pinned samples on their kinks (p_r = Q_1 R_1^{-T} r_Z, B^T =
        Q_1 R_1), and along the null space N = Q_2 of B the quadratic's minimiser is
        v = -(N^T H N)^{-1} N^T (grad + H p_r); then B^T lambda = -grad F(z + p)."""
        data, nz = self.data, len(self.samples)
        cols = self.cols
        if self._G is None:  # (G_CC changes only with the unknowns)
            self._G = data.G[np.ix_(cols, cols)]
        G = self._G

        def H(v):  # H v, H = G_CC + kappa (W g g^T - g m^T - m g^T) not formed
            gv, mv = g @ v, m @ v
            return G @ v + kappa * (np.multiply.outer(g, data.W * gv - mv)
                                    - np.multiply.outer(m, gv))

        grad = H(zc) - data.Xty[cols] + kappa * g * sy
        Q1, Q2, R1 = self.Q[:, :nz], self.Q[:, nz:], self.R[:nz, :nz]
        p = Q1 @ scipy.linalg.solve_triangular(R1, rZ, trans="T", check_finite=False) \
            if nz else np.zeros(len(cols))
        if Q2.shape[1]:
            try:
                chol = scipy.linalg.cho_factor(Q2.T @ H(Q2), check_finite=False)
            except np.linalg.LinAlgError:
                return None
            p = p - Q2 @ scipy.linalg.cho_solve(chol, Q2.T @ (grad + H(p)),
                                                check_finite=False)
        lam = -scipy.linalg.solve_triangular(R1, Q1.T @ (grad + H(p)), check_finite=False) \
            if nz else np.zeros(0)
        if not (np.all(np.isfinite(p)) and np.all(np.isfinite(lam))):
            return None
        return p, lam


def _shift_signs(data, idx, delta, m, sy, w, y):
    """(m, sy) after the samples ``idx`` changed s-bar by ``delta``."""
    if len(idx) == 0:
        return m, sy
    v = w[idx] * delta
    return m + data.rows(idx, data.all_cols).T @ v, sy + float(v @ y[idx])


def _one(changes, k):
    """The k-th change alone of ``changes`` (releases first, then entries)."""
    release, sides, enter, signs = changes
    n = len(release)
    if k < n:
        return release[k:k + 1], sides[k:k + 1], enter[:0], signs[:0]
    return release[:0], sides[:0], enter[k - n:k - n + 1], signs[k - n:k - n + 1]


def _apply(data, face, changes, Z, s, sig, m, sy, w, y):
    """Release the samples (to the sides given) and enter the coordinates (with the
    signs given) of ``changes`` (in ``face`` too); the updated (m, sy)."""
    release, sides, enter, signs = changes
    Z[release] = False
    s[release] = sides
    sig[enter] = signs
    for i in release:
        face.release(i)
    for j in enter:
        face.enter(j)
    return _shift_signs(data, release, sides, m, sy, w, y)


def _subgradient(data, r, s, Zi, lam, t, kappa, e, w):
    """(u, h, bound): the samples' subgradients of |r_i| (s off Z; on the pinned
    samples ``Zi`` from their multipliers, -lambda_i / (kappa w_i t), clipped to
    [-1, 1]), the correlations h = X~^T (w o (r + kappa t u)) and the coordinates'
    bounds kappa e (rho + W t) (e = eps a)."""
    u = s.copy()
    if len(Zi):
        u[Zi] = np.clip(-lam / np.maximum(kappa * w[Zi] * t, 1e-300), -1.0, 1.0)
    h = data.transpose_times(w * (r + kappa * t * u))
    rho = float(w @ np.abs(r))
    bound = kappa * e * (rho + data.W * t)
    return u, h, bound


def _certified(prob, data, z, Zi, lam, s, a, kappa, eps, tol, n_iter, clock):
    """The Result at z = (beta, b), or None where its subgradient residual (recomputed
    from the point: a fresh X beta) exceeds ``tol``. ``s``: the sides of the samples
    off Z, which count for those that a step left at their kinks to rounding (|r| <=
    ``EXACT`` (1 + max |y|): a sample whose breakpoint the step ended at, not pinned; its
    |r| is then within rounding of 0, where any u in [-1, 1] is a subgradient)."""
    d, w = data.d, data.w
    beta, b = z[:d], float(z[d])
    r = data.y - np.asarray(data.X @ beta).ravel() - b
    t = eps * float(a @ np.abs(beta))
    side = np.where(np.abs(r) <= EXACT * data.y_scale, s, np.sign(r))
    _, h, bound = _subgradient(data, r, side, Zi, lam, t, kappa, eps * a, w)
    # dF/dbeta_j = -h_j + bound_j v_j, v_j = sign(beta_j) on the support, in [-1, 1] off
    # it (the closest choice: the residual of an off-support coordinate is the excess)
    on = beta != 0
    grad = np.where(on, -h[:d] + bound * np.sign(beta), np.sign(h[:d]) *
                    np.maximum(np.abs(h[:d]) - bound, 0.0))
    if data.intercept:
        grad = np.append(grad, -h[d])  # (dF/db = -sum_i w_i (r_i + kappa t u_i))
    own = 0.5 * float(w @ (r * r)) + kappa * (t * float(w @ np.abs(r)) + data.W * t * t / 2)
    # (per standardised column: dF/d(rms_j beta_j) = (dF/dbeta_j) / rms_j)
    residual = float(np.linalg.norm(grad / data.rms[:len(grad)])) / (1.0 + abs(own))
    if not residual <= tol:
        return None
    eta = data.y - r  # (X beta + b, for each sample of the problem: ``_Data.inverse``)
    objective = robust_objective(prob, beta, b,
                                 eta=eta if data.inverse is None else eta[data.inverse])
    engine = prob.engine.name
    certificate = Certificate(backend="fast", solver="active-set", status="optimal",
                              objective_numpy=objective, objective_solver=own,
                              residual=residual, engine=engine)
    return Result(coef=beta, intercept=b if prob.fit_intercept else 0.0,
                  objective=objective, status="optimal", backend="fast",
                  solver="active-set", n_iter=n_iter,
                  solve_time=time.perf_counter() - clock, certificate=certificate,
                  engine=engine, eps=prob.eps, alpha=prob.alpha)
