"""Perturbation sets S (the attacker's budget) and their support functions.

The attacker moves an input x to x + delta with delta in eps * S, S compact, convex
and containing 0. For a linear predictor the inner maximisation is closed-form
(docs/theory.md §2):

.. math:: \\max_{\\delta \\in \\epsilon S} \\delta^\\top \\beta = \\epsilon\\, \\sigma_S(\\beta),

the support function of S; for a norm ball S = {||delta|| <= 1} it is the dual norm
||beta||_*. The reachable predictors form the interval
``[eta - eps sigma_S(-beta), eta + eps sigma_S(beta)]`` (symmetric sets: both ends
``eps ||beta||_*``).

Each set gives ``support`` (numpy; ``dual_norm`` is the same function), ``support_cvx``
(a convex cvxpy expression), ``argmax_delta(beta, eps)`` (a maximiser of delta^T beta
over eps*S: the attacker's move), ``shifts(beta, eps)`` and, for symmetric sets,
``norm(v)`` (the gauge of S, i.e. the norm whose dual is ``support``), used by eps_max.
"""

from __future__ import annotations

import warnings

import cvxpy as cp
import numpy as np
from cvxpy.transforms.suppfunc import SuppFunc
from scipy.optimize import brentq

from ._validation import check_exponent, check_vector, resolve


def conjugate_exponent(p):
    """q with 1/p + 1/q = 1 (1 <-> inf)."""
    if p == 1:
        return np.inf
    if np.isinf(p):
        return 1.0
    return p / (p - 1.0)


def lp_norm(v, p):
    """||v||_p for p in [1, inf] (0 for an empty vector).

    Computed as m ||v / m||_p with m = max_j |v_j| (homogeneity): the powers |v_j / m|^p
    lie in [0, 1], where |v_j|^p itself overflows for large p (2^1024 = inf: p = 1000
    with |v_j| = 2) and underflows for small |v_j|.
    """
    v = np.abs(np.asarray(v, dtype=float))
    if not v.size:
        return 0.0
    # p = 1, 2, inf directly (np.linalg.norm's own formulas, without its checks: the
    # support of Linf and L2 is taken several times per FISTA iteration)
    if p == 1:
        return float(np.sum(v))
    if p == 2:
        return float(np.sqrt(v @ v))
    if p == np.inf:
        return float(np.max(v))
    m = float(np.max(v))
    if m == 0.0 or not np.isfinite(m):
        return float(np.linalg.norm(v, ord=p))
    return m * float(np.linalg.norm(v / m, ord=p))


def lp_norm_cvx(v, p):
    """||v||_p as a cvxpy atom (rational approximation of p for non-integer p)."""
    if p == 1:
        return cp.norm1(v)
    if np.isinf(p):
        return cp.norm_inf(v)
    if p == 2:
        return cp.norm2(v)
    return cp.pnorm(v, p)


def lp_unit_argmax(beta, q):
    """A maximiser of delta^T beta over the unit ball of the l_p norm dual to l_q.

    Hoelder's equality case: delta_j = sign(beta_j) |beta_j|^(q-1) / ||beta||_q^(q-1)
    (q = 1: delta = sign(beta); q = inf: one signed coordinate of largest |beta_j|).
    """
    beta = np.asarray(beta, dtype=float)
    delta = np.zeros_like(beta)
    scale = np.max(np.abs(beta)) if beta.size else 0.0
    if scale == 0.0:
        return delta
    if q == 1:
        return np.sign(beta)
    if np.isinf(q):
        k = int(np.argmax(np.abs(beta)))
        delta[k] = np.sign(beta[k])
        return delta
    u = np.abs(beta) / scale  # rescale first: |beta|^(q-1) must not overflow for large q
    return np.sign(beta) * u ** (q - 1.0) / np.linalg.norm(u, ord=q) ** (q - 1.0)


def project_l1_ball(v, radius=1.0):
    """Euclidean projection onto {||x||_1 <= radius} (sort-based, O(d log d)).

    Soft-thresholding at the level theta for which the result has l1 norm = radius
    (Duchi, Shalev-Shwartz, Singer, Chandra 2008).
    """
    v = np.asarray(v, dtype=float)
    a = np.abs(v)
    if a.sum() <= radius:
        return v.copy()
    u = np.sort(a)[::-1]
    css = np.cumsum(u) - radius
    k = np.arange(1, u.shape[0] + 1)
    # k = 1 always qualifies (u_1 > u_1 - radius); rounding can hide it when radius is
    # negligible next to u_1, so fall back to it rather than index an empty array
    qualifying = np.nonzero(u > css / k)[0]
    rho = qualifying[-1] if qualifying.size else 0
    theta = css[rho] / (rho + 1.0)
    return np.sign(v) * np.maximum(a - theta, 0.0)


