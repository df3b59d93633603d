"""Data-generating processes for the asymptotic theory (docs/theory.md §4).

A ``GLMDesign`` is an iid model for (x, y): gaussian features with a given covariance and
a response drawn from a GLM at the truth (beta0, b0),

.. math::

    x \\sim N(0, \\Sigma), \\qquad \\eta = x^\\top \\beta_0 + b_0, \\qquad
    y \\mid x \\sim \\begin{cases}
        \\eta + \\sigma \\varepsilon & \\text{gaussian} \\\\
        \\mathrm{Bernoulli}(\\operatorname{expit}(\\eta)) & \\text{binomial (logistic)} \\\\
        \\mathrm{Poisson}(e^{\\eta}) & \\text{poisson}
    \\end{cases}

with, for the gaussian family, sigma = ``noise_scale`` and epsilon independent of x:
standard normal, centred exponential Exp(1) - 1 (mean 0, median log 2 - 1 != 0: skewed),
or Student t with ``noise_df`` degrees of freedom. For logistic regression the class
balance is set through the intercept b0 (P(y = 1) = E[expit(eta)]).
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy.special import expit

from .._validation import check_scalar, check_vector
from ..families import Binomial, Gaussian, Poisson
from ..problem import resolve_family

__all__ = ["NOISES", "GLMDesign"]

#: Noise laws of the gaussian family (epsilon before scaling by noise_scale).
NOISES = ("normal", "exponential", "t")

#: Families with a data-generating process here.
DESIGN_FAMILIES = (Gaussian, Binomial, Poisson)


def _check_rng(rng):
    """A numpy Generator from a Generator, a seed (int / SeedSequence) or None."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (numbers.Integral, np.random.SeedSequence)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy Generator, a seed or None, got {type(rng).__name__}")


