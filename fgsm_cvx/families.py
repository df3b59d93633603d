"""GLM families: per-sample losses l(y, eta) in numpy and cvxpy, and their worst case.

Every family is a loss convex in the linear predictor ``eta`` (docs/theory.md §1). Besides
the numpy loss and its first two derivatives in ``eta``, each family gives

* ``loss_cvx(y, eta)``: the same loss as a cvxpy expression, valid for affine ``eta``;
* ``worst_case_cvx(y, eta, t_up, t_down)``: the exact worst case over the predictor
  interval ``[eta - t_down, eta + t_up]`` (docs/theory.md §2),

  .. math:: \\max(l(y, \\eta + t_{up}),\\; l(y, \\eta - t_{down})),

  which is jointly convex in (eta, t) and nondecreasing in the shifts. The default
  writes both endpoints; margin losses phi(z eta) and symmetric losses rho(y - eta)
  override it with a cheaper exact form.

The numpy methods ``loss``, ``grad`` and ``worst_case`` take the array namespace ``xp``
(numpy by default): the fast path evaluates the same formulas on dask, CuPy, torch or any
array API arrays (``fgsm_cvx.engine``) with ``xp = array_api_compat.array_namespace(eta)``.

Internal response coding: gaussian / huber / poisson use y as given; binomial uses
y in {0, 1}; hinge uses y in {-1, +1}. ``encode_y`` maps user labels to that coding.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np
from scipy.optimize import brentq
from scipy.special import expit, logit

from ._validation import check_real_y, check_scalar


def sigmoid(x, xp=np):
    """The logistic function 1 / (1 + e^{-x}), without overflow, in the namespace ``xp``.

    numpy uses scipy's ``expit``; elsewhere, with e = e^{-|x|} <= 1,
    sigma(x) = 1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0.
    """
    if xp is np:
        return expit(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1.0, e) / (1.0 + e)


class Family:
    """Base class of a GLM family (a loss convex in the linear predictor).

    A family is a per-sample loss l(y, eta), convex in eta = x^T beta + b, with its
    derivatives ``grad`` = l' and ``hess`` = l'' in eta, its y domain (``encode_y``),
    a cvxpy form ``loss_cvx`` valid for affine eta, and the exact worst case over a
    shift of the predictor, attained at an endpoint because l is convex in eta:

    .. math::

        \\max_{-c_{down} \\le s \\le c_{up}} l(y, \\eta + s)
        = \\max\\big(l(y, \\eta + c_{up}),\\; l(y, \\eta - c_{down})\\big).

    Subclasses: ``Gaussian``, ``Binomial``, ``Poisson``, ``Hinge``, ``Huber``; the
    registry ``FAMILIES`` maps names to them.

    Examples
    --------
    >>> import numpy as np, fgsm_cvx as fc
    >>> fam = fc.Gaussian()
    >>> fam.loss(np.array([1.0]), np.array([3.0]))          # (y - eta)^2 / 2
    array([2.])
    >>> fam.worst_case(np.array([1.0]), np.array([3.0]), 0.5, 0.5)
    array([3.125])
    """

    name = "family"
    #: True for classification families (labels are mapped, ``classes`` is returned).
    is_classifier = False

    # ----- response ---------------------------------------------------------------
    def encode_y(self, y):
        """Validate ``y`` for this family and return ``(y_internal, classes)``."""
        return check_real_y(np.asarray(y), self.name), None

    # ----- numpy (or any array namespace xp) --------------------------------------
    def loss(self, y, eta, xp=np):  # pragma: no cover - abstract
        raise NotImplementedError

    def grad(self, y, eta, xp=np):  # pragma: no cover - abstract
        """Derivative l'(y, eta) in eta (a subgradient where l is not differentiable)."""
        raise NotImplementedError

    def hess(self, y, eta):  # pragma: no cover - abstract
        raise NotImplementedError

    def worst_case(self, y, eta, c_up, c_down, xp=np):
        """Exact worst-case loss over the interval ``[eta - c_down, eta + c_up]``.

        A convex function of one variable is maximal over an interval at an endpoint.
        """
        return xp.maximum(self.loss(y, eta + c_up, xp), self.loss(y, eta - c_down, xp))

    def intercept_only(self, y, w):  # pragma: no cover - abstract
        """Minimiser b0 of sum_i w_i l(y_i, b) over the constant b."""
        raise NotImplementedError

    # ----- cvxpy ------------------------------------------------------------------
    def loss_cvx(self, y, eta):  # pragma: no cover - abstract
        raise NotImplementedError

    def worst_case_cvx(self, y, eta, t_up, t_down):
        """max(l(y, eta + t_up), l(y, eta - t_down)), elementwise; DCP for affine eta, t."""
        return cp.maximum(self.loss_cvx(y, eta + t_up), self.loss_cvx(y, eta - t_down))

    def __repr__(self):
        return f"{type(self).__name__}()"

    def __eq__(self, other):
        return type(self) is type(other) and self.__dict__ == other.__dict__

    def __hash__(self):
        return hash(type(self).__name__)


