"""The problem on its engine: F_mu, its gradient and the Newton pass in (X beta, b, t).

The fast path solves the well-scaled equivalent problem of ``fast_scaling`` (data s X,
the response and loss scaled; ``problem.Scaling``) in centred coordinates (beta, b_c)
(``_centring``). ``Model`` evaluates it through the problem's engine
(``fgsm_cvx.engine``): X and every n-vector stay where X lives, and what comes back to
the host is of size d or a few sums. The per-sample maps (``_per_sample``,
``_per_sample_second``) are written once in the array namespace xp, so every engine
computes the same mathematics (``objective.py`` holds the terms). The algorithms that
use the model are FISTA and the continuation (``solver.py``), the Newton step
(``newton.py``), the pinned step (``kinks.py``) and the reduced programs
(``working_set.py``, ``linear_pieces.py``).
"""

from __future__ import annotations

from functools import partial

import numpy as np
import scipy.sparse as sp

from ..engine import HOST_ENGINES, HostEngine
from ..families import Binomial, Gaussian, Hinge, Huber, Poisson
from ..problem import Scaling
from .objective import (
    adversarial_terms,
    huber_abs,
    interval_second_order_terms,
    second_order_terms,
    worst_case_terms,
)


def _centring(prob):
    """(c, sum_i w_i ||x_i - c||^2): the centre of the fast path's columns and the mean
    squared row norm of the centred data, from two passes over X, cached along a path.

    c = sum_i w_i x_i (weights sum to one) with an intercept, None (no centring) without;
    sum_i w_i ||x_i - c||^2 = sum_i w_i ||x_i||^2 - ||c||^2 for that c. Computed by the
    problem's engine (``weighted_row_norms`` and one X^T w).
    """
    out = prob._cache.get("fast_centring")
    if out is None:
        engine, w = prob.engine, prob.sample_weight
        total = engine.weighted_row_norms(w)
        centre = None
        if prob.fit_intercept:
            (centre,) = engine.fetch(engine.rmatvec(engine.put(w)))  # X^T w, d numbers
            centre = np.asarray(centre, dtype=np.float64).ravel()
            total = max(total - float(centre @ centre), 0.0)
        out = prob._cache["fast_centring"] = (centre, total)
    return out


def fast_scaling(prob):
    """``prob.scaling`` with the feature scale s taken from the centred columns and the
    Huber response scale from the loss (``Scaling(loss_scale=True)``).

    With an intercept the fast path works with s (X - 1 c^T) (``_centring``): s is the
    power of two nearest 1 / RMS of the centred entries, so that columns with a large
    common offset (which centring removes) do not leave the centred data badly scaled.
    """
    out = prob._cache.get("fast_scaling")
    if out is None:
        from ..problem import _power_of_two

        s = None  # (without an intercept: prob.x_scale)
        if prob.fit_intercept:
            mean_sq = _centring(prob)[1] / max(prob.n_features, 1)
            s = _power_of_two(1.0 / np.sqrt(mean_sq)) if mean_sq > 0 else 1.0
        out = prob._cache["fast_scaling"] = Scaling(prob, x_scale=s, loss_scale=True)
    return out


def _finite(total):
    return total if np.isfinite(total) else np.inf


def _per_sample(xp, Xbeta, y, w, *, family, alpha, shift, b, mu, grad, fit_intercept):
    """The per-sample part of F_mu on (a block of) the samples, in the namespace xp.

    Returns ((F_mu,), None), or with ``grad`` ((F_mu, dF/db, dF/dt), dF/deta): the sums
    over the samples given (a dask block's partial sums) and the per-sample derivative,
    with F_mu = sum_i w_i [alpha l(y_i, eta_i) + (1 - alpha) h_mu(eta_i, shift)] and
    eta = X beta + b. A pair ``shift`` = (t_up, t_dn) (a box) gives the interval term and
    the two sums dF/dt_up, dF/dt_dn in place of dF/dt.
    """
    a = alpha
    eta = Xbeta + b
    total, g_eta, g_t = 0.0, None, (0.0, 0.0) if isinstance(shift, tuple) else (0.0,)
    if a < 1.0:
        if grad:
            h, d_eta, *d_t = worst_case_terms(family, y, eta, shift, mu, xp=xp)
            g_eta = d_eta if a == 0.0 else (1.0 - a) * d_eta  # (d_eta: a new array)
            g_t = tuple((1.0 - a) * (w @ d) for d in d_t)  # dF/dt, or dF/dt_up, dF/dt_dn
        else:
            h = worst_case_terms(family, y, eta, shift, mu, grad=False, xp=xp)
        total = (1.0 - a) * (w @ h)
    if a > 0.0:
        if isinstance(family, (Hinge, Binomial)):
            # the t = 0 term: the clean hinge has a kink too (smoothed as the shifted
            # one); the logistic margin form log(1 + e^{-z eta}) is l(y, eta) at the
            # cost of one exponential (2-3x faster than l and its gradient apart)
            out = adversarial_terms(family, y, eta, 0.0, mu, grad=grad, xp=xp)
            clean, d_clean = out[:2] if grad else (out, None)
        else:
            clean = family.loss(y, eta, xp)
            d_clean = family.grad(y, eta, xp) if grad else None
        total = total + a * (w @ clean)
        if grad:
            g_eta = a * d_clean if g_eta is None else g_eta + a * d_clean
    if not grad:
        return (total,), None
    # dF/db = sum_i w_i (...): one dot product (a sum after the product costs 2x more)
    g_b = w @ g_eta if fit_intercept else 0.0
    g_eta *= w  # the weighted mean: dF/deta_i = w_i (...)
    return (total, g_b, *g_t), g_eta


def _per_sample_second(xp, Xbeta, y, w, ref=None, *, family, alpha, shift, b, mu):
    """The per-sample part of the Newton step's pass (``newton.py``), in namespace xp.

    Returns (sums, G, D): the sums (F_mu, sum w H_e, sum w H_t, sum w H_ee, sum w H_et,
    sum w H_tt), the vectors G = (w H_e, w H_et, w H_ee) whose products X^T G the step
    needs, and the Gram weights D = w H_ee >= 0 (``objective.second_order_terms``;
    ``ref`` the reference signs of the pinned step, ``kinks.py``).
    """
    H, H_e, H_t, H_ee, H_et, H_tt = second_order_terms(family, y, Xbeta + b, shift, mu,
                                                       alpha, xp, ref=ref)
    wH_e, wH_et = w * H_e, w * H_et
    wH_ee = w * xp.maximum(H_ee, 0.0)  # >= 0 for a convex term; clip rounding
    sums = (w @ H, xp.sum(wH_e), w @ H_t, xp.sum(wH_ee), xp.sum(wH_et), w @ H_tt)
    return sums, [wH_e, wH_et, wH_ee], wH_ee


