"""Asymmetric boxes on the fast path: the two shifts and the projection onto their epigraph.

For a set S that is not symmetric the reachable predictors form the interval
[eta - eps sigma_S(-beta), eta + eps sigma_S(beta)] (docs/theory.md §2), so the fast path
carries two shifts t = (t_up, t_dn) and the feasible set

.. math::

    K = \\{(\\beta, t_{up}, t_{dn}) : \\epsilon\\sigma_S(\\beta) \\le t_{up},\\;
          \\epsilon\\sigma_S(-\\beta) \\le t_{dn}\\}.

The worst-case term max(l(eta + t_up), l(eta - t_dn)) is nondecreasing in both shifts,
so both constraints are tight at the optimum and the relaxation is exact.

For a box S = {l <= delta <= u} (l <= 0 <= u) the support function is separable,

.. math:: \\sigma_S(\\beta) = \\sum_j u_j (\\beta_j)_+ + (-l_j) (\\beta_j)_-,

and so is sigma_S(-beta) (u and -l swapped). A ``Masked`` box is the box with
l_j = u_j = 0 on the immutable features: they are free (no shift contribution).

Without the clean term (alpha = 0) and with an intercept a box needs none of this: it is
its centre m = (u + l)/2 plus the symmetric box of half-widths q = (u - l)/2, so the
interval of predictors is centred at eta + eps m^T beta with half-width
eps sum_j q_j |beta_j| (``centred_box``), the interval of the weighted l-inf ball
``WeightedLinf(q)`` around the predictor with the intercept b + eps m^T beta.
"""

from __future__ import annotations

import numpy as np

from ..perturbations import Box, Masked, WeightedLinf

#: Newton steps per 1-d search (each search ends after finitely many; this only guards).
_MAX_STEPS = 200


class BoxShift:
    """The pair (sigma_S(beta), sigma_S(-beta)) of a box S = {lower <= delta <= upper}.

    Parameters
    ----------
    lower, upper : ndarray, shape (n_features,)
        The box's bounds per feature (lower <= 0 <= upper; both 0 on an immutable feature).
    """

    def __init__(self, lower, upper):
        self.lower = np.asarray(lower, dtype=float)
        self.upper = np.asarray(upper, dtype=float)

    def __repr__(self):
        return f"BoxShift(lower={self.lower.tolist()}, upper={self.upper.tolist()})"

    @classmethod
    def from_perturbation(cls, perturbation, d):
        """The BoxShift of a ``Box`` or a ``Masked`` box (masks nest) on d features, or
        None for any other set."""
        if isinstance(perturbation, Box):
            lo, hi = perturbation._bounds(d)
            return cls(lo.copy(), hi.copy())
        if isinstance(perturbation, Masked):
            inner = cls.from_perturbation(perturbation.base, perturbation.indices.shape[0])
            if inner is None:
                return None
            lo, hi = np.zeros(d), np.zeros(d)  # immutable features: delta_j = 0
            lo[perturbation.indices], hi[perturbation.indices] = inner.lower, inner.upper
            return cls(lo, hi)
        return None

    def value(self, beta):
        """(sigma_S(beta), sigma_S(-beta)) as a length-2 array.

        sigma_S(beta) = u^T beta_+ + (-l)^T beta_- and sigma_S(-beta) = u^T beta_- +
        (-l)^T beta_+ (beta_+- the positive and negative parts).
        """
        beta = np.asarray(beta, dtype=float)
        pos, neg = np.maximum(beta, 0.0), np.maximum(-beta, 0.0)
        return np.array([self.upper @ pos - self.lower @ neg,
                         self.upper @ neg - self.lower @ pos])