def _lp_coordinates(a, lam, p):
    """z >= 0 with z + lam p z^(p-1) = a, elementwise (p > 1, a >= 0, lam >= 0).

    Newton's method on a convex increasing function from an upper bound of the root,
    which converges monotonically and quadratically: for p >= 2 in z itself
    (z^(p-1) is convex), for 1 < p < 2 in w = z^(p-1) (then z = w^(1/(p-1)) is convex),
    starting from the smaller of the two bounds the equation gives (z <= a and
    lam p z^(p-1) <= a).
    """
    a = np.asarray(a, dtype=float)
    if np.isscalar(lam) and lam <= 0:
        return a.copy()
    k = lam * p
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        if p >= 2.0:  # Newton in z, its powers formed in logs
            return _lp_coordinates_log(a, np.log(k), p)
        # f(w) = w^r + k w - a with r = 1 / (p - 1) > 1, f'(w) = r w^(r-1) + k
        r = 1.0 / (p - 1.0)
        w = np.minimum(a / k, a ** (p - 1.0))
        for _ in range(100):
            step = (w ** r + k * w - a) / (r * w ** (r - 1.0) + k)
            step = np.where(np.isfinite(step), np.maximum(step, 0.0), 0.0)
            w = w - step
            if np.max(step, initial=0.0) <= 4e-16 * max(1.0, float(np.max(w, initial=0.0))):
                break
        return np.maximum(w, 0.0) ** r


def _lp_coordinates_log(a, log_k, p):
    """``_lp_coordinates`` for p >= 2 with k = lam p given by its logarithm: z >= 0 with
    z + k z^(p-1) = a, elementwise (a >= 0).

    For p in the hundreds the epigraph's search needs k far outside double precision:
    z ~ (a / k)^(1/(p-1)) moves by a factor 10 only when k moves by 10^(p-1), so a dual
    ball of radius 1e-2 at p = 250 has k ~ 1e500. Here k z^(p-1) and k z^(p-2) are
    formed as exp(log k + (p-1) log z) and exp(log k + (p-2) log z). Newton's method in
    z (f convex and increasing for p >= 2) from the upper bound min(a, (a / k)^(1/(p-1)))
    converges monotonically, and k z^(p-1) <= a along the way: nothing overflows.
    """
    a = np.asarray(a, dtype=float)
    scale = max(1.0, float(np.max(a, initial=0.0)))
    with np.errstate(divide="ignore", over="ignore", under="ignore", invalid="ignore"):
        log_a = np.log(a)  # -inf at a_j = 0, where z_j = 0
        # (fmin: at a_j = 0 and k = 0 the second bound is NaN, and z_j = a_j = 0)
        z = np.fmin(a, np.exp((log_a - log_k) / (p - 1.0)))
        for _ in range(200):
            log_z = np.log(z)
            power = np.exp(log_k + (p - 1.0) * log_z)  # k z^(p-1)
            slope = 1.0 + (p - 1.0) * np.exp(log_k + (p - 2.0) * log_z)
            step = (z + power - a) / slope
            step = np.where(np.isfinite(step), np.maximum(step, 0.0), 0.0)
            z = z - step
            if np.max(step, initial=0.0) <= 4e-16 * scale:
                break
    return np.maximum(z, 0.0)


def prox_support(perturbation, v, c):
    """prox of c * sigma_S at v, for a symmetric S with a Euclidean projection.

    Moreau's decomposition: the conjugate of c sigma_S is the indicator of c S, so

    .. math:: \\mathrm{prox}_{c\\,\\sigma_S}(v) = v - P_{cS}(v) = v - c\\,P_S(v / c).
    """
    if c <= 0:
        return v
    return v - c * perturbation.project(v / c)