# ---------------------------------------------------------------------------------
# symmetric losses rho(y - eta)
# ---------------------------------------------------------------------------------
class _SymmetricFamily(Family):
    """l(y, eta) = rho(y - eta) with rho even, convex and increasing in |r|."""

    def rho_cvx(self, r):  # pragma: no cover - abstract
        """rho as a cvxpy atom that is increasing for nonnegative arguments."""
        raise NotImplementedError

    def loss_cvx(self, y, eta):
        return self.rho_cvx(y - eta)

    def worst_case_cvx(self, y, eta, t_up, t_down):
        if t_up is t_down:
            # max(rho(r - t), rho(r + t)) = rho(|r| + t) for even rho increasing in |r|;
            # rho is increasing on the nonnegative |r| + t, so this is DCP.
            return self.rho_cvx(cp.abs(y - eta) + t_up)
        return super().worst_case_cvx(y, eta, t_up, t_down)


class Gaussian(_SymmetricFamily):
    """Squared error (linear regression).

    .. math:: l(y, \\eta) = (y - \\eta)^2 / 2, \\quad l' = \\eta - y, \\quad l'' = 1,

    for real y.
    """

    name = "gaussian"

    def loss(self, y, eta, xp=np):
        return 0.5 * (y - eta) ** 2

    def grad(self, y, eta, xp=np):
        return eta - y

    def hess(self, y, eta):
        return np.ones_like(np.asarray(eta, dtype=float))

    def intercept_only(self, y, w):
        lo, hi = float(np.min(y)), float(np.max(y))
        if lo == hi:  # (w @ y rounds one ulp away from a constant y: a score of noise)
            return lo
        return float(w @ y)  # the weighted mean solves sum_i w_i (b - y_i) = 0

    def rho_cvx(self, r):
        return 0.5 * cp.square(r)


class Huber(_SymmetricFamily):
    """Huber loss with threshold M (robust regression).

    .. math::

        l(y, \\eta) = \\rho_M(y - \\eta), \\quad
        \\rho_M(r) = r^2/2 \\text{ if } |r| \\le M, \\; M|r| - M^2/2 \\text{ otherwise},

    with l' = clip(eta - y, -M, M) and l'' = 1{|y - eta| <= M}; y real.
    """

    name = "huber"

    def __init__(self, threshold=1.345):
        self.threshold = check_scalar(threshold, "threshold", lower=0, lower_inclusive=False)

    def __repr__(self):
        return f"Huber(threshold={self.threshold})"

    def loss(self, y, eta, xp=np):
        r = xp.abs(y - eta)
        # c = min(r, M): c (r - c/2) is r^2/2 for r <= M and M r - M^2/2 beyond, without
        # a select (xp.where on a random mask costs ~7 products of this size)
        c = xp.minimum(r, self.threshold)
        return c * (r - 0.5 * c)

    def grad(self, y, eta, xp=np):
        return xp.clip(eta - y, -self.threshold, self.threshold)

    def hess(self, y, eta):
        return (np.abs(y - eta) <= self.threshold).astype(float)

    def intercept_only(self, y, w):
        lo, hi = float(np.min(y)), float(np.max(y))
        if lo == hi:
            return lo

        def score(b):  # sum_i w_i l'(y_i, b): increasing in b, <= 0 at min y, >= 0 at max y
            return float(w @ self.grad(y, b))

        return brentq(score, lo, hi, xtol=1e-14, rtol=4 * np.finfo(float).eps)

    def rho_cvx(self, r):
        # cvxpy's huber(x, M) = x^2 on |x| <= M, 2M|x| - M^2 outside: twice rho_M.
        return 0.5 * cp.huber(r, self.threshold)


# ---------------------------------------------------------------------------------
# margin losses phi(z eta), z in {-1, +1}
# ---------------------------------------------------------------------------------
class _MarginFamily(Family):
    """l(y, eta) = phi(z eta) with z = +-1 the signed label and phi convex decreasing."""

    is_classifier = True

    def signed_label(self, y):  # pragma: no cover - abstract
        raise NotImplementedError

    def phi_cvx(self, m):  # pragma: no cover - abstract
        raise NotImplementedError

    def encode_y(self, y):
        y = np.asarray(y)
        classes = np.unique(y)
        if classes.shape[0] != 2:
            raise ValueError(f"family '{self.name}' needs exactly two classes in y, got "
                             f"{classes.shape[0]} ({classes[:5].tolist()})")
        positive = y == classes[1]  # the larger label is the positive class (scikit-learn)
        return self._code(positive), classes

    def loss_cvx(self, y, eta):
        return self.phi_cvx(cp.multiply(self.signed_label(y), eta))

    def worst_case(self, y, eta, c_up, c_down, xp=np):
        """Exact worst-case loss over ``[eta - c_down, eta + c_up]``: phi is decreasing,
        so the worst predictor lowers the margin z eta, eta - c_down for z = +1 and
        eta + c_up for z = -1 (one evaluation of the loss where the generic maximum
        takes two: the exp and log per sample are most of a certificate's objective)."""
        positive = xp.astype(self.signed_label(y) > 0, eta.dtype)  # z = +1
        return self.loss(y, eta - (c_down * positive - c_up * (1.0 - positive)), xp)

    def worst_case_cvx(self, y, eta, t_up, t_down):
        z = self.signed_label(y)
        # phi decreasing: the worst predictor lowers the margin z*eta; for z = +1 that is
        # eta - t_down, for z = -1 it is eta + t_up (margin -eta - t_up).
        if t_up is t_down:
            shift = t_up
        else:
            shift = t_down * (z > 0).astype(float) + t_up * (z < 0).astype(float)
        return self.phi_cvx(cp.multiply(z, eta) - shift)