def centred_box(prob):
    """The box problem as a symmetric one: (problem, m) with the problem's set
    ``WeightedLinf(q)``, or None where that does not hold.

    With q = (u - l)/2 and m = (u + l)/2, sigma_S(beta) - sigma_S(-beta) = 2 m^T beta
    (max(u b, l b) - max(-u b, -l b) = (u + l) b for l <= 0 <= u) and
    sigma_S(beta) + sigma_S(-beta) = 2 sum_j q_j |beta_j|, so the interval
    [eta - eps sigma_S(-beta), eta + eps sigma_S(beta)] is

    .. math:: [\\eta' - \\epsilon \\textstyle\\sum_j q_j |\\beta_j|,\\;
               \\eta' + \\epsilon \\textstyle\\sum_j q_j |\\beta_j|], \\qquad
              \\eta' = x^\\top \\beta + b + \\epsilon\\, m^\\top \\beta,

    the weighted l-inf ball's interval (support sum_j q_j |beta_j|) around eta'. Every
    family's worst case depends on the interval only, so the robust objective at
    alpha = 0 is F(beta, b) = F_q(beta, b + eps m^T beta): the same minimisers with the
    intercept b = b' - eps m^T beta. Returns None with a clean term (alpha > 0: it sees
    eta, not eta'), without an intercept unless m = 0, with a penalty, and for any other
    set. The problem shares the data and the caches (its shift has the same degree).
    """
    if prob.penalty is not None or prob.alpha > 0.0 or prob.perturbation.symmetric:
        return None
    box = BoxShift.from_perturbation(prob.perturbation, prob.n_features)
    if box is None:
        return None
    centre = 0.5 * (box.upper + box.lower)
    if not prob.fit_intercept and np.any(centre):
        return None
    return prob._with_perturbation(WeightedLinf(0.5 * (box.upper - box.lower))), centre