def project_lp_ball(v, p):
    """Euclidean projection onto the unit l_p ball, p in [1, inf].

    Closed form for p in {1, 2, inf}; otherwise the KKT conditions give
    x_j = sign(v_j) z_j(lam) with z + lam p z^(p-1) = |v_j| and lam > 0 the root of
    sum_j z_j(lam)^p = 1 (a decreasing function), found by Brent's method.
    """
    v = np.asarray(v, dtype=float)
    if np.isinf(p):
        return np.clip(v, -1.0, 1.0)
    if p == 2:
        nv = np.linalg.norm(v)
        return v / nv if nv > 1.0 else v.copy()
    if p == 1:
        return project_l1_ball(v)
    if lp_norm(v, p) <= 1.0:
        return v.copy()
    a = np.abs(v)

    def excess(lam):
        return float(np.sum(_lp_coordinates(a, lam, p) ** p)) - 1.0

    hi = 1.0
    while excess(hi) > 0.0:
        hi *= 4.0
    lam = brentq(excess, 0.0, hi, xtol=1e-15 * hi, rtol=4 * np.finfo(float).eps)
    return np.sign(v) * _lp_coordinates(a, lam, p)


class Perturbation:
    """Base class of a perturbation set S (radius 1; the attacker uses eps * S).

    A set is described by its support function, which turns the attacker's inner
    maximisation into a shift of the linear predictor:

    .. math::

        \\sigma_S(\\beta) = \\sup_{\\delta \\in S} \\delta^\\top\\beta, \\qquad
        \\{(x + \\delta)^\\top\\beta : \\delta \\in \\epsilon S\\}
        = [x^\\top\\beta - \\epsilon\\sigma_S(-\\beta),\\;
           x^\\top\\beta + \\epsilon\\sigma_S(\\beta)].

    For a norm ball sigma_S is the dual norm. Subclasses provide ``support`` (numpy),
    ``support_cvx`` (cvxpy), ``unit_argmax`` (the attacker's move), ``norm`` (the gauge
    of S) and, where it has a closed form, ``project`` (for the fast backend).

    Examples
    --------
    >>> import numpy as np, fgsm_cvx as fc
    >>> beta = np.array([3.0, -4.0])
    >>> fc.Linf().support(beta), fc.L2().support(beta), fc.L1().support(beta)
    (7.0, 5.0, 4.0)
    >>> fc.Linf().argmax_delta(beta, eps=0.1)               # eps * sign(beta)
    array([ 0.1, -0.1])
    """

    name = "perturbation"
    #: True when S = -S: then sigma_S(-beta) = sigma_S(beta) and one shift suffices.
    symmetric = True

    def check_dim(self, d):
        """Raise ValueError if the set cannot act on d features."""

    def support(self, beta):  # pragma: no cover - abstract
        """sigma_S(beta) = max_{delta in S} delta^T beta (numpy)."""
        raise NotImplementedError

    def dual_norm(self, beta):
        """The dual norm ||beta||_* (for symmetric sets; the support function otherwise)."""
        return self.support(beta)

    def support_cvx(self, beta):  # pragma: no cover - abstract
        raise NotImplementedError

    def dual_norm_cvx(self, beta):
        return self.support_cvx(beta)

    def unit_argmax(self, beta):  # pragma: no cover - abstract
        """A maximiser of delta^T beta over S (radius 1)."""
        raise NotImplementedError

    def argmax_delta(self, beta, eps):
        """The attacker's move: delta in eps*S with delta^T beta = eps * sigma_S(beta)."""
        return eps * self.unit_argmax(np.asarray(beta, dtype=float))

    def shifts(self, beta, eps):
        """(up, down): the predictor interval is [eta - down, eta + up]."""
        up = eps * self.support(beta)
        down = up if self.symmetric else eps * self.support(-np.asarray(beta, dtype=float))
        return up, down

    def norm(self, v):  # pragma: no cover - abstract
        """The gauge of S: min{r >= 0 : v in r S} (inf if v is in no multiple of S)."""
        raise NotImplementedError

    def project(self, v):
        """Euclidean projection of v onto S (radius 1), used by the fast path."""
        raise NotImplementedError(f"{type(self).__name__} has no closed-form projection")

    def immutable(self, d):
        """A basis of the directions the attacker cannot move, span(S)^perp: a (d, k)
        array of orthonormal columns (k = 0 where S spans R^d), or None where the set
        cannot tell.

        Every beta in it has sigma_S(beta) = sigma_S(-beta) = 0 (delta^T beta = 0 for
        every delta in S): along it the robust loss is the clean one (a Poisson fit with
        zero counts may have no minimiser then, ``_diagnostics.check_poisson_zeros``)."""
        return None

    def spans(self, d):
        """Whether S spans R^d (``immutable`` is empty); None where the set cannot tell."""
        basis = self.immutable(d)
        return None if basis is None else basis.shape[1] == 0

    def __repr__(self):
        return f"{type(self).__name__}()"


def _coordinates(d, which):
    """The unit vectors of the coordinates ``which`` (a boolean mask of length d), as
    the columns of a (d, k) array."""
    return np.eye(d)[:, np.flatnonzero(which)]