class Binomial(_MarginFamily):
    """Logistic regression (binomial, logit link) for labels coded y in {0, 1}.

    .. math::

        l(y, \\eta) = \\log(1 + e^{\\eta}) - y\\eta, \\quad l' = \\sigma(\\eta) - y,
        \\quad l'' = \\sigma(\\eta)(1 - \\sigma(\\eta)).

    Any two labels are accepted; the larger one (in sorted order) is coded 1.
    """

    name = "binomial"

    @staticmethod
    def _code(positive):
        return positive.astype(np.float64)

    @staticmethod
    def signed_label(y):
        return 2.0 * y - 1.0

    def loss(self, y, eta, xp=np):
        # log(1 + e^eta) = max(eta, 0) + log(1 + e^{-|eta|}), without overflow: logaddexp's
        # own formula, 7x faster than numpy's logaddexp (whose exponential is not the
        # vectorised one: 204 against 30 us at n = 1e4)
        return xp.maximum(eta, 0.0) + xp.log1p(xp.exp(-xp.abs(eta))) - y * eta

    def grad(self, y, eta, xp=np):
        return sigmoid(eta, xp) - y

    def hess(self, y, eta):
        s = expit(eta)
        return s * (1.0 - s)

    def intercept_only(self, y, w):
        return float(logit(w @ y))  # sigma(b0) = weighted mean of y

    def phi_cvx(self, m):
        return cp.logistic(-m)  # log(1 + e^{-m})


class Hinge(_MarginFamily):
    """Hinge loss (linear SVM) for labels coded y in {-1, +1}.

    .. math:: l(y, \\eta) = \\max(0, 1 - y\\eta),

    with the subgradient l' = -y where 1 - y eta > 0 and 0 elsewhere (the kink takes
    0, as automatic differentiation does), and l'' = 0.
    """

    name = "hinge"

    @staticmethod
    def _code(positive):
        return np.where(positive, 1.0, -1.0)

    @staticmethod
    def signed_label(y):
        return y

    def loss(self, y, eta, xp=np):
        return xp.maximum(0.0, 1.0 - y * eta)

    def grad(self, y, eta, xp=np):
        return xp.where(1.0 - y * eta > 0, -y, 0.0)

    def hess(self, y, eta):
        return np.zeros_like(np.asarray(eta, dtype=float))

    def intercept_only(self, y, w):
        # On [-1, 1] the objective is W+ (1 - b) + W- (1 + b): linear with slope W- - W+.
        w_pos, w_neg = float(w @ (y > 0)), float(w @ (y < 0))
        return float(np.sign(w_pos - w_neg))

    def phi_cvx(self, m):
        return cp.pos(1 - m)


# ---------------------------------------------------------------------------------
class Poisson(Family):
    """Poisson regression with log link, for counts (or rates) y >= 0.

    .. math:: l(y, \\eta) = e^{\\eta} - y\\eta, \\quad l' = e^{\\eta} - y, \\quad l'' = e^{\\eta}.

    The worst case keeps both endpoints: the loss is not monotone in eta, so the
    naive composition with a norm would not be DCP (docs/theory.md §2).
    """

    name = "poisson"

    def encode_y(self, y):
        y, _ = super().encode_y(y)
        if np.any(y < 0):
            raise ValueError("family 'poisson' needs counts y >= 0; y has negative entries")
        if not np.any(y > 0):
            raise ValueError("family 'poisson' needs at least one positive count in y "
                             "(with all y = 0 the likelihood has no minimiser)")
        return y, None

    @staticmethod
    def _exp(eta, xp=np):
        with np.errstate(over="ignore"):  # e^eta = inf past ~709 is the honest value
            return xp.exp(eta)

    def loss(self, y, eta, xp=np):
        return self._exp(eta, xp) - y * eta

    def grad(self, y, eta, xp=np):
        return self._exp(eta, xp) - y

    def hess(self, y, eta):
        return self._exp(eta)

    def intercept_only(self, y, w):
        return float(np.log(w @ y))  # e^b0 = weighted mean of y

    def loss_cvx(self, y, eta):
        return cp.exp(eta) - cp.multiply(y, eta)


FAMILIES = {
    "gaussian": Gaussian,
    "binomial": Binomial,
    "logistic": Binomial,
    "poisson": Poisson,
    "hinge": Hinge,
    "huber": Huber,
}