def _per_sample_box_second(xp, Xbeta, y, w, *, family, alpha, shift, b, mu):
    """``_per_sample_second`` of a box's two shifts t = (t_up, t_dn)
    (``objective.interval_second_order_terms``): the sums (F_mu, sum w H_e,
    sum w H_u, sum w H_d, sum w H_ee, sum w H_eu, sum w H_ed, sum w H_uu, sum w H_ud,
    sum w H_dd), the vectors G = (w H_e, w H_eu, w H_ee, w H_ed) (the shifts' columns
    1 and 3: ``newton.newton_system``) and D = w H_ee."""
    H, H_e, (H_u, H_d), H_ee, (H_eu, H_ed), ((H_uu, H_ud), (_, H_dd)) = \
        interval_second_order_terms(family, y, Xbeta + b, *shift, mu, alpha, xp)
    wH_e, wH_eu, wH_ed = w * H_e, w * H_eu, w * H_ed
    wH_ee = w * xp.maximum(H_ee, 0.0)  # >= 0 for a convex term; clip rounding
    sums = (w @ H, xp.sum(wH_e), w @ H_u, w @ H_d, xp.sum(wH_ee), xp.sum(wH_eu),
            xp.sum(wH_ed), w @ H_uu, w @ H_ud, w @ H_dd)
    return sums, [wH_e, wH_eu, wH_ee, wH_ed], wH_ee


# The gaussian pass (``Model._gram_products``) updates the cached X^T (w s) by the rows
# whose signs s changed, and takes the smoothing band's rows, while they are at most this
# share of the samples (beyond, products with X^T: a row gathered costs more than a row
# streamed)
SIGN_ROWS_SHARE = 1.0 / 16.0

# FISTA's gaussian gradient takes X^T g from the Gram matrix (``Model._gram_gradient``)
# from this many entries of X on: below, its per-sample bookkeeping (the signs, their
# changes, the band) costs about what the read of X it saves does (cold solves at
# n d = 1e4-3e5: 0-15% slower; at 9e5 and 5e6 7-25% faster)
GRAM_GRADIENT_MIN_ENTRIES = 2**19

# Rows sampled for the power iteration of ``Model.gram_norm`` (at least 20 d): at
# n = 1e5, d = 50 its four iterations over all rows cost 8 of a gaussian solve's ~46
# X^T (X v) passes; on 1e4 rows, under one
GRAM_NORM_ROWS = 10_000


# The Newton pass takes its Gram matrix from a cached one (``Model._cached_second_order``)
# below this many columns (the cache's key: _CACHED_GRAM); its maps run over blocks of
# CACHED_MAP_ROWS samples; Poisson's smoothed stages keep a sample's second derivatives
# from the cache while they are within LAGGED_CURVATURE of them (relative)
CACHED_GRAM_MAX_FEATURES = 200
CACHED_MAP_ROWS = 8192
LAGGED_CURVATURE = 0.1
_CACHED_GRAM = "fast_cached_gram"


def _given(xp, eta, g_e, g_et, g_ee):
    """The blocked pass's map where the vectors G = (w H_e, w H_et, w H_ee) are known
    (``Model._cached_second_order``): G, with D = w H_ee (its sums unused)."""
    return [0.0] * 6, [g_e, g_et, g_ee], g_ee


def _moved(M, M0, lag):
    """The samples whose second derivatives M = w (H_ee, H_et, H_tt) (rows) left M0's
    by more than ``lag`` times their scale (H_ee0, H_tt0; sqrt(H_ee0 H_tt0) for H_et)."""
    scale = np.sqrt(M0[0] * M0[2])
    out = (np.abs(M[0] - M0[0]) > lag * M0[0]) | (np.abs(M[2] - M0[2]) > lag * M0[2]) \
        | (np.abs(M[1] - M0[1]) > lag * scale)
    return np.flatnonzero(out)


def _lagged_sums(sums, S):
    """The pass's sums (F, dF/db, dF/dt exact; the second-order sums S = (sum w H_ee,
    sum w H_et, sum w H_tt) those of the Hessian returned)."""
    f, g_b, T = sums[:3]
    return [float(f), float(g_b), float(T), float(S[0]), float(S[1]), float(S[2])]


def subset_positions(cols, W):
    """The positions of the sorted columns W within the sorted ``cols``, or None where W
    is not a subset of them."""
    pos = np.searchsorted(cols, W)
    if np.any(pos >= cols.shape[0]) or not np.array_equal(cols[pos], W):
        return None
    return pos


def uncentred(lin, c):
    """A program's linear part (const, g_beta, g_b, g_t), const + g_beta^T beta + g_b b_c
    + g_t t, in the uncentred intercept b = b_c - c^T beta of ``Model.program_rows``:
    g_b b_c = g_b b + g_b c^T beta, so g_beta + g_b c (as it is where c is None)."""
    if c is None:
        return lin
    const, g_beta, g_b, g_t = lin
    return const, np.asarray(g_beta) + g_b * c, g_b, g_t


def centred_intercept(beta, b, c):
    """b_c = b + c^T beta from a program's uncentred intercept (``uncentred``)."""
    return b if c is None else b + float(c @ beta)