class Lp(Perturbation):
    """The l_p ball {||delta||_p <= 1}, p in [1, inf]; support ||beta||_q, 1/p + 1/q = 1."""

    name = "lp"

    def __init__(self, p=2.0):
        self.p = check_exponent(p, "p")  # -inf and NaN are refused, "inf" is accepted
        self.q = conjugate_exponent(self.p)

    def __repr__(self):
        return f"{type(self).__name__}(p={self.p})"

    def support(self, beta):
        return lp_norm(beta, self.q)

    def support_cvx(self, beta):
        return lp_norm_cvx(beta, self.q)

    def unit_argmax(self, beta):
        return lp_unit_argmax(beta, self.q)

    def norm(self, v):
        return lp_norm(v, self.p)

    def project(self, v):
        return project_lp_ball(v, self.p)

    def immutable(self, d):
        return np.zeros((d, 0))  # (a ball of a norm)


class Linf(Lp):
    """FGSM's box {||delta||_inf <= 1}; support ||beta||_1 (the Lasso penalty)."""

    name = "linf"

    def __init__(self):
        super().__init__(np.inf)

    def __repr__(self):
        return "Linf()"


class L2(Lp):
    """The Euclidean ball (fast gradient method, FGM); support ||beta||_2.

    .. math::

        S = \\{\\delta : \\|\\delta\\|_2 \\le 1\\}, \\qquad \\sigma_S(\\beta) = \\|\\beta\\|_2,
        \\qquad \\arg\\max_{\\delta \\in S} \\delta^\\top\\beta = \\beta / \\|\\beta\\|_2.

    Examples
    --------
    >>> import numpy as np, fgsm_cvx as fc
    >>> fc.L2().argmax_delta(np.array([3.0, -4.0]), eps=0.5)
    array([ 0.3, -0.4])
    """

    name = "l2"

    def __init__(self):
        super().__init__(2.0)

    def __repr__(self):
        return "L2()"


class L1(Lp):
    """The cross-polytope {||delta||_1 <= 1}; support ||beta||_inf."""

    name = "l1"

    def __init__(self):
        super().__init__(1.0)

    def __repr__(self):
        return "L1()"


class WeightedLinf(Perturbation):
    """Per-feature budgets {|delta_j| <= s_j}; support sum_j s_j |beta_j| (weighted Lasso).

    A zero scale makes that feature immutable.
    """

    name = "weighted_linf"

    def __init__(self, scales):
        self.scales = check_vector(scales, "scales", nonneg=True)

    def __repr__(self):
        return f"WeightedLinf(scales={self.scales.tolist()})"

    def check_dim(self, d):
        if self.scales.shape[0] != d:
            raise ValueError(f"WeightedLinf scales has length {self.scales.shape[0]}, "
                             f"but X has {d} features")

    def immutable(self, d):
        return _coordinates(d, self.scales == 0)  # (a zero scale: that feature immutable)

    def support(self, beta):
        return float(self.scales @ np.abs(beta))

    def support_cvx(self, beta):
        return cp.norm1(cp.multiply(self.scales, beta))

    def unit_argmax(self, beta):
        return self.scales * np.sign(beta)

    def project(self, v):
        return np.clip(v, -self.scales, self.scales)

    def norm(self, v):
        v = np.abs(np.asarray(v, dtype=float))
        if np.any(v[self.scales == 0] > 0):
            return np.inf
        pos = self.scales > 0
        return float(np.max(v[pos] / self.scales[pos], initial=0.0))


def _index_sets(groups):
    """Normalise a group specification to a list of int arrays (checked disjoint)."""
    arr = None
    if not isinstance(groups, (list, tuple)):
        arr = np.asarray(groups)
    if arr is not None:  # a label per feature; negative labels mark ungrouped features
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError("groups must be a 1-d integer label array (one label per "
                             "feature, negative = not perturbed) or a list of index lists")
        if not np.any(arr >= 0):  # (as an empty list: an empty set moves nothing)
            raise ValueError("groups must contain at least one group: every label is "
                             "negative (no feature is perturbed)")
        return [np.flatnonzero(arr == g) for g in np.unique(arr[arr >= 0])], arr.shape[0]
    sets = []
    for g in groups:
        idx = np.asarray(g)
        if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError("each group must be a nonempty list of integer feature indices")
        if np.any(idx < 0):
            raise ValueError("group indices must be nonnegative")
        sets.append(idx.astype(np.intp))
    if not sets:
        raise ValueError("groups must contain at least one group")
    flat = np.concatenate(sets)
    if np.unique(flat).shape[0] != flat.shape[0]:
        raise ValueError("groups overlap: every feature may belong to at most one group")
    return sets, None


