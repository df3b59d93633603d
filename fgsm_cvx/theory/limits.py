"""Limit quantities and the limit law of FGSM at eps_n = lam / sqrt(n) (docs/theory.md §4).

At the truth theta0 = (beta0, b0), with x~ = (x, 1) when an intercept is fitted,

.. math::

    C = E[l''\\, \\tilde x \\tilde x^\\top], \\quad
    \\Sigma_W = E[l'^2\\, \\tilde x \\tilde x^\\top], \\quad
    \\kappa = E|l'|, \\quad
    V = E[\\operatorname{sign}(l')\\, l''\\, \\tilde x],

and sqrt(n)(theta_hat - theta0) converges in law to the minimiser of

.. math::

    Z(u) = \\tfrac12 u^\\top C u - u^\\top W + (1-\\alpha)\\lambda
        \\big[\\kappa P'(\\beta_0; u) + P(\\beta_0) V^\\top u\\big],
    \\qquad W \\sim N(0, \\Sigma_W),

P'(beta0; u) the directional derivative of the penalty at beta0 (acting on the
coefficient part of u; the intercept is never penalised). The penalised-likelihood twin
at lam' = (1 - alpha) lam kappa has the same limit without the P(beta0) V^T u term.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import cvxpy as cp
import numpy as np
from scipy import stats
from scipy.special import expit, gammaln

from .._validation import check_bool, check_scalar
from ..families import Binomial, Gaussian
from ..penalized.diagnostics import labels
from ..penalties import DualNorm, Lr, Penalty, SquaredL2
from ..perturbations import Lp, Perturbation, WeightedLinf
from ..problem import resolve_penalty
from .designs import GLMDesign

__all__ = ["DirectionalDerivative", "LimitQuantities", "directional_derivative",
           "limit_quantities", "resolve_limit_penalty", "sample_limit_law"]

METHODS = ("auto", "exact", "mc")
ESTIMATORS = ("fgsm", "penalized")


@dataclass(frozen=True)
class LimitQuantities:
    """C, Sigma_W, kappa and V of a design at its truth (docs/theory.md §4).

    Attributes
    ----------
    C : ndarray, shape (k, k)
        E[l'' x~ x~^T], k = d + 1 with an intercept (last), d without.
    Sigma_W : ndarray, shape (k, k)
        E[l'^2 x~ x~^T], the covariance of the score.
    kappa : float
        E|l'|, the automatic noise scale.
    V : ndarray, shape (k,)
        E[sign(l') l'' x~], the sign-neutrality vector.
    names : list of str
        "x0", ..., "intercept".
    method : str
        "closed_form" (gaussian), "quadrature" (binomial, poisson: one-dimensional
        adaptive quadrature along eta) or "monte_carlo".
    n_mc : int or None
        Monte Carlo sample size (None when exact).
    C_se, Sigma_W_se, kappa_se, V_se
        Monte Carlo standard errors of each entry (zeros when exact).
    """

    C: np.ndarray
    Sigma_W: np.ndarray
    kappa: float
    V: np.ndarray
    names: list
    method: str
    n_mc: int | None = None
    C_se: np.ndarray = field(default=None, repr=False)
    Sigma_W_se: np.ndarray = field(default=None, repr=False)
    kappa_se: float = 0.0
    V_se: np.ndarray = field(default=None, repr=False)

    def __str__(self):
        size = "" if self.n_mc is None else f", n_mc={self.n_mc}"
        se = f" (se {self.kappa_se:.2g})" if self.kappa_se else ""
        rows = [f"limit quantities ({self.method}{size})", f"kappa = {self.kappa:.6g}{se}"]
        for name, v, c in zip(self.names, self.V, np.diag(self.C), strict=True):
            rows.append(f"{name:>10}  V = {v: .6g}   C_jj = {c:.6g}")
        return "\n".join(rows)


def _check_design(design):
    if not isinstance(design, GLMDesign):
        raise TypeError(f"design must be a GLMDesign, got {type(design).__name__}")
    return design


def _check_count(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


# ---------------------------------------------------------------------------------
# exact: closed form (gaussian) and quadrature along eta (binomial, poisson)
# ---------------------------------------------------------------------------------
def _conditional(design, eta):
    """(E[l''|eta], E[l'^2|eta], E[|l'| | eta], E[sign(l') l''|eta]) for binomial, poisson."""
    if isinstance(design.family, Binomial):
        p = expit(eta)
        h = p * (1.0 - p)
        # l' = p - y: E[(p - y)^2] = p(1 - p); E|p - y| = 2 p (1 - p);
        # E[sign(p - y)] = P(y = 0) - P(y = 1) = 1 - 2p
        return h, h, 2.0 * h, (1.0 - 2.0 * p) * h
    mu = np.exp(eta)
    k = np.floor(mu)
    # l' = mu - y, y ~ Poisson(mu): E(mu - y)^2 = mu; the mean absolute deviation is
    # E|y - mu| = 2 e^{-mu} mu^{k+1} / k!, k = floor(mu) (a classical identity);
    # E[sign(mu - y)] = P(y <= k) - P(y > k) = 2 F(k) - 1 (mu not an integer: a.s. in eta)
    mad = 2.0 * np.exp(-mu + (k + 1.0) * np.log(mu) - gammaln(k + 1.0))
    return mu, mu, mad, mu * (2.0 * stats.poisson.cdf(k, mu) - 1.0)


def _moments_along_eta(design, step=0.25, nodes=20):
    """E[f(eta) z^j], j = 0, 1, 2, for the four conditional functions f; z = (eta - b0) / s.

    eta = b0 + s z with z ~ N(0, 1), s^2 = beta0^T Sigma beta0. Composite Gauss-Legendre
    quadrature on [-12, 12] (the normal tail beyond carries < 1e-32) over panels of width
    ``step``, split further where the integrand jumps (poisson: e^eta an integer), so that
    every panel integrates an analytic function (error ~1e-12).
    """
    b0 = design.intercept
    s = float(np.sqrt(design.beta0 @ design.feature_cov @ design.beta0))
    if s == 0.0:
        vals = [float(v[0]) for v in _conditional(design, np.array([b0]))]
        return s, np.array([[v, 0.0, v] for v in vals])
    lo, hi = -12.0, 12.0
    edges = np.arange(lo, hi + step / 2, step)
    if not isinstance(design.family, Binomial):
        # e^{b0 + s z} = k  <=>  z = (log k - b0) / s
        kmax = np.exp(min(b0 + s * hi, 50.0))
        ks = np.arange(1, min(int(kmax), 100_000) + 1)
        z = (np.log(ks) - b0) / s
        edges = np.union1d(edges, z[(z > lo) & (z < hi)])
    t, wt = np.polynomial.legendre.leggauss(nodes)
    a, b = edges[:-1, None], edges[1:, None]
    z = (0.5 * (a + b) + 0.5 * (b - a) * t).ravel()  # nodes mapped to each panel
    w = (0.5 * (b - a) * wt).ravel() * stats.norm.pdf(z)
    f = np.stack(_conditional(design, b0 + s * z))  # (4, nodes)
    return s, np.stack([f @ w, f @ (w * z), f @ (w * z * z)], axis=1)


def _exact(design, fit_intercept):
    Sigma, d = design.feature_cov, design.n_features
    k = d + 1 if fit_intercept else d
    if isinstance(design.family, Gaussian):
        m2, mean_abs, sign_mean = design.noise_moments()
        # l' = eta - y = -sigma eps and l'' = 1 with eps independent of x (E x = 0):
        # C = E x~x~^T = diag(Sigma, 1); Sigma_W = E eps^2 C; kappa = E|sigma eps|;
        # V = E[sign(-eps)] E[x~] = (0, ..., 0, -E sign(eps))
        C = np.zeros((k, k))
        C[:d, :d] = Sigma
        V = np.zeros(k)
        if fit_intercept:
            C[d, d] = 1.0
            V[d] = -sign_mean
        return C, m2 * C, float(mean_abs), V
    s, mom = _moments_along_eta(design)
    m = Sigma @ design.beta0  # Cov(x, eta)
    if s > 0:
        # x = m z / s + r with r independent of z, Cov(r) = Sigma - m m^T / s^2, so
        # E[f x x^T] = E[f] (Sigma - m m^T/s^2) + E[f z^2] m m^T / s^2 and E[f x] = E[f z] m / s
        mm = np.outer(m, m) / s**2
        resid = Sigma - mm
    else:
        mm, resid = np.zeros((d, d)), Sigma

    def second(f):
        M = np.zeros((k, k))
        M[:d, :d] = mom[f, 0] * resid + mom[f, 2] * mm
        if fit_intercept:
            M[:d, d] = M[d, :d] = mom[f, 1] * m / s if s > 0 else 0.0
            M[d, d] = mom[f, 0]
        return M

    V = np.zeros(k)
    V[:d] = mom[3, 1] * m / s if s > 0 else 0.0
    if fit_intercept:
        V[d] = mom[3, 0]
    return second(0), second(1), float(mom[2, 0]), V


# ---------------------------------------------------------------------------------
# Monte Carlo
# ---------------------------------------------------------------------------------
def _monte_carlo(design, fit_intercept, n_mc, seed, chunk=50_000):
    rng = np.random.default_rng(seed)
    sums = {key: 0.0 for key in ("C", "S", "kappa", "V")}
    squares = dict(sums)
    done = 0
    while done < n_mc:
        m = min(chunk, n_mc - done)
        X, y = design.sample(m, rng)
        eta = X @ design.beta0 + design.intercept
        g, h = design.family.grad(y, eta), design.family.hess(y, eta)
        Xt = np.hstack([X, np.ones((m, 1))]) if fit_intercept else X
        outer = Xt[:, :, None] * Xt[:, None, :]  # x~ x~^T per sample
        terms = {"C": h[:, None, None] * outer, "S": (g * g)[:, None, None] * outer,
                 "kappa": np.abs(g), "V": (np.sign(g) * h)[:, None] * Xt}
        for key, t in terms.items():
            sums[key] = sums[key] + t.sum(axis=0)
            squares[key] = squares[key] + (t * t).sum(axis=0)
        done += m
    mean = {key: v / n_mc for key, v in sums.items()}
    # standard error of a mean: sqrt((E t^2 - (E t)^2) / (n - 1))
    se = {key: np.sqrt(np.maximum(squares[key] / n_mc - mean[key] ** 2, 0.0) / (n_mc - 1))
          for key in sums}
    C = 0.5 * (mean["C"] + mean["C"].T)
    S = 0.5 * (mean["S"] + mean["S"].T)
    return C, S, float(mean["kappa"]), mean["V"], se


def limit_quantities(design, n_mc=200_000, method="auto", fit_intercept=True, seed=0):
    """C, Sigma_W, kappa and V of ``design`` at its truth (docs/theory.md §4).

    .. math::

        C = E[l''\\tilde x\\tilde x^\\top], \\quad
        \\Sigma_W = E[l'^2\\tilde x\\tilde x^\\top], \\quad
        \\kappa = E|l'|, \\quad V = E[\\operatorname{sign}(l')\\, l''\\, \\tilde x],

    x~ = (x, 1) with an intercept (entry last), all at (beta0, b0).

    Parameters
    ----------
    design : GLMDesign
    n_mc : int, default 200_000
        Monte Carlo sample size (method "mc").
    method : {"auto", "exact", "mc"}, default "auto"
        "mc": Monte Carlo integration with ``n_mc`` draws of (x, y), with standard
        errors. "exact": closed forms for the gaussian family (C = diag(Sigma, 1),
        Sigma_W = E[eps^2] C, kappa = E|sigma eps| (sigma sqrt(2/pi) for normal noise),
        V = (0, ..., 0, P(eps < 0) - P(eps > 0))); for binomial and poisson, the
        expectations reduce to one-dimensional integrals along eta ~ N(b0, s^2),
        s^2 = beta0^T Sigma beta0 (x given eta is gaussian), computed by adaptive
        quadrature to ~1e-10. "auto" is "exact".
    fit_intercept : bool, default True
        Whether x~ carries the constant (the estimators fit an intercept).
    seed : int, SeedSequence or None
        Seed of the Monte Carlo draws.

    Returns
    -------
    LimitQuantities
    """
    design = _check_design(design)
    fit_intercept = check_bool(fit_intercept, "fit_intercept")
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    names = labels(design.n_features, fit_intercept)
    if method in ("auto", "exact"):
        C, S, kappa, V = _exact(design, fit_intercept)
        zero = np.zeros_like(C)
        kind = "closed_form" if isinstance(design.family, Gaussian) else "quadrature"
        return LimitQuantities(C=C, Sigma_W=S, kappa=kappa, V=V, names=names, method=kind,
                               C_se=zero, Sigma_W_se=zero, kappa_se=0.0,
                               V_se=np.zeros_like(V))
    n_mc = _check_count(n_mc, "n_mc", minimum=2)
    C, S, kappa, V, se = _monte_carlo(design, fit_intercept, n_mc, seed)
    return LimitQuantities(C=C, Sigma_W=S, kappa=kappa, V=V, names=names,
                           method="monte_carlo", n_mc=n_mc, C_se=se["C"],
                           Sigma_W_se=se["S"], kappa_se=float(se["kappa"]), V_se=se["V"])


# ---------------------------------------------------------------------------------
# the directional derivative P'(beta0; u)
# ---------------------------------------------------------------------------------
def resolve_limit_penalty(penalty):
    """A convex Penalty from None ("l1", the dual norm of FGSM's Linf box), a name, a
    Penalty or a symmetric Perturbation (its dual norm)."""
    if penalty is None:
        penalty = "l1"
    if isinstance(penalty, Perturbation):
        if not penalty.symmetric:
            raise ValueError(f"penalty: the perturbation set {penalty!r} is not symmetric; "
                             "the theory of docs/theory.md §4 needs a norm")
        return DualNorm(penalty)
    penalty = resolve_penalty(penalty)
    if not isinstance(penalty, Penalty) or not penalty.convex:
        raise ValueError(f"penalty must be convex here (a norm, ridge or L_r with r >= 1), "
                         f"got {penalty!r}")
    return penalty


def directional_derivative(penalty, beta0):
    """The map u -> P'(beta0; u), the directional derivative of P at beta0.

    .. math:: P'(\\beta_0; u) = \\lim_{t \\to 0^+} \\frac{P(\\beta_0 + t u) - P(\\beta_0)}{t}.

    ``penalty`` as in ``sample_limit_law`` (None is "l1"); returns a
    ``DirectionalDerivative`` (see there for the closed forms and the supported penalties).
    """
    return DirectionalDerivative(penalty, beta0)


class DirectionalDerivative:
    """u -> P'(beta0; u) = lim_{t -> 0+} (P(beta0 + t u) - P(beta0)) / t.

    Closed forms, with s = sign(beta0) and Z = {j : beta0_j = 0}:

    * weighted L1 (``"l1"``, ``WeightedL1(w)``): sum_{j not in Z} w_j s_j u_j
      + sum_{j in Z} w_j |u_j|;
    * l_q norm, 1 < q < inf (``"l2"``, ``Lq(q)``): grad ||beta0||_q^T u with
      grad_j = s_j |beta0_j|^{q-1} / ||beta0||_q^{q-1} (beta0 != 0), ||u||_q at beta0 = 0;
    * ``"linf"``: max_{j in J} s_j u_j over J = argmax_j |beta0_j|, ||u||_inf at 0;
    * ``Lr(r)``, r > 1: sum_j r |beta0_j|^{r-1} s_j u_j; ``"ridge"``: beta0^T u.

    Calling it on an array U of shape (m, d) gives the m values; ``cvx(U)`` the same as
    a cvxpy expression (convex in U) of shape (m,).
    """

    def __init__(self, penalty, beta0):
        self.penalty = resolve_limit_penalty(penalty)
        beta0 = np.asarray(beta0, dtype=float)
        self.penalty.check_dim(beta0.shape[0])
        s, pen = np.sign(beta0), self.penalty
        self.linear = np.zeros_like(beta0)  # the differentiable part g^T u
        self.abs_weights = None  # w_j |u_j| on the zeros (weighted L1)
        self.norm_q = None  # ||u||_q at beta0 = 0
        self.max_set = None  # (J, s_J) for the linf case
        pert = pen.perturbation if isinstance(pen, DualNorm) else None
        if isinstance(pert, WeightedLinf) or (isinstance(pert, Lp) and pert.q == 1.0) \
                or (isinstance(pen, Lr) and pen.r == 1.0):
            w = pert.scales if isinstance(pert, WeightedLinf) else np.ones_like(beta0)
            zero = beta0 == 0
            self.linear = np.where(zero, 0.0, w * s)
            self.abs_weights = np.where(zero, w, 0.0)
        elif isinstance(pert, Lp):
            q = pert.q
            norm = pen.value(beta0)
            if norm == 0.0:
                self.norm_q = q
            elif np.isinf(q):
                big = np.abs(beta0) >= np.max(np.abs(beta0)) * (1 - 1e-12)
                idx = np.flatnonzero(big)
                self.max_set = (idx, s[idx])
            else:
                # d||b||_q / db_j = s_j |b_j|^{q-1} / ||b||_q^{q-1}
                self.linear = s * np.abs(beta0) ** (q - 1.0) / norm ** (q - 1.0)
        elif isinstance(pen, Lr):  # r > 1: differentiable
            self.linear = pen.r * np.abs(beta0) ** (pen.r - 1.0) * s
        elif isinstance(pen, SquaredL2):
            self.linear = beta0.copy()
        else:
            raise ValueError(f"penalty {pen!r}: the directional derivative is implemented for "
                             "weighted L1, l_q norms, L_r (r >= 1) and ridge")

    def __call__(self, U):
        U = np.atleast_2d(np.asarray(U, dtype=float))
        out = U @ self.linear
        if self.abs_weights is not None:
            out = out + np.abs(U) @ self.abs_weights
        if self.norm_q is not None:
            out = out + np.linalg.norm(U, ord=self.norm_q, axis=1)
        if self.max_set is not None:
            idx, sg = self.max_set
            out = out + np.max(U[:, idx] * sg, axis=1)
        return out

    def cvx(self, U):
        out = U @ self.linear
        if self.abs_weights is not None:
            out = out + cp.abs(U) @ self.abs_weights
        if self.norm_q is not None:
            out = out + cp.norm(U, self.norm_q, axis=1)
        if self.max_set is not None:
            idx, sg = self.max_set
            out = out + cp.max(cp.multiply(U[:, idx], np.tile(sg, (U.shape[0], 1))), axis=1)
        return out


# ---------------------------------------------------------------------------------
# the limit law
# ---------------------------------------------------------------------------------
def _sqrt_psd(A):
    """R with R R^T = A for a symmetric positive semidefinite A."""
    w, Q = np.linalg.eigh(0.5 * (A + A.T))
    return Q * np.sqrt(np.maximum(w, 0.0))


def limit_argmin(C, W, linear, pen_deriv, scale, solver="CLARABEL", chunk=500):
    """Rows u_r = argmin_u 1/2 u^T C u - u^T (W_r - linear) + scale P'(beta0; u_coef).

    One small convex program per draw; the draws are separable, so a chunk of them is
    solved as one program in a matrix variable (its minimiser is the rowwise minimisers).
    """
    m, k = W.shape
    d = pen_deriv.linear.shape[0]
    L = np.linalg.cholesky(C)  # u^T C u = ||L^T u||^2; C positive definite
    out = np.empty((m, k))
    for start in range(0, m, chunk):
        rows = slice(start, min(start + chunk, m))
        Wc = W[rows] - linear
        U = cp.Variable(Wc.shape)
        # sum over draws r of 1/2 u_r^T C u_r - u_r^T w_r + scale P'(beta0; u_r)
        obj = 0.5 * cp.sum_squares(U @ L) - cp.sum(cp.multiply(U, Wc))
        if scale > 0:
            obj = obj + scale * cp.sum(pen_deriv.cvx(U[:, :d]))
        prob = cp.Problem(cp.Minimize(obj))
        kwargs = {}
        if solver == "CLARABEL":
            kwargs = {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12}
        elif solver == "ECOS":
            kwargs = {"abstol": 1e-11, "reltol": 1e-11, "feastol": 1e-11}
        prob.solve(solver=solver, **kwargs)
        if prob.status not in ("optimal", "optimal_inaccurate") or U.value is None:
            from ..exceptions import SolverError

            raise SolverError(f"the limit-law program failed with status {prob.status}",
                              status=prob.status, solver=solver)
        out[rows] = U.value
    return out


def sample_limit_law(design, lam, alpha=0.0, penalty=None, n_draws=1000, seed=None,
                     fit_intercept=True, estimator="fgsm", quantities=None,
                     solver="CLARABEL"):
    """Draws of argmin_u Z(u), the limit law of sqrt(n)(theta_hat - theta0).

    .. math::

        Z(u) = \\tfrac12 u^\\top C u - u^\\top W + (1-\\alpha)\\lambda
            \\big[\\kappa P'(\\beta_0; u) + P(\\beta_0) V^\\top u\\big],
        \\qquad W \\sim N(0, \\Sigma_W)

    (docs/theory.md §4), for FGSM at eps_n = lam / sqrt(n). With ``estimator="penalized"``,
    the limit of the penalised-likelihood twin at lam'_n = (1 - alpha) lam kappa / sqrt(n):
    the same Z without the P(beta0) V^T u term. Each draw is a small convex program
    (cvxpy; a chunk of draws is solved as one separable program).

    Parameters
    ----------
    design : GLMDesign
    lam : float >= 0
        eps_n = lam / sqrt(n).
    alpha : float in [0, 1], default 0
        Weight of the clean loss.
    penalty : None, str, Penalty or Perturbation
        P: the dual norm of the attack set; None is "l1" (the Linf box of FGSM). A
        symmetric Perturbation stands for its dual norm.
    n_draws : int, default 1000
    seed : int, SeedSequence or None
    fit_intercept : bool, default True
        With an intercept, u = (u_coef, u_intercept) (intercept last, unpenalised).
    estimator : {"fgsm", "penalized"}
    quantities : LimitQuantities or None
        Precomputed ``limit_quantities(design)`` (computed exactly when None).
    solver : str, default "CLARABEL"
        The conic solver (tight tolerances are set for CLARABEL and ECOS).

    Returns
    -------
    ndarray, shape (n_draws, k)
        Draws of argmin Z, coefficients then intercept. A draw's coordinate j with
        beta0_j = 0 is the limit of sqrt(n) beta_hat_j; it is exactly 0 with positive
        probability (solver zeros are ~1e-10; see ``simulate``'s ``p_zero`` threshold).
    """
    design = _check_design(design)
    lam = check_scalar(lam, "lam", lower=0.0)
    alpha = check_scalar(alpha, "alpha", lower=0.0, upper=1.0)
    fit_intercept = check_bool(fit_intercept, "fit_intercept")
    n_draws = _check_count(n_draws, "n_draws")
    if not isinstance(estimator, str) or estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    q = quantities if quantities is not None else limit_quantities(
        design, fit_intercept=fit_intercept)
    if not isinstance(q, LimitQuantities):
        raise TypeError(f"quantities must be LimitQuantities, got {type(q).__name__}")
    k = design.n_features + (1 if fit_intercept else 0)
    if q.C.shape != (k, k):
        raise ValueError(f"quantities has shape {q.C.shape}, expected ({k}, {k}) "
                         f"(fit_intercept={fit_intercept})")
    pen_deriv = directional_derivative(penalty, design.beta0)
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n_draws, k)) @ _sqrt_psd(q.Sigma_W).T  # Cov(W) = Sigma_W
    shrink = (1.0 - alpha) * lam
    linear = np.zeros(k)
    if estimator == "fgsm":
        # the kappa-moves-with-theta term (1 - alpha) lam P(beta0) V^T u
        linear = shrink * pen_deriv.penalty.value(design.beta0) * q.V
    return limit_argmin(q.C, W, linear, pen_deriv, shrink * q.kappa, solver=solver)