class GLMDesign:
    """An iid generalized-linear-model design: gaussian features and a GLM response.

    .. math::

        x \\sim N(0, \\Sigma), \\quad \\eta = x^\\top\\beta_0 + b_0, \\quad
        E[y \\mid x] = \\mu(\\eta)

    (identity link for gaussian, logit for binomial, log for poisson).

    Parameters
    ----------
    family : Family or str
        "gaussian", "binomial" (= "logistic") or "poisson".
    beta0 : array-like, shape (d,)
        True coefficients (zeros are the "true zeros" of the selection results).
    intercept : float, default 0.0
        True intercept b0 (for logistic regression it sets the class balance).
    feature_cov : array-like, shape (d, d), or None
        Covariance Sigma of the (mean-zero gaussian) features; None is the identity.
        Must be symmetric positive definite.
    noise : {"normal", "exponential", "t"}, default "normal"
        Gaussian family only: the law of epsilon in y = eta + noise_scale * epsilon.
        "exponential" is Exp(1) - 1 (mean 0, skewed, median log 2 - 1); "t" is Student t
        with ``noise_df`` degrees of freedom (not rescaled to unit variance).
    noise_scale : float > 0, default 1.0
        Gaussian family only: sigma.
    noise_df : float > 2, default 5.0
        Degrees of freedom of the t noise (> 2 so that the score covariance is finite).

    Attributes
    ----------
    family, beta0, intercept, feature_cov, noise, noise_scale, noise_df
    n_features : int

    Examples
    --------
    >>> import numpy as np, fgsm_cvx as fc
    >>> design = fc.theory.GLMDesign("logistic", [1.0, -0.5, 0.0], intercept=0.5)
    >>> X, y = design.sample(1000, np.random.default_rng(0))
    """

    def __init__(self, family, beta0, intercept=0.0, feature_cov=None, noise="normal",
                 noise_scale=1.0, noise_df=5.0):
        family = resolve_family(family)
        if not isinstance(family, DESIGN_FAMILIES):
            raise ValueError(f"family must be gaussian, binomial (logistic) or poisson for a "
                             f"GLMDesign, got {family!r}")
        self.family = family
        self.beta0 = check_vector(beta0, "beta0")
        if self.beta0.shape[0] < 1:
            raise ValueError("beta0 must have at least one entry")
        d = self.beta0.shape[0]
        self.intercept = check_scalar(intercept, "intercept")
        if feature_cov is None:
            cov = np.eye(d)
        else:
            cov = np.asarray(feature_cov, dtype=float)
            if cov.shape != (d, d):
                raise ValueError(f"feature_cov must have shape ({d}, {d}) (len(beta0)), got "
                                 f"{cov.shape}")
            if not np.all(np.isfinite(cov)) or not np.allclose(cov, cov.T, rtol=1e-10,
                                                                  atol=1e-12):
                raise ValueError("feature_cov must be a finite symmetric matrix")
        try:
            # x = L z with z ~ N(0, I) has covariance L L^T = Sigma
            self._chol = np.linalg.cholesky(cov)
        except np.linalg.LinAlgError as exc:
            raise ValueError("feature_cov must be positive definite") from exc
        self.feature_cov = cov
        if not isinstance(noise, str) or noise.lower() not in NOISES:
            raise ValueError(f"noise must be one of {NOISES}, got {noise!r}")
        self.noise = noise.lower()
        self.noise_scale = check_scalar(noise_scale, "noise_scale", lower=0.0,
                                        lower_inclusive=False)
        self.noise_df = check_scalar(noise_df, "noise_df", lower=2.0, lower_inclusive=False)
        if not isinstance(family, Gaussian) and (self.noise != "normal"
                                                 or self.noise_scale != 1.0):
            raise ValueError(f"noise and noise_scale apply to the gaussian family only; the "
                             f"{family.name} response has no additive noise")

    @property
    def n_features(self):
        return self.beta0.shape[0]

    def __repr__(self):
        extra = ""
        if isinstance(self.family, Gaussian):
            extra = f", noise={self.noise!r}, noise_scale={self.noise_scale}"
            if self.noise == "t":
                extra += f", noise_df={self.noise_df}"
        return (f"GLMDesign(family={self.family!r}, beta0={self.beta0.tolist()}, "
                f"intercept={self.intercept}{extra})")

    # ----- the noise law (gaussian family) -------------------------------------------
    def noise_moments(self):
        """(E eps^2, E|eps|, P(eps > 0) - P(eps < 0)) of sigma * epsilon, in closed form.

        * normal: sigma^2, sigma sqrt(2/pi), 0;
        * exponential (Exp(1) - 1): sigma^2, 2 sigma / e (E|E - 1| = 2/e), 2/e - 1
          (P(E > 1) = 1/e);
        * t_nu: sigma^2 nu / (nu - 2), sigma 2 sqrt(nu) Gamma((nu+1)/2) /
          (sqrt(pi) (nu - 1) Gamma(nu/2)), 0.
        """
        from scipy.special import gammaln

        s, nu = self.noise_scale, self.noise_df
        if self.noise == "normal":
            return s * s, s * np.sqrt(2.0 / np.pi), 0.0
        if self.noise == "exponential":
            return s * s, 2.0 * s / np.e, 2.0 / np.e - 1.0
        mean_abs = 2.0 * np.sqrt(nu) * np.exp(gammaln((nu + 1) / 2) - gammaln(nu / 2)) \
            / (np.sqrt(np.pi) * (nu - 1.0))
        return s * s * nu / (nu - 2.0), s * mean_abs, 0.0

    def sample_noise(self, n, rng):
        """n draws of sigma * epsilon."""
        if self.noise == "normal":
            eps = rng.standard_normal(n)
        elif self.noise == "exponential":
            eps = rng.exponential(1.0, n) - 1.0  # E[Exp(1)] = 1: centred, median log 2 - 1
        else:
            eps = rng.standard_t(self.noise_df, n)
        return self.noise_scale * eps

    # ----- sampling ---------------------------------------------------------------
    def sample_X(self, n, rng=None):
        """n iid feature vectors x ~ N(0, Sigma), shape (n, d)."""
        rng = _check_rng(rng)
        return rng.standard_normal((n, self.n_features)) @ self._chol.T

    def sample_y(self, eta, rng=None):
        """The response given the linear predictors eta (one draw per entry)."""
        rng = _check_rng(rng)
        eta = np.asarray(eta, dtype=float)
        if isinstance(self.family, Gaussian):
            return eta + self.sample_noise(eta.shape[0], rng)
        if isinstance(self.family, Binomial):
            return (rng.random(eta.shape[0]) < expit(eta)).astype(float)
        return rng.poisson(np.exp(eta)).astype(float)

    def sample(self, n, rng=None):
        """Draw an iid sample of size n.

        Parameters
        ----------
        n : int >= 1
        rng : numpy Generator, int seed, SeedSequence or None

        Returns
        -------
        X : ndarray, shape (n, d)
        y : ndarray, shape (n,)
            Real for gaussian, {0, 1} for binomial, counts for poisson.
        """
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        rng = _check_rng(rng)
        X = self.sample_X(int(n), rng)
        y = self.sample_y(X @ self.beta0 + self.intercept, rng)
        return X, y