def project_box_epigraph(shift, beta0, t0, eps):
    """Euclidean projection of (beta0, t0_up, t0_dn) onto K for a box (``BoxShift``).

    Method. With multipliers (l1, l2) >= 0 for the two constraints, the KKT conditions of
    min ||beta - beta0||^2/2 + ||t - t0||^2/2 over K are t = t0 + (l1, l2) and
    beta = prox of l1 eps sigma_S(.) + l2 eps sigma_S(-.) at beta0, with complementary
    slackness. The prox is separable, an asymmetric soft threshold that keeps the sign
    of beta0_j:

    .. math::

        |\\beta_j| = (m_j - l_1 A_j - l_2 C_j)_+, \\quad m_j = |\\beta_{0j}|,

    (A_j, C_j) = eps (u_j, -l_j) where beta0_j > 0 and eps (-l_j, u_j) where beta0_j < 0
    (the slopes of sigma_S(beta) and sigma_S(-beta) in |beta_j| on that side), and then
    eps sigma_S(beta) = A^T |beta|, eps sigma_S(-beta) = C^T |beta|. The multipliers
    maximise the concave, C^1 dual, whose gradient is

    .. math::

        \\phi_1(l) = A^\\top|\\beta(l)| - t_{0,up} - l_1, \\quad
        \\phi_2(l) = C^\\top|\\beta(l)| - t_{0,dn} - l_2,

    each convex (a sum of positive parts of affine functions), piecewise linear and
    decreasing in l with d phi_i / d l_i <= -1; its Jacobian on a piece is
    -(I + sum over the nonzero beta_j of (A_j, C_j)(A_j, C_j)^T). Nested monotone 1-d
    searches solve the complementarity problem l >= 0, phi <= 0, l_i phi_i = 0:

    * inner: for fixed l2, l1(l2) = 0 if phi_1(0, l2) <= 0, else the root of
      phi_1(., l2), by Newton's method from l1 = 0. Convexity keeps the iterates below the
      root (increasing), and piecewise linearity ends the search when a step stays on one
      piece (no beta_j reaches 0 on it): finitely many steps.
    * outer: G(l2) = phi_2(l1(l2), l2) is the derivative of the dual maximised over l1,
      so it is nonincreasing, with slope at most -1. If G(0) <= 0, l2 = 0; otherwise the
      root lies in (0, G(0)] and is found by Newton's method on G (slope -S, S = J22 -
      J12^2 / J11 the Schur complement of the piece's Jacobian, J22 alone while l1 = 0),
      safeguarded by bisection within the bracket.

    The returned t is max(t0 + l, eps sigma(+-beta)), so that rounding never leaves the
    point outside K.

    Parameters
    ----------
    shift : BoxShift
    beta0 : ndarray, shape (d,)
    t0 : array-like of two floats
        (t0_up, t0_dn).
    eps : float >= 0

    Returns
    -------
    (beta, t) : (ndarray, ndarray of two floats)
    """
    u0, d0 = float(t0[0]), float(t0[1])
    if eps == 0.0:
        return beta0, np.maximum([u0, d0], 0.0)
    beta0 = np.asarray(beta0, dtype=float)
    up0, dn0 = eps * shift.value(beta0)
    if up0 <= u0 and dn0 <= d0:  # already in K
        return beta0, np.array([u0, d0])
    positive = beta0 > 0
    moved = np.flatnonzero((beta0 != 0) & ((shift.upper - shift.lower) > 0))
    m = np.abs(beta0[moved])
    pos = positive[moved]
    lo, hi = shift.lower[moved], shift.upper[moved]
    A = eps * np.where(pos, hi, -lo)  # slope of eps sigma_S(beta) in |beta_j|
    C = eps * np.where(pos, -lo, hi)  # slope of eps sigma_S(-beta) in |beta_j|
    AA, AC, CC = A * A, A * C, C * C
    scale = abs(u0) + abs(d0) + up0 + dn0  # the size of the numbers phi is made of
    tiny = 8.0 * np.finfo(float).eps * scale

    def inner(l2):
        """(l1(l2), |beta|, active set) by monotone Newton on phi_1(., l2)."""
        base = m - l2 * C
        l1, n_active = 0.0, -1
        for _ in range(_MAX_STEPS):
            r = base - l1 * A
            active = r > 0
            z = np.where(active, r, 0.0)
            f1 = A @ z - u0 - l1
            count = int(np.count_nonzero(active))
            # f1 <= 0 at l1 = 0: the constraint is inactive; later, the root was reached
            # (rounding may put it a hair below 0). The same active set as at the previous
            # point means the step stayed on one linear piece: it landed on the root.
            if f1 <= tiny or count == n_active:
                break
            l1 += f1 / (1.0 + AA @ active)  # -d phi_1/d l1 = 1 + sum_active A_j^2
            n_active = count
        return l1, z, active

    def G(l2):
        l1, z, active = inner(l2)
        return C @ z - d0 - l2, l1, z, active

    l2 = 0.0
    g, l1, z, active = G(l2)
    if g > tiny:
        lo_b, hi_b = 0.0, g  # G(0) > 0 >= G(G(0)) since the slope of G is at most -1
        hi_open = True  # G(hi_b) not evaluated yet: hi_b itself may be the root
        for _ in range(_MAX_STEPS):
            j11, j12, j22 = 1.0 + AA @ active, AC @ active, 1.0 + CC @ active
            slope = j22 - j12 * j12 / j11 if l1 > 0 else j22  # -dG/dl2 on this piece
            new = l2 + g / slope
            if not (lo_b < new < hi_b or (hi_open and new == hi_b)):
                new = 0.5 * (lo_b + hi_b)  # Newton left the bracket: bisect
            l2 = new
            g, l1, z, active = G(l2)
            if g > 0:
                lo_b = l2
            else:
                hi_b, hi_open = l2, False
            if abs(g) <= tiny or hi_b - lo_b <= 4.0 * np.finfo(float).eps * hi_b:
                break
    beta = np.array(beta0, dtype=float)
    beta[moved] = np.where(pos, z, -z)
    t = np.array([max(u0 + l1, float(A @ z)), max(d0 + l2, float(C @ z))])
    return beta, t