class Model:
    """F_mu and its gradient in (X beta, b, t); the products with X, through the engine.

    It is the equivalent problem of ``scaling`` (data s X and y'', ``prob.scaling`` for the
    adversarial problem): the products are with s X, formed without copying X (s = 1
    unless X is badly scaled; s is a power of two, so s (X beta) = X (s beta) exactly).

    X, the predictors X beta and the per-sample vectors y'', w live on the problem's
    engine (``fgsm_cvx.engine``: numpy / scipy.sparse, dask, or an array API array);
    beta, b, t and every value handed back (objective, X^T g, dF/db, dF/dt) are numpy
    arrays and floats on the host.

    ``alpha`` overrides the problem's (1.0 gives the clean loss alone: the smooth part of
    the penalised likelihood). A penalty with a constant ``offset`` c (the LLA
    majoriser, shift eps (sigma(beta) + c)) enters as the shift t + eps c, the epigraph
    variable t still bounding eps sigma(beta).
    """

    def __init__(self, prob, scaling, alpha=None):
        self.engine = engine = prob.engine
        self.family = scaling.family
        self.y, self.w = engine.put(scaling.y), engine.put(prob.sample_weight)
        self.y_host = scaling.y
        self.w_host = prob.sample_weight
        self.alpha = prob.alpha if alpha is None else alpha
        self.scale = scaling.x
        offset = getattr(prob.penalty, "offset", 0.0) if prob.penalty is not None else 0.0
        # eps (sigma(beta) + c) in eta-units is eps'' sigma(beta'') + eps c / m in the
        # scaled problem's (eta = m eta'' + o)
        self.offset = prob.eps * offset / scaling.eta_mult
        # With an intercept, x_i^T beta + b = (x_i - c)^T beta + b_c, b_c = b + c^T beta, for
        # any c, and the shift depends on beta alone: FISTA steps in (beta, b_c) with c the
        # weighted column means (sum_i w_i x_i; weights sum to one), which decouples the
        # intercept from the features; uncentred data (|c| >> sd) otherwise cost ~100x the
        # iterations and lose accuracy. X is not modified: the engine keeps s X beta, the
        # state keeps b, and the gradient in beta is the centred one (``gradient``).
        centre, self._mean_row_sq = _centring(prob)
        self._cache = prob._cache
        self.centre = None if centre is None else self.scale * centre  # s c
        # the cached Gram matrices are of the scaled columns: a model of another scale
        # on the same problem (the penalised twin's identity scaling) has its own
        self._gram_key = ("fast_gaussian_gram", self.scale)
        self._part_key = ("fast_gaussian_gram_part", self.scale)

    def _fn(self, b, t, mu, grad, fit_intercept=False):
        """The per-sample work at (b, t, mu), for the engine's map_reduce (picklable: it
        travels to dask workers with the family and four numbers; a box's t is the pair
        (t_up, t_dn), passed as a tuple of floats)."""
        # Python floats: a numpy scalar would pull an engine array into numpy
        shift = tuple(float(v) + self.offset for v in t) if np.ndim(t) else \
            float(t) + self.offset
        return partial(_per_sample, family=self.family, alpha=self.alpha,
                       shift=shift, b=float(b), mu=float(mu), grad=grad,
                       fit_intercept=fit_intercept)

    def value(self, Xbeta, b, t, mu):
        """F_mu at (X beta, b, t) as a float (inf where it overflows): one reduction."""
        (total,), _ = self.engine.map_reduce(self._fn(b, t, mu, False), Xbeta, self.y,
                                             self.w, n_sums=1)
        return _finite(total)

    def gradient(self, Xbeta, b, t, mu, fit_intercept, beta=None):
        """(F_mu, dF/dbeta, dF/db, dF/dt) on the host, in one pass over X.

        dF/dbeta = s X^T (dF/deta) by the chain rule through eta = s X beta + b, and
        dF/db = sum_i dF/deta_i. For a box dF/dt is the array (dF/dt_up, dF/dt_dn).
        Given ``beta`` (whose predictors are ``Xbeta``), the gaussian loss takes X^T g
        from the cached Gram matrix where it can (``_gram_gradient``: no read of X).
        """
        pair = np.ndim(t) > 0
        out = None if beta is None else self._gram_gradient(Xbeta, beta, b, t, mu,
                                                            fit_intercept)
        if out is not None:
            total, g_beta, g_b, g_t = out
        else:
            (total, g_b, *g_t), g_beta = self.engine.map_reduce(
                self._fn(b, t, mu, True, fit_intercept), Xbeta, self.y, self.w,
                n_sums=4 if pair else 3, rmatvec=True)
            g_t = np.array(g_t) if pair else g_t[0]
        if self.scale != 1.0:
            g_beta = g_beta * self.scale
        if self.centre is not None:  # (X - 1 c^T)^T g = X^T g - c sum_i g_i
            g_beta = g_beta - self.centre * g_b
        return _finite(total), g_beta, g_b, g_t

    def gradient_pass(self, beta, b, t, mu, fit_intercept):
        """(s X beta on the engine, F_mu, dF/dbeta, dF/db, dF/dt) at (beta, b, t): one
        X v and one X^T g (``gradient`` at the predictors of beta)."""
        Xbeta = self.engine.matvec(beta if self.scale == 1.0 else beta * self.scale)
        return (Xbeta, *self.gradient(Xbeta, b, t, mu, fit_intercept, beta=beta))

    def evaluate(self, beta, b, t, mu):
        """(s X beta kept on the engine, F_mu there): one pass over X."""
        Xbeta, (total,) = self.engine.matvec_reduce(
            beta if self.scale == 1.0 else beta * self.scale, self._fn(b, t, mu, False),
            self.y, self.w, n_sums=1)
        return Xbeta, _finite(total)

    def second_order(self, beta, b, t, mu, cols, ref=None, Xbeta=None):
        """The Newton step's pass (``newton.py``) in the centred coordinates (beta, b_c).

        Returns (s X beta on the engine, F_mu, XtG, Gram, (dF/db, T, S_ee, S_et, S_tt))
        with XtG the (d, 3) array
        X_c^T (w H_e, w H_et, w H_ee) and Gram = X_cW^T diag(w H_ee) X_cW for the columns
        ``cols`` (None: all), X_c = s (X - 1 c^T). From the engine's uncentred products:
        X_c^T u = s X^T u - s c sum_i u_i and, with v = s X^T D,
        X_c^T D X_c = s^2 X^T D X - v (s c)^T - (s c) v^T + (sum D) (s c)(s c)^T.
        ``ref``: the pinned step's reference signs of the kink coordinates
        (``kinks.py``), a host vector (0: pinned). ``Xbeta``: s X beta where the caller
        has it (the gaussian pass then does not form it; the others do).
        """
        # (at a point where e^eta overflows, a step too long for Poisson, the pass's
        # products and centring are inf or NaN without a warning: its callers test them)
        with np.errstate(over="ignore", invalid="ignore"):
            return self._second_order(beta, b, t, mu, cols, ref, Xbeta)

    def _second_order(self, beta, b, t, mu, cols, ref, Xbeta=None):
        """``second_order``'s pass."""
        if np.ndim(t):
            return self._box_second_order(beta, b, t, mu, cols)
        if self.constant_curvature():
            return self._gaussian_second_order(beta, b, t, mu, cols, ref, Xbeta)
        beta_s = beta if self.scale == 1.0 else beta * self.scale
        shift = float(t) + self.offset
        lag = self._gram_lag(ref)
        if lag is not None:
            Xbeta, sums, XtG, gram = self._cached_second_order(beta_s, b, shift, mu, cols,
                                                               ref, lag)
        else:
            fn = partial(_per_sample_second, family=self.family, alpha=self.alpha,
                         shift=shift, b=float(b), mu=float(mu))
            # a new host array each time: an engine caches what it placed by identity,
            # and the pinned step changes its signs in place
            vectors = (self.y, self.w) + (() if ref is None else (
                self.engine.put(np.array(ref, dtype=np.float64)),))
            Xbeta, sums, XtG, gram = self.engine.second_order(fn, beta_s, *vectors,
                                                              cols=cols, n_sums=6)
        f, g_b, T, S_ee, S_et, S_tt = sums
        XtG, gram = self._centred(XtG, gram, cols, [g_b, S_et, S_ee])
        return Xbeta, _finite(f), XtG, gram, (g_b, T, S_ee, S_et, S_tt)

    def _centred(self, XtG, gram, cols, column_sums):
        """(X_c^T G, X_cW^T D X_cW) from the engine's uncentred s-free products
        (``second_order``): scaled by s, and centred where there is an intercept,
        X_c^T u = s X^T u - s c sum_i u_i (``column_sums``: sum_i u_i of XtG's columns,
        whose column 2 is D's) and X_c^T D X_c = s^2 X^T D X - v (s c)^T - (s c) v^T
        + (sum D) (s c)(s c)^T with v = s X^T D."""
        XtG, gram = XtG * self.scale, gram * self.scale**2
        if self.centre is not None:
            c = self.centre
            v = XtG[:, 2] if cols is None else XtG[cols, 2]  # s X_W^T D, uncentred
            c_W = c if cols is None else c[cols]
            S_D = column_sums[2]
            gram = gram - np.outer(v, c_W) - np.outer(c_W, v) + S_D * np.outer(c_W, c_W)
            XtG = XtG - np.outer(c, column_sums)
        return XtG, gram

    def _box_second_order(self, beta, b, t, mu, cols):
        """``second_order`` for a box's pair of shifts t = (t_up, t_dn): the blocked pass
        of ``_per_sample_box_second``, its sums returned as (dF/db, T, S_ee, S_et, S_tt)
        with T = (T_u, T_d), S_et = (S_eu, S_ed) and S_tt the 2 x 2 matrix, XtG the
        (d, 4) array X_c^T (w H_e, w H_eu, w H_ee, w H_ed) (centred as ``second_order``
        says)."""
        beta_s = beta if self.scale == 1.0 else beta * self.scale
        fn = partial(_per_sample_box_second, family=self.family, alpha=self.alpha,
                     shift=tuple(float(v) + self.offset for v in t), b=float(b),
                     mu=float(mu))
        Xbeta, sums, XtG, gram = self.engine.second_order(fn, beta_s, self.y, self.w,
                                                          cols=cols, n_sums=10,
                                                          n_vectors=4)
        f, g_b, T_u, T_d, S_ee, S_eu, S_ed, S_uu, S_ud, S_dd = sums
        XtG, gram = self._centred(XtG, gram, cols, [g_b, S_eu, S_ee, S_ed])
        return Xbeta, _finite(f), XtG, gram, (g_b, np.array([T_u, T_d]), S_ee,
                                              np.array([S_eu, S_ed]),
                                              np.array([[S_uu, S_ud], [S_ud, S_dd]]))

    def _gram_lag(self, ref):
        """The relative change of a sample's second derivatives within which the Newton
        pass keeps them from the cache (``_cached_second_order``), or None (the blocked
        pass): 0 for Huber (exact), LAGGED_CURVATURE for Poisson's smoothed Newton
        stages (``ref`` None; the pinned step's passes are exact: its certificate reads
        their Hessian), on dense float64 host X of fewer than CACHED_GRAM_MAX_FEATURES
        columns. (Logistic paths, with a lag of 0.03, 0.1 or 0.3, took 137, 159 and 232
        iterations against 134, in the same time or more: their radii take two or
        three passes, the first of which finds most curvatures moved.)"""
        if not (self._dense_host() and self.engine.shape[1] < CACHED_GRAM_MAX_FEATURES):
            return None
        if isinstance(self.family, Huber):
            return 0.0
        if isinstance(self.family, Poisson) and ref is None:
            return LAGGED_CURVATURE
        return None

    def _cached_second_order(self, beta, b, shift, mu, cols, ref, lag):
        """``engine.second_order``'s answer (s X beta, sums, X^T G, X_W^T diag(D) X_W;
        unscaled X), its second-order part from a cache and a few rows.

        Each sample's second derivatives M_i = w_i [[H_ee, H_et], [H_et, H_tt]]
        (``objective.second_order_terms``) enter the Hessian through X^T diag(w H_ee) X,
        X^T (w H_ee), X^T (w H_et) and their sums. The problem's cache (shared along an
        eps path) holds a matrix M0_i per sample and those quantities of M0. A pass
        replaces M0_i by M_i for the samples C whose M_i left M0_i by more than ``lag``
        (an entry off by more than lag times its scale: H_ee0, H_tt0, sqrt(H_ee0 H_tt0)
        for H_et), updating the cached products by C's rows (G0 += X_C^T diag(w (H_ee -
        H_ee0))_C X_C, and so on), and returns the Hessian of the M0: exact with lag 0,
        else within lag of it entry by entry. Each M0_i is a sample's exact second
        derivatives at some point (positive semidefinite: the term is convex), so the
        Hessian returned is too, and -H^-1 g a descent direction; the objective, its
        gradient (X^T (w H_e), one product with X), the residual and the stopping tests
        are exact.

        * Huber (lag 0: exact). Off the smoothing band and the pinned samples its
          second derivatives take a few values (w_i times 1 or 0 on the adversarial
          term's threshold, plus alpha's clean term, signs s_i) and change only where a
          sample crosses a threshold or the band: C holds those, a few hundred rows.
        * Poisson (lag ``LAGGED_CURVATURE``): the curvature changes with every step, by
          a factor of about e^(d eta). The lagged Hessian changes the
          Newton direction only; near the solution, where the steps are short, C
          empties and the rate is Newton's up to a factor of lag. The decrement's test
          reads it (within lag). The pinned step's passes (``ref``) are exact.

        Where C holds more than ``SIGN_ROWS_SHARE`` of the samples (or nothing is
        cached) the blocked pass (``engine.second_order``, given the per-sample vectors)
        forms the Gram matrix: of all columns, cached with M0 = M, where ``cols`` is
        None (it would anyway) or where few samples changed by more than lag since the
        last pass (settled: the next passes take the cache), else the working set's
        only (a cold solve's first passes, whose samples still move, at the blocked
        pass's cost). At n = 1e5, d = 50 a Huber pass from the cache took ~8 ms where
        the blocked pass took 11 ms at |W| = 16 columns and 21 ms at 50; the 50-radius
        Huber path of ``bench_path.py`` 4.4-4.9 -> 3.1-3.5 s, the Poisson path
        5.05-5.24 -> 3.38-3.93 s (docs/performance.md, session 46).
        """
        engine, n, w, a = self.engine, self.engine.shape[0], self.w_host, self.alpha
        Xbeta = engine.matvec(beta)
        sums, g, M = np.zeros(6), np.empty(n), np.empty((3, n))  # M: w (H_ee, H_et, H_tt)
        for start in range(0, n, CACHED_MAP_ROWS):  # (the maps' temporaries in cache)
            rows = slice(start, start + CACHED_MAP_ROWS)
            H, H_e, H_t, H_ee, H_et, H_tt = second_order_terms(
                self.family, self.y_host[rows], Xbeta[rows] + b, shift, mu, a, np,
                ref=None if ref is None else np.asarray(ref[rows], dtype=np.float64))
            w_k = w[rows]
            g[rows] = w_k * H_e
            M[0, rows] = w_k * np.maximum(H_ee, 0.0)  # (>= 0: convex; clip rounding)
            M[1, rows], M[2, rows] = w_k * H_et, w_k * H_tt
            sums += (w_k @ H, np.sum(g[rows]), w_k @ H_t, 0.0, 0.0, 0.0)
        held = self._cache.get(_CACHED_GRAM)
        last = None if held is None else held[-1]
        changed = None if held is None or held[1] is None else _moved(M, held[0], lag)
        if changed is None or changed.shape[0] > SIGN_ROWS_SHARE * n:
            # the blocked pass, given the vectors; of all columns where it forms them
            # anyway or the curvature has settled since the last pass
            settled = last is not None and \
                _moved(M, last, lag).shape[0] <= SIGN_ROWS_SHARE * n
            every = None if settled else cols
            _, _, XtG, gram = engine.second_order(_given, beta, g, M[1], M[0], cols=every,
                                                  n_sums=6)
            if every is not None:
                self._cache[_CACHED_GRAM] = (None, None, None, None, M)
                return Xbeta, _lagged_sums(sums, M.sum(axis=1)), XtG, gram
            held = (M.copy(), 0.5 * (gram + gram.T), XtG[:, 1:].copy(), M.sum(axis=1))
            gram = gram if cols is None else gram[np.ix_(cols, cols)]
            self._cache[_CACHED_GRAM] = (*held, M)
            return Xbeta, _lagged_sums(sums, held[3]), XtG, gram
        M0, G0, V0, S0 = held[:4]
        if changed.shape[0]:  # the cache takes C's rows: M0 = M there
            A, delta = engine.rows(changed), M[:, changed] - M0[:, changed]
            G0 += A.T @ (delta[0][:, None] * A)
            V0 += (delta[1::-1] @ A).T  # (X^T (w H_et), X^T (w H_ee))
            S0 += delta.sum(axis=1)
            M0[:, changed] = M[:, changed]
        self._cache[_CACHED_GRAM] = (M0, G0, V0, S0, M)
        XtG = np.column_stack([engine.rmatvec(g), V0])
        gram = G0 if cols is None else G0[np.ix_(cols, cols)]
        return Xbeta, _lagged_sums(sums, S0), XtG, 0.5 * (gram + gram.T)

    def _gaussian_second_order(self, beta, b, t, mu, cols, ref, Xbeta=None):
        """``second_order`` for the gaussian loss on a host engine
        (``constant_curvature``): the terms in closed form on all samples at once, no
        row blocks, the Gram matrix ``_gaussian_gram``'s.

        With r = y - eta, v = |r|_mu and v' its derivative (``huber_abs``; the reference
        signs s = ``ref`` at mu = 0: v = s r, v' = s), u = v + t (t the shift) and
        alpha the mix, the term is H = (1 - alpha) u^2 / 2 + alpha r^2 / 2 (rho(u) =
        u^2 / 2: rho' = u, rho'' = 1), so H_e = -(1 - alpha) u v' - alpha r,
        H_t = (1 - alpha) u, H_et = -(1 - alpha) v', H_tt = 1 - alpha and
        H_ee = (1 - alpha) (v'^2 + u v'') + alpha with v'' = 1{|r| <= mu} / mu
        (``objective.second_order_terms``). H_ee = 1 but on the band B (|r| <= mu; at
        mu = 0 the samples with r = 0, or s = 0: the pinned ones), so
        X^T (w H_ee) = X^T w + X_B^T (w_B (H_ee,B - 1)) from the cached X^T w and a few
        rows (``_gaussian_gram``, which forms the band's Gram correction from the same
        rows): two products with X^T, not three, in one read of X (``rmatvecs``: at
        n = 1e5, d = 50 1.3-1.4x one product's time, not 2x). About a third of the
        blocked pass's time at n = 2e4, d = 20 (its maps and block products cost more
        than the products with X there).
        """
        a, engine, w = self.alpha, self.engine, self.w_host
        if Xbeta is None:
            Xbeta = engine.matvec(beta if self.scale == 1.0 else beta * self.scale)
        r = self.y_host - (engine.fetch(Xbeta)[0] + b)
        if ref is None:
            ar, dar = huber_abs(r, mu)
            band = np.flatnonzero(np.abs(r) <= mu)
        else:
            dar = np.asarray(ref, dtype=np.float64)
            ar, band = dar * r, np.flatnonzero(dar == 0.0)
        u = ar  # (in place: a few n-vectors at a time)
        u += float(t) + self.offset
        wu = w * u
        f = 0.5 * (1.0 - a) * float(wu @ u)
        wH_e = dar * wu
        wH_e *= -(1.0 - a)
        if a > 0.0:
            wr = w * r
            f += 0.5 * a * float(wr @ r)
            wH_e -= a * wr
        wdar = w * dar
        # X^T (w H_e), X^T (w v') and X^T w in one read of X (``rmatvecs``); X^T w depends
        # on X and the weights only: computed with the first pass, cached with the
        # problem (shared along a path). Once the whole Gram matrix is cached, the first
        # two come from it instead (``_gram_products``: no read of X)
        Xtw = self._weights_product()
        products = None if Xtw is None else self._gram_products(beta, b, t, r, u, dar, band)
        if products is not None:
            Xt_e, Xt_dar = products
        else:
            Xt_e, Xt_dar, *Xt_w = engine.rmatvecs(wH_e, wdar,
                                                  *(() if Xtw is not None else (w,)))
        if Xtw is None:
            Xtw = self._cache["fast_gaussian_Xtw"] = Xt_w[0]
        S_w = float(np.sum(w))
        # w_B (H_ee,B - 1) on the band, where H_ee is not 1
        d_B = dar[band]
        curve = d_B * d_B + (u[band] / mu if mu > 0.0 else 0.0)
        excess = w[band] * ((1.0 - a) * curve + a - 1.0)
        gram, v = self._gaussian_gram(band, excess, cols)
        g_b, S_et, S_ee = float(np.sum(wH_e)), -(1.0 - a) * float(np.sum(wdar)), \
            S_w + float(np.sum(excess))
        T, S_tt = (1.0 - a) * float(np.sum(wu)), (1.0 - a) * S_w
        XtG = np.stack([Xt_e, -(1.0 - a) * Xt_dar, Xtw], axis=1) * self.scale
        if self.centre is not None:  # X_c^T u = s X^T u - s c sum_i u_i
            XtG = XtG - np.outer(self.centre, [g_b, S_et, S_w])
        XtG[:, 2] += v  # X_c^T (w H_ee) = X_c^T w + X_c,B^T (w_B (H_ee,B - 1))
        return Xbeta, _finite(f), XtG, gram, (g_b, T, S_ee, S_et, S_tt)

    def _gram_products(self, beta, b, t, r, u, dar, band):
        """(X^T (w H_e), X^T (w v')) of the gaussian pass from cached quantities, where X
        is a dense float64 array whose whole Gram matrix is cached (``_constant_gram``)
        and the band B holds at most ``SIGN_ROWS_SHARE`` of the samples; else None (the
        pass reads X).

        Off the band v' = s = sign(r) (the pinned step's reference signs; s = 0 on B)
        and v' u = r + t' s (u = |r|_mu + t', t' = t + offset), so
        w H_e = -(1 - alpha) w v' u - alpha w r
              = -w r - (1 - alpha) t' w s + (1 - alpha) 1_B w (r - v' u)
        (``_gram_sums`` forms the first two terms' products). The band's rows give its
        terms (pinned samples: v' = 0). A 50-radius gaussian path at n = 1e5, d = 50
        read X twice a pinned pass, the second read (two vectors) 0.7-0.85 s of 2.7 s.
        """
        if not self._gram_covers(band):
            return None
        signs = dar.copy()
        signs[band] = 0.0
        Xt_e, Xtws = self._gram_sums(beta, b, t, signs)
        Xt_dar = Xtws
        if band.shape[0]:
            A, w_B = self.engine.rows(band), self.w_host[band]
            Xt_e = Xt_e + (1.0 - self.alpha) * (A.T @ (w_B * (r[band] - dar[band] * u[band])))
            Xt_dar = Xt_dar + A.T @ (w_B * dar[band])
        return Xt_e, Xt_dar

    def _gram_covers(self, band):
        """Whether the gaussian pass and gradient may take their products with X^T from
        the cached Gram matrix (``_gram_sums``): X a dense float64 host array whose
        whole Gram matrix is cached, the band's rows (taken one by one) at most
        ``SIGN_ROWS_SHARE`` of the samples."""
        return self._gram_key in self._cache and self._dense_host() \
            and band.shape[0] <= SIGN_ROWS_SHARE * self.engine.shape[0]

    def _dense_host(self):
        """Whether X is a dense float64 numpy array on the host engine (whose products
        are numpy arrays)."""
        X = getattr(self.engine, "X", None)
        return type(self.engine) is HostEngine and isinstance(X, np.ndarray) \
            and X.dtype == np.float64

    def gram_gradient_pays(self):
        """Whether FISTA's gradient takes X^T g from the Gram matrix once it is cached
        (``_gram_gradient``): the gaussian loss on dense float64 host X of at least
        ``GRAM_GRADIENT_MIN_ENTRIES`` entries."""
        n, d = self.engine.shape
        return n * d >= GRAM_GRADIENT_MIN_ENTRIES and self.constant_curvature() \
            and self._dense_host()

    def gram_first(self):
        """Form the whole constant Gram matrix now (``_constant_gram``) where the gaussian
        pass and FISTA's gradient would take their products with X^T from it
        (``_gram_covers``); whether it is cached. Called by the solver where a Newton or
        pinned pass would form it anyway (``solver._gram_first``)."""
        if not (self.constant_curvature() and self._dense_host()):
            return False
        self._constant_gram(None)
        return True

    def whole_gram(self):
        """X_c^T W X_c of all columns, the gaussian loss's constant Gram matrix
        (``_constant_gram``: formed once, cached with the problem; the reduced program's
        far samples take theirs from it, ``linear_pieces._far_quadratic``)."""
        return self._constant_gram(None)

    def _gram_sums(self, beta, b, t, signs):
        """(X^T (-w r - (1 - alpha) t' w s), X^T (w s)) without reading X (but a few rows),
        r = y - s_x X beta - b the residual and s = ``signs`` (``_gram_covers``).

        X^T (w r) = X^T W y - X^T W X (s_x beta) - b X^T w, where
        s_x^2 X^T W X = G0 + c c^T (G0 = X_c^T W X_c, c the scaled centre; G0 without
        centring). X^T W y and X^T w are cached with the problem; X^T (w s) with the
        signs it is for, updated by the rows whose sign changed (a fresh product where
        more than ``SIGN_ROWS_SHARE`` of the samples did).
        """
        engine, w, y = self.engine, self.w_host, self.y_host
        Xtwy = self._cache.get("fast_gaussian_Xtwy")
        if Xtwy is None or Xtwy[0] is not y:  # (the response this model scales)
            Xtwy = self._cache["fast_gaussian_Xtwy"] = (y, engine.rmatvec(w * y))
        Xtw = self._weights_product()
        if Xtw is None:
            Xtw = self._cache["fast_gaussian_Xtw"] = engine.rmatvec(w)
        G0 = self._cache[self._gram_key]
        G_beta = G0 @ beta if self.centre is None else \
            G0 @ beta + self.centre * float(self.centre @ beta)
        Xtwr = Xtwy[1] - G_beta / self.scale - b * Xtw
        if self.alpha == 1.0:  # the clean loss (the penalised twin): no shift, no signs
            return -Xtwr, np.zeros_like(Xtwr)
        held = self._cache.get("fast_gaussian_Xtws")
        changed = None if held is None else np.flatnonzero(held[0] != signs)
        if changed is None or changed.shape[0] > SIGN_ROWS_SHARE * signs.shape[0]:
            Xtws = engine.rmatvec(w * signs)
        else:  # X^T (w s') = X^T (w s) + X_D^T (w_D (s' - s)_D) on the changed rows D
            Xtws = held[1] + engine.rows(changed).T @ (w[changed] * (signs - held[0])[changed])
        self._cache["fast_gaussian_Xtws"] = (signs, Xtws)
        return -Xtwr - (1.0 - self.alpha) * (float(t) + self.offset) * Xtws, Xtws

    def _weights_product(self):
        """X^T w (unscaled X), cached with the problem: with an intercept the centre over
        the scale (the centre is s X^T w, s a power of two: exact); None where neither
        holds it (the caller reads X)."""
        Xtw = self._cache.get("fast_gaussian_Xtw")
        if Xtw is None and self.centre is not None:
            Xtw = self._cache["fast_gaussian_Xtw"] = self.centre / self.scale
        return Xtw

    def _gram_gradient(self, Xbeta, beta, b, t, mu, fit_intercept):
        """``gradient`` of the gaussian loss with X^T g from the cached Gram matrix
        (``_gram_sums``), no read of X; None where it does not apply (``_gram_covers``,
        a box's pair t).

        F_mu and the sums come from the per-sample map as in ``gradient``. Off the band
        |r| <= mu (at mu = 0 the samples with r = 0, whose g is 0) g = dF/deta is
        -w r - (1 - alpha) t' w s with s = sign(r) (``_gram_products``), so
        X^T g = X^T (-w r - (1 - alpha) t' w s) + X_B^T (g + w r)_B (s = 0 on B).
        FISTA's iterations then read X once (X beta at the candidate), not twice
        (from ``GRAM_GRADIENT_MIN_ENTRIES`` entries of X on).
        """
        if np.ndim(t) or not self.gram_gradient_pays():
            return None
        Xb = self.engine.fetch(Xbeta)[0]
        r = self.y_host - (Xb + b)
        band = np.flatnonzero(np.abs(r) <= mu) if mu > 0.0 else np.empty(0, dtype=np.intp)
        if not self._gram_covers(band):
            return None
        (total, g_b, g_t), g = self._fn(b, t, mu, True, fit_intercept)(
            np, Xb, self.y_host, self.w_host)
        signs = np.sign(r)
        signs[band] = 0.0
        Xt_g = self._gram_sums(beta, b, t, signs)[0]
        if band.shape[0]:
            Xt_g = Xt_g + self.engine.rows(band).T @ (g[band] + self.w_host[band] * r[band])
        return total, Xt_g, g_b, g_t

    def constant_curvature(self):
        """True where the Gram matrix of the Newton pass is X_c^T W X_c but for a few rows:
        the gaussian loss on a host engine. Its per-sample curvature w_i H_ee is w_i
        ((1 - alpha) rho'' a'^2 + alpha rho'' = 1 with rho'' = 1, a' = +-1) except inside
        the smoothing band (mu > 0: a' = r / mu, plus rho'(u) / mu) and, in the pinned
        step, at the pinned samples (their piece rho(t) has no curvature in eta)."""
        if type(self.family) is not Gaussian or getattr(self.engine, "name", None) \
                not in HOST_ENGINES:
            return False
        # the cached Gram matrix has d^2 entries: for sparse X at most a few times X's
        # nonzeros (a TF-IDF matrix with d = 5000 and 1.5e5 nonzeros cached 200 MB, and
        # its KKT solves ran on working sets of ~1500: 8 s and 0.9 GB for 20 iterations)
        X = self.engine.X
        d = X.shape[1]
        return not sp.issparse(X) or d * d <= 4 * X.nnz

    def _gaussian_gram(self, band, excess, cols=None):
        """(X_cW^T diag(w H_ee) X_cW, X_c,B^T excess) for the gaussian loss on the columns
        W = ``cols`` (None: all): the constant X_cW^T W X_cW (``_constant_gram``)
        corrected by the rows of the band B whose curvature differs,
        sum_B excess_i x_cW,i x_cW,i^T with excess = w (H_ee - 1) there, and those rows'
        product with excess on all columns (``_gaussian_second_order``)."""
        G0 = self._constant_gram(cols)
        gram, v = G0.copy(), np.zeros(self.engine.shape[1])
        step = max(1, 2**17 // max(v.shape[0], 1))  # rows at a time: O(1) extra memory
        for start in range(0, band.shape[0], step):
            A, ex = self.rows(band[start:start + step]), excess[start:start + step]
            A_W = A if cols is None else A[:, cols]
            gram += A_W.T @ (ex[:, None] * A_W)
            v += A.T @ ex
        return gram, v

    def covers_gram(self, cols):
        """Whether the cached constant Gram matrix (``_constant_gram``) holds the columns
        ``cols`` (None: all)."""
        return self._cached_gram(cols) is not None

    def _cached_gram(self, cols):
        """X_cW^T W X_cW for the columns W = ``cols`` (None: all) from the cache, the
        matrix of all columns or the last subset's; None where neither holds them."""
        G0 = self._cache.get(self._gram_key)
        if G0 is not None:
            return G0 if cols is None else G0[np.ix_(cols, cols)]
        part = self._cache.get(self._part_key)
        pos = None if cols is None or part is None else subset_positions(part[0], cols)
        return None if pos is None else part[1][np.ix_(pos, pos)]

    def _constant_gram(self, cols):
        """X_cW^T W X_cW for the columns W = ``cols`` (None: all), the gaussian loss's
        Gram matrix off the band: of all columns one blocked pass (n d^2 flops) cached
        with the problem (shared along an eps path); of a subset (``newton.gram_columns``:
        a working set far smaller than d) one blocked pass on those columns, the last
        one cached (a pinned step's passes keep their working set). With the weighted
        centre c, X_c^T W X_c = s^2 X^T W X - (s c)(s c)^T: s X^T w = s c (sum w = 1),
        on any subset of the columns alike."""
        G0 = self._cached_gram(cols)
        if G0 is not None:
            return G0

        def unit(xp, eta, y, w):  # the Gram weights D = w (sums and G unused)
            return [0.0] * 6, [w], w

        whole = None if cols is not None or type(self.engine) is not HostEngine else \
            self.engine.weighted_gram(self.w_host)  # (dense host X: no maps)
        if whole is None:
            whole = self.engine.second_order(unit, np.zeros(self.engine.shape[1]), self.y,
                                             self.w, cols=cols, n_sums=6)[3]
        G0 = whole * self.scale**2
        if self.centre is not None:
            c = self.centre if cols is None else self.centre[cols]
            G0 = G0 - np.outer(c, c)
        G0 = 0.5 * (G0 + G0.T)
        if cols is None:
            self._cache[self._gram_key] = G0
            self._cache.pop(self._part_key, None)
        else:
            self._cache[self._part_key] = (np.array(cols), G0)
        return G0

    def rows(self, idx):
        """The centred, scaled rows X_c[idx] = s X[idx] - s c as a host (|idx|, d) array."""
        A = self.engine.rows(idx) * self.scale
        return A if self.centre is None else A - self.centre

    def sparse_rows(self):
        """Whether ``program_rows`` keeps X's sparsity: a scipy.sparse X on the host."""
        return type(self.engine) is HostEngine and sp.issparse(self.engine.X)

    def density(self):
        """The fraction of a reduced program's row entries that are stored: X's density
        where ``sparse_rows``, else 1."""
        if not self.sparse_rows():
            return 1.0
        n, d = self.engine.shape
        return self.engine.X.nnz / max(n * d, 1)

    def row_entries(self):
        """The entries a reduced program's row holds on average: d, or X's stored
        entries per row where ``sparse_rows`` (at least 1): the programs' size caps
        (``working_set.near_cap``) count these."""
        d = self.engine.shape[1]
        return d if not self.sparse_rows() else max(1, int(np.ceil(self.density() * d)))

    def program_rows(self, idx):
        """(rows, c) for a reduced program's constraints on the samples ``idx``.

        Dense X: the centred rows X_c[idx] (``rows``) and c None. Sparse host X: the CSR
        rows s X[idx], uncentred (centring would fill every row; Clarabel factorises
        the sparse ones: a gaussian program of all 1000 rows of tf-idf columns, d =
        500, took 10 s densified, 0.07 s sparse), with c = s c the centre (None without
        an intercept): the program's intercept column is then b = b_c - c^T beta, as
        eta = X_c beta + b_c = s X beta + b (``uncentred``).
        """
        if not self.sparse_rows():
            return np.asarray(self.rows(idx), dtype=np.float64), None
        rows = sp.csr_matrix(self.engine.X[np.asarray(idx, dtype=np.intp), :],
                             dtype=np.float64) * self.scale
        return rows, self.centre

    def curvature_bound(self):
        """The weighted mean of ||(s (x_i - c), 1, 1)||^2 = s^2 sum_i w_i ||x_i - c||^2 + 2
        (sum w = 1; c = 0 without centring): an upper bound on the Lipschitz constant for
        a loss with l'' <= 1 (``_centring`` computed the sum)."""
        return self._mean_row_sq * self.scale**2 + 2.0

    def gram_norm(self, iterations=4):
        """lambda_max(X_c^T W X_c) of the centred, scaled columns, by power iteration.

        v <- X_c^T W X_c v / ||.|| from a fixed random start, on a sample of the rows
        (every k-th, about ``GRAM_NORM_ROWS`` of them, weights renormalised: the
        weighted Gram matrix is a mean over the rows, which the sample estimates to
        about sqrt(d / rows) relative; one pass over the sample per iteration). The
        Rayleigh quotient estimates lambda_max from below (backtracking corrects an
        underestimate). X_c v = s X v - s c^T v with c the centre of all rows, and
        X_c^T u = s X^T u - s c sum_i u_i. Cached with the problem (it depends on X,
        the weights and the scale only). Where the gaussian loss has its whole Gram
        matrix already (``gram_first``) the same four iterations take its products: no
        read of X (the sample's 4/5 of a pass at n = 1e5, d = 1000, where the
        iterations' estimate from below also took FISTA's ``L2`` solve from 19 to 15
        iterations; at d = 50, nine sets, 145 -> 153 iterations, their passes within the
        noise). Iterated to lambda_max it made FISTA's first steps shorter (n = 1e5,
        d = 50, nine sets: 141 -> 155 iterations in all).
        """
        lam = self._cache.get("fast_gram_norm")
        if lam is not None:
            return lam
        n, d = self.engine.shape
        G = self._cached_gram(None)
        if G is not None:
            product = G.__matmul__  # (X_c^T W X_c itself: no read of X)
        else:
            step = max(1, n // max(GRAM_NORM_ROWS, 20 * d))
            w = self.w_host[::step]
            if not w.sum() > 0.0:  # the sample has no weight: all rows
                step, w = 1, self.w_host
            engine = self.engine.row_sample(step)
            w = engine.put(w / w.sum())

            def product(v):  # the sample's X_c^T W X_c v
                a = engine.matvec(v * self.scale)
                if self.centre is not None:
                    a = a - float(self.centre @ v)
                u = w * a
                g, total = engine.fetch(engine.rmatvec(u), engine.xp.sum(u))
                g = np.asarray(g, dtype=np.float64) * self.scale
                return g if self.centre is None else g - self.centre * total
        v = np.random.default_rng(0).standard_normal(d)
        v /= np.linalg.norm(v)
        lam = 0.0
        for _ in range(iterations):
            g = product(v)
            lam, norm = float(v @ g), float(np.linalg.norm(g))
            if not norm > 0.0:
                break
            v = g / norm
        self._cache["fast_gram_norm"] = lam
        return lam

    def initial_curvature(self):
        """A first Lipschitz estimate for FISTA: kappa max(lambda_max, 1).

        The Hessian of F in (beta, b_c, t) is sum_i w_i J_i^T D_i J_i with J_i the
        Jacobian of (eta_i, t) and D_i the 2 x 2 Hessian of the term, D_i <= kappa I: for
        the centred columns sum_i w_i J_i^T J_i = diag(X_c^T W X_c, 1, 1), of norm
        max(lambda_max, 1). kappa = 1/2 for logistic (2 phi'' <= 1/2 for phi(z eta - t)),
        2 for gaussian and Huber ((|r| + t)^2 / 2 has Hessian [[1, -s], [-s, 1]]). The
        row-norm bound (``curvature_bound``) exceeds lambda_max about d-fold on
        well-conditioned data, and FISTA, shrinking L by 10% per step, spent some 40 of
        its 54 iterations (binomial, d = 50) undoing it. Hinge (smoothed, curvature
        1 / mu) and Poisson (e^eta) keep the bound, backtracking finding their own.
        """
        kappa = 0.5 if isinstance(self.family, Binomial) else \
            2.0 if isinstance(self.family, (Gaussian, Huber)) else None
        if kappa is None:
            return self.curvature_bound()
        return min(kappa * max(self.gram_norm(), 1.0), self.curvature_bound())

    def centred_step(self, y_beta, n_beta):
        """s c^T (y_beta - n_beta): with the intercept b = b_c - s c^T beta of the centred
        parametrisation, the change of b when b_c takes no step and beta moves from
        y_beta to n_beta (0 without centring)."""
        return 0.0 if self.centre is None else float(self.centre @ (y_beta - n_beta))
