"""Sign-neutrality diagnostics: V_hat, its standard errors and a Wald test of V = 0.

docs/theory.md §4: FGSM and its penalised-likelihood twin have the same first-order limit
exactly when the sign-neutrality vector

.. math:: V = E[\\operatorname{sign}(l'(y, \\eta))\\, l''(y, \\eta)\\, \\tilde x],
          \\qquad \\tilde x = (x, 1) \\text{ with an intercept},

vanishes. Here its plug-in estimate, the weighted mean kappa_hat of |l'| (the automatic
noise scale) and the curvature matrix C_hat = sum_i w_i l''_i x~_i x~_i^T.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.stats import chi2

from ..families import Hinge
from ..problem import AdversarialProblem
from ..result import _json_float


def labels(d, fit_intercept, names=None):
    """Row labels: the given names (or x0, x1, ...) and "intercept" last."""
    names = [f"x{j}" for j in range(d)] if names is None else [str(v) for v in names]
    if len(names) != d:
        raise ValueError(f"feature_names has {len(names)} entries, expected {d} (n_features)")
    return names + (["intercept"] if fit_intercept else [])


def _augmented(X, fit_intercept):
    """x~ = (x, 1) as a matrix (sparse stays sparse)."""
    if not fit_intercept:
        return X
    ones = np.ones((X.shape[0], 1))
    return sp.hstack([X, ones], format="csr") if sp.issparse(X) else np.hstack([X, ones])


def weighted_gram(X, v, fit_intercept):
    """sum_i v_i x~_i x~_i^T (dense (d+1) x (d+1), or d x d without intercept)."""
    Xt = _augmented(X, fit_intercept)
    if sp.issparse(Xt):
        return np.asarray((Xt.T @ Xt.multiply(v[:, None])).todense())
    return Xt.T @ (Xt * v[:, None])


def scores(prob, coef, intercept):
    """(l'_i, l''_i) at eta = X beta + b for the problem's family and data."""
    eta = prob.linear_predictor(coef, intercept)
    return prob.family.grad(prob.y, eta), prob.family.hess(prob.y, eta)


# hinge samples within this distance (relative to 1 + |eta|) of the kink 1 - y eta = 0
# count as on it: a solver's point leaves them 1e-11-1e-10 off it on either side
KINK_TOL = 1e-7


def kappa_hat(prob, coef, intercept):
    """kappa_hat = sum_i w_i |l'(y_i, eta_i)| (docs/theory.md §4), at the clean predictor.

    Hinge's l' at its kink takes the convention sign(0) = 0 for the samples within
    ``KINK_TOL`` of it: at eps >= eps_max (beta = 0, b = +-1) the heavier class sits
    exactly there, and the solvers' intercepts (1 - 4e-11, 1 - 1.3e-10) decided on
    which side, giving kappa = 0.8 (cvxpy) and 1.0 (fast) for 13/30 on one problem."""
    g, _ = scores(prob, coef, intercept)
    if isinstance(prob.family, Hinge):
        eta = prob.linear_predictor(coef, intercept)
        g = np.where(np.abs(1.0 - prob.y * eta) <= KINK_TOL * (1.0 + np.abs(eta)), 0.0, g)
    return float(prob.sample_weight @ np.abs(g))


def curvature(prob, coef, intercept):
    """C_hat = sum_i w_i l''(y_i, eta_i) x~_i x~_i^T."""
    _, h = scores(prob, coef, intercept)
    return weighted_gram(prob.X, prob.sample_weight * h, prob.fit_intercept)


@dataclass(frozen=True)
class SignNeutrality:
    """V_hat with standard errors and the Wald test of V = 0.

    .. math:: W = \\hat V^\\top \\widehat{\\mathrm{Cov}}(\\hat V)^{+} \\hat V
              \\;\\sim\\; \\chi^2_{\\mathrm{rank}} \\text{ under } V = 0.

    Attributes
    ----------
    V, se : ndarray
        The estimate and the standard error of each entry (coefficients, then intercept).
    cov : ndarray
        Estimated covariance of V_hat.
    statistic, df, p_value : float, int, float
        Wald statistic V^T cov^+ V, degrees of freedom rank(cov), and the chi-square
        p-value (NaN when cov = 0, e.g. hinge where l'' = 0).
    names : list of str
    """

    V: np.ndarray
    se: np.ndarray
    cov: np.ndarray
    statistic: float
    df: int
    p_value: float
    names: list

    def to_dict(self):
        """JSON-safe dictionary (plain floats and lists)."""
        return {"names": list(self.names), "V": [_json_float(v) for v in self.V],
                "V_se": [_json_float(v) for v in self.se],
                "statistic": _json_float(self.statistic), "df": int(self.df),
                "p_value": _json_float(self.p_value)}

    def __str__(self):
        rows = [f"{'':>12} {'V_hat':>12} {'se':>12} {'z':>8}"]
        for name, v, s in zip(self.names, self.V, self.se, strict=True):
            z = v / s if s > 0 else math.nan
            rows.append(f"{name:>12} {v:12.4e} {s:12.4e} {z:8.2f}")
        rows.append(f"Wald test of V = 0: statistic {self.statistic:.4g}, df {self.df}, "
                    f"p-value {self.p_value:.4g}")
        return "\n".join(rows)


def sign_neutrality(X, y, coef, intercept, family, sample_weight=None, feature_names=None):
    """The sign-neutrality vector V_hat, its standard errors and a Wald test of V = 0.

    .. math::

        \\hat V = \\sum_i w_i\\, s_i\\, l''(y_i, \\eta_i)\\, \\tilde x_i, \\qquad
        \\widehat{\\mathrm{Cov}}(\\hat V) = \\frac{1}{1 - \\sum_i w_i^2}
            \\sum_i w_i^2 (z_i - \\hat V)(z_i - \\hat V)^\\top,

    z_i = s_i l''_i x~_i, s_i = sign(l'(y_i, eta_i)), eta_i = x_i^T beta + b, x~ = (x, 1)
    (the intercept entry last; without one when ``intercept`` is None), weights
    normalised to sum one (uniform weights: the usual S^2 / n). The Wald statistic
    V^T Cov^+ V is referred to chi-square with rank(Cov) degrees of freedom.

    Conventions: sign(0) = 0, so a sample with l' = 0 (a gaussian or huber residual of
    exactly 0, a hinge point on or beyond the margin) contributes nothing, as FGSM leaves
    it unperturbed. Huber's l'' is 1 inside the threshold and 0 outside. The hinge loss
    has l'' = 0, so V_hat = 0 identically (its curvature is a point mass at the margin,
    outside this first-order theory) and the test is undefined (p-value NaN).

    The standard errors treat (coef, intercept) as fixed: they are the sampling error of
    the weighted mean at the given fit, not including the estimation error of the fit
    itself (an extra O(1/sqrt(n)) term when V_hat is evaluated at an estimate).

    Parameters
    ----------
    X, y, family, sample_weight
        As in ``AdversarialProblem``.
    coef : array-like, shape (n_features,)
    intercept : float or None
        None: no intercept (x~ = x).
    feature_names : list of str or None
        Labels for the report.

    Returns
    -------
    SignNeutrality
    """
    fit_intercept = intercept is not None
    prob = AdversarialProblem(X, y, family=family, eps=0.0, alpha=1.0,
                              fit_intercept=fit_intercept, sample_weight=sample_weight)
    coef, b = prob.check_coef(coef, 0.0 if intercept is None else intercept)
    return sign_neutrality_at(prob, coef, b, feature_names)


def sign_neutrality_at(prob, coef, intercept, names=None):
    """``sign_neutrality`` for a validated problem (its data, family and weights)."""
    g, h = scores(prob, coef, intercept)
    w = prob.sample_weight
    a = np.sign(g) * h  # z_i = a_i x~_i
    Xt = _augmented(prob.X, prob.fit_intercept)
    V = np.asarray(Xt.T @ (w * a)).ravel()
    # sum w^2 (a x~ - V)(a x~ - V)^T = sum w^2 a^2 x~x~^T - m V^T - V m^T + (sum w^2) V V^T,
    # m = sum w^2 a x~ (expanded so that sparse X is never densified)
    m = np.asarray(Xt.T @ (w * w * a)).ravel()
    sw2 = float(w @ w)
    cov = weighted_gram(prob.X, w * w * a * a, prob.fit_intercept) - np.outer(m, V) \
        - np.outer(V, m) + sw2 * np.outer(V, V)
    if sw2 < 1.0:  # unbiased for uniform weights: n / (n - 1)
        cov = cov / (1.0 - sw2)
    cov = 0.5 * (cov + cov.T)
    se = np.sqrt(np.maximum(np.diag(cov), 0.0))
    scale = float(np.max(np.abs(np.diag(cov)), initial=0.0))
    if scale == 0.0:
        stat, df, p = 0.0, 0, math.nan
    else:
        eig = np.linalg.eigvalsh(cov)
        df = int(np.sum(eig > 1e-10 * eig.max()))
        stat = float(V @ np.linalg.pinv(cov, rcond=1e-10, hermitian=True) @ V)
        p = float(chi2.sf(stat, df))
    return SignNeutrality(V=V, se=se, cov=cov, statistic=stat, df=df, p_value=p,
                          names=labels(prob.n_features, prob.fit_intercept, names))