class Group(Perturbation):
    """Per-group budgets {||delta_g||_p <= 1 for every group g}; support sum_g ||beta_g||_q.

    The group-Lasso norm. ``groups`` is a list of disjoint index lists, or an integer label
    per feature; features in no group (negative label, or not listed) are not perturbed.
    """

    name = "group"

    def __init__(self, groups, p=2.0):
        self.groups, self._n_labels = _index_sets(groups)
        self._lp = Lp(p)
        self.p, self.q = self._lp.p, self._lp.q

    def __repr__(self):
        return f"Group(groups={[g.tolist() for g in self.groups]}, p={self.p})"

    def check_dim(self, d):
        if self._n_labels is not None and self._n_labels != d:
            raise ValueError(f"Group labels have length {self._n_labels}, but X has {d} features")
        top = max(int(g.max()) for g in self.groups)
        if top >= d:
            raise ValueError(f"Group index {top} out of range for X with {d} features")

    def immutable(self, d):
        grouped = np.zeros(d, dtype=bool)
        grouped[np.concatenate(self.groups)] = True
        return _coordinates(d, ~grouped)  # (the features in no group)

    def labels(self):
        """(idx, gid): the grouped features, concatenated group by group, and each one's
        group number (computed once)."""
        if not hasattr(self, "_labels"):
            sizes = [g.shape[0] for g in self.groups]
            self._labels = (np.concatenate(self.groups),
                            np.repeat(np.arange(len(self.groups)), sizes))
        return self._labels

    def support(self, beta):
        beta = np.asarray(beta, dtype=float)
        if self.q in (1.0, 2.0):  # vectorised: |beta| summed, or the groups' 2-norms
            idx, gid = self.labels()
            if self.q == 1.0:
                return float(np.abs(beta[idx]).sum())
            return float(np.sqrt(np.bincount(gid, beta[idx] ** 2, len(self.groups))).sum())
        return float(sum(lp_norm(beta[g], self.q) for g in self.groups))

    def support_cvx(self, beta):
        return cp.sum(cp.hstack([lp_norm_cvx(beta[g], self.q) for g in self.groups]))

    def unit_argmax(self, beta):
        beta = np.asarray(beta, dtype=float)
        delta = np.zeros_like(beta)
        for g in self.groups:
            delta[g] = lp_unit_argmax(beta[g], self.q)
        return delta

    def norm(self, v):
        v = np.asarray(v, dtype=float)
        covered = np.zeros(v.shape[0], dtype=bool)
        for g in self.groups:
            covered[g] = True
        if np.any(v[~covered] != 0):
            return np.inf
        return max(lp_norm(v[g], self.p) for g in self.groups)

    def project(self, v):
        v = np.asarray(v, dtype=float)
        out = np.zeros_like(v)  # features in no group are not perturbed
        for g in self.groups:
            out[g] = project_lp_ball(v[g], self.p)
        return out


