"""Generalized-FGSM penalties P(beta) (docs/theory.md §3).

Generalized FGSM replaces the dual norm ||beta||_* in the predictor shift by a
penalty P(beta) >= 0:

.. math:: \\eta_i \\mapsto \\eta_i \\pm \\epsilon P(\\beta).

A convex P keeps the problem convex and goes through the same epigraph constraint
eps P(beta) <= t. Every penalty gives its numpy value, a cvxpy expression, a
"noise scheme" (a direction d with d^T beta = P(beta): the perturbation that realises
the shift) and ``polar_at_zero(g) = sup{g^T u : P'(0; u) <= 1}`` (the dual norm when P
is a norm; used by eps_max; +inf when P is flat at 0, e.g. L_r with r > 1).

The norm penalties are dual norms of perturbation sets (``DualNorm``): "l1" (Lasso,
from the Linf box), "l2", "linf", weighted L1, group norm, ellipsoid norm. ``Lr(r)``
is sum_j |beta_j|^r, convex for r >= 1. ``SquaredL2`` ("ridge") is ||beta||^2 / 2, for
the penalised-likelihood twin.

Non-convex penalties (``Lr`` with 0 < r < 1, ``SCAD``, ``MCP``) are separable,
P(beta) = sum_j p(|beta_j|) with p concave on [0, inf); they give the LLA weights
p'(|beta_j|) and are solved by the local linear approximation (``fgsm_cvx.lla``).
Every penalty with a closed-form ``prox`` is available on the fast path of
``penalized_fit``.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np

from ._validation import check_exponent, check_scalar
from .perturbations import L1 as L1Ball
from .perturbations import L2 as L2Ball
from .perturbations import (
    Ellipsoid,
    Group,
    Linf,
    Lp,
    Perturbation,
    WeightedLinf,
    _lp_coordinates,
    conjugate_exponent,
    prox_support,
)


class Penalty:
    """Base class: a nonnegative penalty P(beta) replacing the dual norm."""

    name = "penalty"
    convex = True
    #: Degree of homogeneity k, P(s beta) = s^k P(beta) for s > 0 (1 for norms, 2 for the
    #: ridge, r for L_r), or None when P is not homogeneous (SCAD, MCP). The backends'
    #: exact rescaling of X and y (``problem.Scaling``) multiplies eps by c^k / m.
    degree = 1.0

    def value(self, beta):  # pragma: no cover - abstract
        raise NotImplementedError

    def cvx(self, beta):  # pragma: no cover - abstract
        raise NotImplementedError

    def noise(self, beta):  # pragma: no cover - abstract
        """d with d^T beta = P(beta): the perturbation direction realising the shift."""
        raise NotImplementedError

    def polar_at_zero(self, g):  # pragma: no cover - abstract
        """sup{g^T u : P'(0; u) <= 1}, P'(0; .) the directional derivative at 0.

        For a norm P'(0; u) = P(u) and this is the polar (dual) norm of g. It is the
        threshold in eps_max: beta = 0 is optimal iff polar_at_zero(-grad) <= scale.
        """
        raise NotImplementedError

    def slope_at_zero(self, d):
        """A symmetric perturbation set S with sigma_S(u) = P'(0; u) on d coefficients,
        or None where there is none (P flat or infinitely steep at 0, or not known).

        The hinge's eps_max (``path._eps_max_hinge``) depends on P only through the
        directional derivative at 0, as it does on a set through its support function.
        """
        return None

    def check_dim(self, d):
        """Raise ValueError if the penalty cannot act on d coefficients."""

    def prox(self, v, c):
        """prox of c P at v, argmin_z ||z - v||^2 / 2 + c P(z) (the fast path's step).

        Raises NotImplementedError where there is no closed form (the fast path then
        refuses the penalty and names the cvxpy backend).
        """
        raise NotImplementedError(f"penalty {self!r} has no prox")

    def __call__(self, beta):
        return self.value(beta)


class DualNorm(Penalty):
    """P(beta) = ||beta||_*, the dual norm of a symmetric perturbation set S.

    Its noise scheme is the attacker's move on S, and its polar is the gauge of S
    (the dual of the dual norm).
    """

    def __init__(self, perturbation, name=None):
        if not isinstance(perturbation, Perturbation) or not perturbation.symmetric:
            raise TypeError("DualNorm needs a symmetric Perturbation")
        self.perturbation = perturbation
        self.name = name or f"dual norm of {perturbation!r}"

    def __repr__(self):
        return f"DualNorm({self.perturbation!r})"

    def check_dim(self, d):
        self.perturbation.check_dim(d)

    def value(self, beta):
        return self.perturbation.support(beta)

    def cvx(self, beta):
        return self.perturbation.support_cvx(beta)

    def noise(self, beta):
        return self.perturbation.unit_argmax(np.asarray(beta, dtype=float))

    def polar_at_zero(self, g):
        return self.perturbation.norm(g)

    def slope_at_zero(self, d):
        return self.perturbation  # a norm: P'(0; u) = P(u)

    def prox(self, v, c):
        # Moreau: prox of c ||.||_* = identity minus the projection onto the c-ball of ||.||
        return prox_support(self.perturbation, np.asarray(v, dtype=float), c)


def L1():
    """The Lasso penalty ||beta||_1 (dual of the Linf/FGSM box)."""
    return DualNorm(Linf(), "l1")


def L2():
    """The (non-squared) ridge penalty ||beta||_2."""
    return DualNorm(L2Ball(), "l2")


def Linf_penalty():
    """||beta||_inf (dual of the L1 ball)."""
    return DualNorm(L1Ball(), "linf")


def Lq(q):
    """||beta||_q, q in [1, inf]."""
    q = check_exponent(q, "q")
    return DualNorm(Lp(conjugate_exponent(q)), f"l{q}")


def WeightedL1(weights):
    """sum_j w_j |beta_j| (adaptive / weighted Lasso)."""
    return DualNorm(WeightedLinf(weights), "weighted_l1")


def GroupNorm(groups, q=2.0):
    """sum_g ||beta_g||_q (group Lasso for q = 2)."""
    q = check_exponent(q, "q")
    return DualNorm(Group(groups, p=conjugate_exponent(q)), "group")


def EllipsoidNorm(A):
    """||A^T beta||_2."""
    return DualNorm(Ellipsoid(A), "ellipsoid")


class SquaredL2(Penalty):
    """The ridge penalty with the glmnet convention,

    .. math:: P(\\beta) = \\tfrac12 \\|\\beta\\|_2^2 .

    With the gaussian loss (y - eta)^2 / 2 the penalised objective
    mean (y - eta)^2 / 2 + lam ||beta||^2 / 2 is scikit-learn's ``Ridge`` objective
    ||y - X beta||^2 + alpha ||beta||^2 divided by 2 n with alpha = n lam. Convex and
    differentiable; as a generalized-FGSM shift it is flat at 0.
    """

    name = "ridge"
    degree = 2.0

    def __repr__(self):
        return "SquaredL2()"

    def value(self, beta):
        beta = np.asarray(beta, dtype=float)
        return 0.5 * float(beta @ beta)

    def cvx(self, beta):
        return 0.5 * cp.sum_squares(beta)

    def noise(self, beta):
        return 0.5 * np.asarray(beta, dtype=float)  # d^T beta = ||beta||^2 / 2

    def polar_at_zero(self, g):
        return 0.0 if not np.any(g) else np.inf  # P'(0; u) = 0

    def prox(self, v, c):
        # argmin_z ||z - v||^2 / 2 + c ||z||^2 / 2 is v / (1 + c)
        return np.asarray(v, dtype=float) / (1.0 + c)


class SeparablePenalty(Penalty):
    """P(beta) = sum_j p(|beta_j|) with p(0) = 0 and p nondecreasing on [0, inf).

    Subclasses give ``p(u)`` and its (right) derivative ``dp(u)`` for u >= 0. The noise
    scheme of docs/theory.md §3 is d_j = sign(beta_j) p(|beta_j|) / |beta_j| (so that
    d^T beta = P(beta)), and ``lla_weights(beta) = p'(|beta_j|)`` are the weights of the
    local linear approximation, a majoriser when p is concave on [0, inf):

    .. math:: P(\\beta) \\le P(\\beta^k) + \\sum_j p'(|\\beta^k_j|)\\,(|\\beta_j| - |\\beta^k_j|).
    """

    def p(self, u):  # pragma: no cover - abstract
        raise NotImplementedError

    def dp(self, u):  # pragma: no cover - abstract
        raise NotImplementedError

    def value(self, beta):
        return float(np.sum(self.p(np.abs(np.asarray(beta, dtype=float)))))

    def lla_weights(self, beta):
        """p'(|beta_j|), j = 1..d (+inf where p has an infinite slope at 0)."""
        return self.dp(np.abs(np.asarray(beta, dtype=float)))

    def noise(self, beta):
        beta = np.asarray(beta, dtype=float)
        out = np.zeros_like(beta)
        nz = beta != 0
        a = np.abs(beta[nz])
        out[nz] = np.sign(beta[nz]) * self.p(a) / a
        return out

    def initial_slope(self):
        """p'(0+), the slope of each coordinate's term at 0 (0, finite or inf)."""
        return float(self.dp(np.zeros(1))[0])

    def polar_at_zero(self, g):
        # P'(0; u) = p'(0) ||u||_1, whose polar is ||g||_inf / p'(0)
        slope = self.initial_slope()
        if np.isinf(slope):
            return 0.0  # P'(0; u) = +inf for u != 0: beta = 0 is always a local minimiser
        if slope == 0.0:
            return 0.0 if not np.any(g) else np.inf
        return float(np.max(np.abs(g))) / slope

    def slope_at_zero(self, d):
        # P'(0; u) = p'(0) ||u||_1, the support of the box of half-width p'(0)
        slope = self.initial_slope()
        return WeightedLinf(np.full(d, slope)) if 0.0 < slope < np.inf else None

    def cvx(self, beta):
        raise ValueError(f"penalty {self!r} is non-convex and has no DCP form; generalized "
                         "FGSM with it is solved by the local linear approximation "
                         "(fc.solve dispatches to fc.lla_solve)")


class Lr(SeparablePenalty):
    """P(beta) = sum_j |beta_j|^r, r > 0 (the seed paper's L_r penalty).

    .. math:: P(\\beta) = \\sum_j |\\beta_j|^r, \\qquad p'(u) = r u^{r-1}.

    Convex for r >= 1 (a DCP form, and a prox for the fast path); for 0 < r < 1 it is
    concave in |beta_j| with p'(0+) = +inf and is solved by the local linear
    approximation: an infinite LLA weight pins that coefficient at 0 (the exact
    majoriser, not a cap). Noise scheme: d_j = sign(beta_j) |beta_j|^(r-1).
    """

    def __init__(self, r):
        self.r = check_scalar(r, "r", lower=0.0, lower_inclusive=False)
        self.degree = self.r  # sum_j |s beta_j|^r = s^r P(beta)
        self.convex = self.r >= 1.0
        self.name = f"L{self.r:g}"

    def __repr__(self):
        return f"Lr(r={self.r})"

    def p(self, u):
        return u ** self.r

    def dp(self, u):
        u = np.asarray(u, dtype=float)
        if self.r == 1.0:
            return np.ones_like(u)
        with np.errstate(divide="ignore"):  # r < 1 at u = 0: +inf, the true slope
            return self.r * u ** (self.r - 1.0)

    def cvx(self, beta):
        if not self.convex:
            return super().cvx(beta)
        if self.r == 1.0:
            return cp.norm1(beta)
        return cp.sum(cp.power(cp.abs(beta), self.r))

    def polar_at_zero(self, g):
        if self.r > 1.0:  # P'(0; u) = 0: beta = 0 is optimal only if g = 0
            return 0.0 if not np.any(g) else np.inf
        return super().polar_at_zero(g)  # r = 1: ||g||_inf; r < 1: 0

    def prox(self, v, c):
        """prox of c P at v (r >= 1): coordinatewise z + c r z^(r-1) = |v_j|, z >= 0."""
        if not self.convex:
            raise NotImplementedError(f"{self!r} is non-convex: no prox")
        v = np.asarray(v, dtype=float)
        if c <= 0:
            return v
        if self.r == 1.0:  # soft thresholding
            return np.sign(v) * np.maximum(np.abs(v) - c, 0.0)
        return np.sign(v) * _lp_coordinates(np.abs(v), c, self.r)


class SCAD(SeparablePenalty):
    """The SCAD penalty (Fan and Li 2001), normalised to unit slope at 0.

    .. math::

        p(u) = \\begin{cases} u & u \\le \\lambda \\\\
            \\frac{2a\\lambda u - u^2 - \\lambda^2}{2(a-1)\\lambda}
                & \\lambda < u \\le a\\lambda \\\\
            (a+1)\\lambda / 2 & u > a\\lambda \\end{cases}
        \\qquad p'(u) = \\min\\Big(1, \\frac{(a\\lambda - u)_+}{(a-1)\\lambda}\\Big).

    This is Fan and Li's p_lambda(u) divided by lambda: in generalized FGSM the overall
    strength is eps (the shift is eps P(beta)), so ``lam`` only says where the penalty
    bends (lam) and goes flat (a lam), in the units of the coefficients; near 0 it is
    the Lasso. Non-convex (concave in |beta_j|): solved by LLA.
    """

    degree = None  # not homogeneous: solved by LLA steps, each a weighted L1 shift

    convex = False

    def __init__(self, a=3.7, lam=1.0):
        self.a = check_scalar(a, "a", lower=2.0, lower_inclusive=False)
        self.lam = check_scalar(lam, "lam", lower=0.0, lower_inclusive=False)
        self.name = "scad"

    def __repr__(self):
        return f"SCAD(a={self.a}, lam={self.lam})"

    def p(self, u):
        a, lam = self.a, self.lam
        u = np.asarray(u, dtype=float)
        mid = (2.0 * a * lam * u - u * u - lam * lam) / (2.0 * (a - 1.0) * lam)
        return np.where(u <= lam, u, np.where(u <= a * lam, mid, 0.5 * (a + 1.0) * lam))

    def dp(self, u):
        a, lam = self.a, self.lam
        u = np.asarray(u, dtype=float)
        return np.minimum(1.0, np.maximum(a * lam - u, 0.0) / ((a - 1.0) * lam))


class MCP(SeparablePenalty):
    """The minimax concave penalty (Zhang 2010), normalised to unit slope at 0.

    .. math::

        p(u) = \\begin{cases} u - u^2 / (2\\gamma\\lambda) & u \\le \\gamma\\lambda \\\\
            \\gamma\\lambda / 2 & u > \\gamma\\lambda \\end{cases}
        \\qquad p'(u) = (1 - u / (\\gamma\\lambda))_+ .

    Zhang's p_lambda(u) divided by lambda (see ``SCAD`` for why). Non-convex: LLA.
    """

    degree = None  # not homogeneous: solved by LLA steps, each a weighted L1 shift

    convex = False

    def __init__(self, gamma=3.0, lam=1.0):
        self.gamma = check_scalar(gamma, "gamma", lower=0.0, lower_inclusive=False)
        self.lam = check_scalar(lam, "lam", lower=0.0, lower_inclusive=False)
        self.name = "mcp"

    def __repr__(self):
        return f"MCP(gamma={self.gamma}, lam={self.lam})"

    def p(self, u):
        k = self.gamma * self.lam
        u = np.asarray(u, dtype=float)
        return np.where(u <= k, u - u * u / (2.0 * k), 0.5 * k)

    def dp(self, u):
        return np.maximum(1.0 - np.asarray(u, dtype=float) / (self.gamma * self.lam), 0.0)


PENALTIES = {
    "l1": L1,
    "lasso": L1,
    "l2": L2,
    "linf": Linf_penalty,
    "ridge": SquaredL2,
}
