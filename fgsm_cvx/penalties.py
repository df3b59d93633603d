"""Generalized-FGSM penalties P(beta) (THEORY.md §3).

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
is sum_j |beta_j|^r, convex for r >= 1; r < 1 is non-convex (local linear
approximation, planned with the penalised-likelihood module).
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
    conjugate_exponent,
)


class Penalty:
    """Base class: a nonnegative penalty P(beta) replacing the dual norm."""

    name = "penalty"
    convex = True

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

    def check_dim(self, d):
        """Raise ValueError if the penalty cannot act on d coefficients."""

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


class Lr(Penalty):
    """P(beta) = sum_j |beta_j|^r, r > 0 (the seed paper's L_r penalty).

    Convex for r >= 1. Noise scheme: d_j = sign(beta_j) |beta_j|^(r-1), so
    d^T beta = sum_j |beta_j|^r.
    """

    def __init__(self, r):
        self.r = check_scalar(r, "r", lower=0.0, lower_inclusive=False)
        self.convex = self.r >= 1.0
        self.name = f"L{self.r:g}"

    def __repr__(self):
        return f"Lr(r={self.r})"

    def value(self, beta):
        return float(np.sum(np.abs(beta) ** self.r))

    def cvx(self, beta):
        if not self.convex:
            raise ValueError(f"Lr(r={self.r}) is non-convex and has no DCP form")
        if self.r == 1.0:
            return cp.norm1(beta)
        return cp.sum(cp.power(cp.abs(beta), self.r))

    def noise(self, beta):
        beta = np.asarray(beta, dtype=float)
        out = np.zeros_like(beta)
        nz = beta != 0
        out[nz] = np.sign(beta[nz]) * np.abs(beta[nz]) ** (self.r - 1.0)
        return out

    def polar_at_zero(self, g):
        if self.r == 1.0:
            return float(np.max(np.abs(g)))
        if self.r > 1.0:  # P'(0; u) = 0: beta = 0 is optimal only if g = 0
            return 0.0 if not np.any(g) else np.inf
        return 0.0  # r < 1: P'(0; u) = +inf for u != 0, so 0 is always a local minimiser


PENALTIES = {
    "l1": L1,
    "lasso": L1,
    "l2": L2,
    "linf": Linf_penalty,
}