class Ellipsoid(Perturbation):
    """Mahalanobis ellipsoid {delta = A u : ||u||_2 <= 1}; support ||A^T beta||_2.

    ``A`` has shape (n_features, k). With A = L from a covariance Sigma = L L^T the
    attacker moves along the data's own correlation structure.
    """

    name = "ellipsoid"

    def __init__(self, A):
        try:
            A = np.asarray(A, dtype=float)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"Ellipsoid A must be a finite 2-d numeric array ({exc})") from exc
        if A.ndim != 2 or not np.all(np.isfinite(A)):
            raise ValueError("Ellipsoid A must be a finite 2-d array of shape (n_features, k)")
        self.A = A

    def __repr__(self):
        return f"Ellipsoid(A of shape {self.A.shape})"

    def check_dim(self, d):
        if self.A.shape[0] != d:
            raise ValueError(f"Ellipsoid A has {self.A.shape[0]} rows, but X has {d} features")

    def immutable(self, d):
        # (S spans the range of A; an SVD of A, O(d^2 k): kept, as A is, per instance)
        if getattr(self, "_null", None) is None or self._null[0] is not self.A:
            import scipy.linalg

            self._null = (self.A, scipy.linalg.null_space(self.A.T))
        return self._null[1]

    def support(self, beta):
        return float(np.linalg.norm(self.A.T @ beta))

    def support_cvx(self, beta):
        return cp.norm2(self.A.T @ beta)

    def unit_argmax(self, beta):
        u = self.A.T @ beta
        nu = np.linalg.norm(u)
        return self.A @ (u / nu) if nu > 0 else np.zeros(self.A.shape[0])

    def norm(self, v):
        v = np.asarray(v, dtype=float)
        u, *_ = np.linalg.lstsq(self.A, v, rcond=None)  # least-norm u with A u = v
        # (relative to |v|: an absolute floor took v = (0, 1e-12) for a point of the range
        # of A = 1e-12 e_1)
        if np.linalg.norm(self.A @ u - v) > 1e-10 * np.linalg.norm(v):
            return np.inf  # v outside the range of A: unreachable
        return float(np.linalg.norm(u))

    def thin_svd(self):
        """(U, s, V^T) of A = U diag(s) V^T with the zero singular values dropped
        (relative 1e-12), computed once."""
        if not hasattr(self, "_svd"):
            U, sv, Vt = np.linalg.svd(self.A, full_matrices=False)
            keep = sv > 1e-12 * sv.max(initial=0.0)  # (A = 1e-13 I kept no direction)
            self._svd = (U[:, keep], sv[keep], Vt[keep])
        return self._svd

    def project(self, v):
        """argmin ||A u - v|| over ||u|| <= 1, returned as A u (a trust-region problem).

        With the thin SVD A = U diag(s) V^T, u(mu) = V diag(s / (s^2 + mu)) U^T v and
        mu >= 0 is the root of ||u(mu)|| = 1 when the least-squares u is outside the ball.
        """
        U, sv, _ = self.thin_svd()
        c = U.T @ np.asarray(v, dtype=float)

        def unorm(mu):
            return float(np.linalg.norm(sv * c / (sv**2 + mu)))

        mu = 0.0
        if unorm(0.0) > 1.0:
            hi = float(np.max(sv * np.abs(c))) * np.sqrt(sv.shape[0])  # unorm(hi) <= 1
            # (xtol relative to the bracket: mu scales as s^2, and an absolute 1e-14 left
            # A = 1e-13 I's projection 0.5% short)
            mu = brentq(lambda m: unorm(m) - 1.0, 0.0, hi, xtol=1e-14 * hi, rtol=1e-15)
        return U @ (sv**2 * c / (sv**2 + mu))


class Box(Perturbation):
    """Asymmetric box {lower_j <= delta_j <= upper_j}, lower <= 0 <= upper.

    .. math:: \\sigma_S(\\beta) = \\sum_j \\max(u_j \\beta_j, l_j \\beta_j)
              = u^\\top \\beta_+ + (-l)^\\top \\beta_-.

    Scalars broadcast to every feature.
    """

    name = "box"
    symmetric = False

    def __init__(self, lower, upper):
        try:
            self.lower = np.atleast_1d(np.asarray(lower, dtype=float))
            self.upper = np.atleast_1d(np.asarray(upper, dtype=float))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"Box lower and upper must be finite numeric scalars or 1-d "
                             f"arrays ({exc})") from exc
        for name, v in (("lower", self.lower), ("upper", self.upper)):
            if v.ndim != 1 or not np.all(np.isfinite(v)):
                raise ValueError(f"Box {name} must be a finite scalar or 1-d array")
        if np.any(self.lower > 0) or np.any(self.upper < 0):
            raise ValueError("Box needs lower <= 0 <= upper (the set must contain 0)")

    def __repr__(self):
        return f"Box(lower={self.lower.tolist()}, upper={self.upper.tolist()})"

    def check_dim(self, d):
        for name, v in (("lower", self.lower), ("upper", self.upper)):
            if v.shape[0] not in (1, d):
                raise ValueError(f"Box {name} has length {v.shape[0]}, but X has {d} features")

    def _bounds(self, d):
        return np.broadcast_to(self.lower, (d,)), np.broadcast_to(self.upper, (d,))

    def immutable(self, d):
        lower, upper = self._bounds(d)
        return _coordinates(d, (lower == 0) & (upper == 0))  # (that feature immutable)

    def support(self, beta):
        beta = np.asarray(beta, dtype=float)
        lo, hi = self._bounds(beta.shape[0])
        return float(np.sum(np.maximum(hi * beta, lo * beta)))

    def support_cvx(self, beta):
        lo, hi = self._bounds(beta.shape[0])
        # cp.neg(x) = max(-x, 0); both coefficient vectors are >= 0, so this is convex.
        return hi @ cp.pos(beta) + (-lo) @ cp.neg(beta)

    def unit_argmax(self, beta):
        lo, hi = self._bounds(beta.shape[0])
        return np.where(beta > 0, hi, np.where(beta < 0, lo, 0.0))

    def project(self, v):
        lo, hi = self._bounds(np.asarray(v).shape[0])
        return np.clip(v, lo, hi)


class Masked(Perturbation):
    """A base set acting on the features in ``mask`` only; the others are immutable.

    ``mask`` is a boolean array of length n_features or an increasing array of feature
    indices; the base set acts on the masked sub-vector (its dimension parameters, e.g.
    scales, refer to the masked features in increasing order):
    sigma_S(beta) = sigma_base(beta[mask]). Indices out of order or repeated are
    refused: the base's parameters would silently follow the sorted order, not the
    order given.
    """

    name = "masked"

    def __init__(self, base, mask):
        self.base = resolve(base, PERTURBATIONS, "perturbation")
        if not isinstance(self.base, Perturbation):
            raise TypeError("Masked base must be a Perturbation or a perturbation name")
        mask = np.asarray(mask)
        if mask.dtype == bool:
            self._length = mask.shape[0]
            self.indices = np.flatnonzero(mask)
        elif mask.ndim == 1 and (mask.size == 0 or np.issubdtype(mask.dtype, np.integer)):
            self._length = None
            self.indices = mask.astype(np.intp)
            if np.any(self.indices < 0):
                raise ValueError("Masked indices must be nonnegative")
            if np.any(np.diff(self.indices) <= 0):
                raise ValueError(f"Masked indices must be increasing, without repeats (the "
                                 f"base set's parameters refer to the masked features in "
                                 f"increasing order), got {mask.tolist()}; pass "
                                 f"{np.unique(self.indices).tolist()} with the parameters "
                                 f"in that order")
        else:
            raise ValueError("mask must be a boolean array or an array of feature indices")
        self.symmetric = self.base.symmetric

    def __repr__(self):
        return f"Masked({self.base!r}, indices={self.indices.tolist()})"

    def check_dim(self, d):
        if self._length is not None and self._length != d:
            raise ValueError(f"Masked mask has length {self._length}, but X has {d} features")
        if self.indices.size and self.indices.max() >= d:
            raise ValueError(f"Masked index {self.indices.max()} out of range for {d} features")
        self.base.check_dim(self.indices.shape[0])

    def immutable(self, d):
        # the features outside the mask, and the base's own on the masked ones
        inner = self.base.immutable(self.indices.shape[0])
        if inner is None:
            return None
        outside = np.ones(d, dtype=bool)
        outside[self.indices] = False
        embedded = np.zeros((d, inner.shape[1]))
        embedded[self.indices] = inner
        return np.hstack([_coordinates(d, outside), embedded])

    def support(self, beta):
        if self.indices.size == 0:
            return 0.0
        return self.base.support(np.asarray(beta, dtype=float)[self.indices])

    def support_cvx(self, beta):
        if self.indices.size == 0:
            return cp.Constant(0.0)
        return self.base.support_cvx(beta[self.indices])

    def unit_argmax(self, beta):
        beta = np.asarray(beta, dtype=float)
        delta = np.zeros_like(beta)
        if self.indices.size:
            delta[self.indices] = self.base.unit_argmax(beta[self.indices])
        return delta

    def norm(self, v):
        v = np.asarray(v, dtype=float)
        outside = np.ones(v.shape[0], dtype=bool)
        outside[self.indices] = False
        if np.any(v[outside] != 0):
            return np.inf
        return self.base.norm(v[self.indices]) if self.indices.size else 0.0

    def project(self, v):
        v = np.asarray(v, dtype=float)
        out = np.zeros_like(v)  # immutable features: delta_j = 0
        if self.indices.size:
            out[self.indices] = self.base.project(v[self.indices])
        return out


class CustomSet(Perturbation):
    """Any compact convex set containing 0, given by cvxpy constraints.

    ``build(delta)`` receives a cvxpy Variable of shape (n_features,) and returns a list
    of constraints describing S, or one constraint (auxiliary variables are allowed).
    The formulation uses the support function through cvxpy's ``SuppFunc`` (conic
    duality); numpy values and the attacker's move solve the small problem
    max delta^T beta over S.

    Set ``symmetric=True`` only if S = -S (it enables the cheaper single-shift form).
    """

    name = "custom"

    def __init__(self, build, symmetric=False):
        if not callable(build):
            raise TypeError("CustomSet needs a callable build(delta) -> list of constraints")
        self.build = build
        self.symmetric = bool(symmetric)
        self._cache = {}

    def __repr__(self):
        return f"CustomSet({getattr(self.build, '__name__', 'build')}, symmetric={self.symmetric})"

    def __getstate__(self):
        # copies and pickles (scikit-learn's clone deep-copies parameters) leave the
        # cached programs behind: a solved cvxpy problem holds its solver's objects,
        # which cannot be copied; the copy builds its own from ``build``
        return {**self.__dict__, "_cache": {}}

    def _model(self, d):
        """(delta variable, constraints, SuppFunc, LP for numpy support), built once per d."""
        if d not in self._cache:
            delta = cp.Variable(d)
            built = self.build(delta)
            # one constraint alone is accepted, as the coefficients' ``constraints`` are
            if isinstance(built, cp.constraints.constraint.Constraint):
                constraints = [built]
            else:
                try:
                    constraints = list(built)
                except TypeError:  # (None: a build that forgot to return)
                    constraints = []
            if not constraints or not all(isinstance(c, cp.constraints.constraint.Constraint)
                                          for c in constraints):
                raise TypeError("CustomSet's build(delta) must return a cvxpy constraint or "
                                f"a non-empty list of them, got {built!r}")
            direction = cp.Parameter(d)
            lp = cp.Problem(cp.Maximize(direction @ delta), constraints)
            self._cache[d] = (delta, constraints, SuppFunc(delta, constraints), direction, lp)
        return self._cache[d]

    def check_dim(self, d):
        delta, constraints, *_ = self._model(d)
        zero = cp.Problem(cp.Minimize(0), constraints + [delta == 0])
        zero.solve(solver="CLARABEL")
        if zero.status != "optimal":
            raise ValueError("CustomSet must contain 0 (delta = 0 violates its constraints)")

    def _solve_support(self, beta):
        beta = np.asarray(beta, dtype=float)
        delta, _, _, direction, lp = self._model(beta.shape[0])
        scale = float(np.max(np.abs(beta), initial=0.0))
        if scale == 0.0:
            return 0.0, np.zeros_like(beta)
        # sigma_S is positively homogeneous: solve for beta / scale so that the solver's
        # absolute tolerance stays relative to sigma_S(beta), however small beta is.
        direction.value = beta / scale
        with warnings.catch_warnings():  # the status is checked just below
            warnings.filterwarnings("ignore", message="Solution may be inaccurate")
            lp.solve(solver="CLARABEL", tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10)
        if lp.status == "unbounded" or lp.status == "unbounded_inaccurate":
            raise ValueError("CustomSet is unbounded in the direction of beta; it must be compact")
        if lp.status not in ("optimal", "optimal_inaccurate"):
            raise ValueError(f"CustomSet support problem failed with status {lp.status}")
        return scale * float(lp.value), np.asarray(delta.value, dtype=float)

    def support(self, beta):
        return self._solve_support(beta)[0]

    def support_cvx(self, beta):
        return self._model(beta.shape[0])[2](beta)

    def unit_argmax(self, beta):
        return self._solve_support(beta)[1]

    def norm(self, v):
        """The gauge of S at v, min{r >= 0 : v in r S}, as its dual
        max{u^T v : sigma_S(u) <= 1} (S closed, convex, containing 0: the set
        {sigma_S <= 1} is the polar of S, and the support function of the polar is the
        gauge of S); one conic program through ``support_cvx``, inf where v lies in no
        multiple of S (the program is unbounded)."""
        v = np.asarray(v, dtype=float)
        scale = float(np.max(np.abs(v), initial=0.0))
        if scale == 0.0:
            return 0.0
        u = cp.Variable(v.shape[0])
        # the gauge is positively homogeneous: v / scale keeps the tolerances relative
        dual = cp.Problem(cp.Maximize((v / scale) @ u), [self.support_cvx(u) <= 1.0])
        with warnings.catch_warnings():  # the status is checked just below
            warnings.filterwarnings("ignore", message="Solution may be inaccurate")
            dual.solve(solver="CLARABEL", tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10)
        if dual.status in ("unbounded", "unbounded_inaccurate"):
            return np.inf
        if dual.status not in ("optimal", "optimal_inaccurate"):
            raise ValueError(f"CustomSet gauge problem failed with status {dual.status}")
        return scale * max(float(dual.value), 0.0)


PERTURBATIONS = {
    "linf": Linf,
    "fgsm": Linf,
    "l2": L2,
    "fgm": L2,
    "l1": L1,
}
