"""AdversarialProblem: the single validated specification every backend consumes.

The robust (exact adversarial) objective of docs/theory.md §2 is

.. math::

    R(\\beta, b) = \\sum_i w_i \\big[ \\alpha\\, l(y_i, \\eta_i)
        + (1 - \\alpha) \\max\\big(l(y_i, \\eta_i + \\epsilon\\sigma_S(\\beta)),
                                 l(y_i, \\eta_i - \\epsilon\\sigma_S(-\\beta))\\big) \\big],

with eta_i = x_i^T beta + b, weights w summing to one, and sigma_S the support
function of the perturbation set (the dual norm for a norm ball), or a generalized
penalty P(beta) in its place. The intercept is never perturbed and never penalised.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ._validation import (
    check_bool,
    check_sample_weight,
    check_scalar,
    check_vector,
    check_X,
    check_y,
    resolve,
)
from .engine import HOST_ENGINES, engine_name, make_engine
from .families import FAMILIES, Family, Poisson
from .penalties import PENALTIES, Penalty
from .perturbations import PERTURBATIONS, Perturbation

# float64 entries formed at a time by ``linear_predictor`` from X of another dtype
_BLOCK_ENTRIES = 2**16


class CoefConstraints:
    """User constraints on the coefficients: bounds plus cvxpy callables.

    Accepted forms (a list combines several): a callable ``f(beta, intercept)``
    returning a list of cvxpy constraints (``intercept`` is None without an
    intercept); ``"nonnegative"`` / ``"nonpositive"``; a tuple ``(lower, upper)`` of
    scalars, arrays of length n_features, or None.
    """

    def __init__(self, spec, n_features, fit_intercept=True):
        d = n_features
        self.lower = np.full(d, -np.inf)
        self.upper = np.full(d, np.inf)
        self.callables = []
        items = spec if isinstance(spec, list) else [spec]
        for item in items:
            if callable(item):
                self.callables.append(item)
            elif isinstance(item, str):
                key = item.lower()
                if key in ("nonnegative", "nonneg", "positive"):
                    self.lower = np.maximum(self.lower, 0.0)
                elif key in ("nonpositive", "nonpos", "negative"):
                    self.upper = np.minimum(self.upper, 0.0)
                else:
                    raise ValueError(f"unknown constraint '{item}'; valid names: "
                                     "nonnegative, nonpositive")
            elif isinstance(item, tuple) and len(item) == 2:
                for k, bound in enumerate(item):
                    if bound is None:
                        continue
                    try:
                        v = np.broadcast_to(np.asarray(bound, dtype=float), (d,))
                    except (ValueError, TypeError) as exc:
                        raise ValueError(f"constraint bounds must be None, a number or an "
                                         f"array of length n_features={d}, got "
                                         f"{bound!r}") from exc
                    if np.any(np.isnan(v)):
                        raise ValueError("constraint bounds contain NaN")
                    if k == 0:
                        self.lower = np.maximum(self.lower, v)
                    else:
                        self.upper = np.minimum(self.upper, v)
            else:
                raise TypeError("constraints must be a callable(beta, intercept) -> list of "
                                "cvxpy constraints, 'nonnegative', 'nonpositive', a "
                                "(lower, upper) tuple, or a list of these")
        if np.any(self.lower > self.upper):
            raise ValueError("constraints are infeasible: some lower bound exceeds its upper bound")
        if self.callables:  # build them once on placeholders: a bad callable fails here
            import cvxpy as cp

            beta, intercept = cp.Variable(d), (cp.Variable() if fit_intercept else None)
            for f in self.callables:
                made = f(beta, intercept)
                made = made if isinstance(made, (list, tuple)) else [made]
                if not all(isinstance(c, cp.constraints.constraint.Constraint) for c in made):
                    raise TypeError("a constraints callable must return a cvxpy constraint or "
                                    "a list of them, got " + ", ".join(
                                        sorted({type(c).__name__ for c in made})))

    @property
    def is_cone(self):
        """True when the feasible set is a cone (only zero or infinite bounds, no callables):
        then s * beta stays feasible for every s > 0."""
        finite = np.concatenate([self.lower[np.isfinite(self.lower)],
                                 self.upper[np.isfinite(self.upper)]])
        return not self.callables and not np.any(finite)

    @property
    def has_bounds(self):
        return bool(np.any(np.isfinite(self.lower)) or np.any(np.isfinite(self.upper)))

    def cvx(self, beta, intercept, scaling=None):
        """The constraints as a list of cvxpy constraints.

        With a ``Scaling``, ``beta`` and ``intercept`` are the solver's variables of the
        scaled problem: bounds are divided by ``scaling.coef`` and callables receive the
        original (beta, b) as affine expressions.
        """
        out = []
        scale = 1.0 if scaling is None else scaling.coef
        lo, hi = np.isfinite(self.lower), np.isfinite(self.upper)
        if lo.any():
            out.append(beta[np.flatnonzero(lo)] >= self.lower[lo] / scale)
        if hi.any():
            out.append(beta[np.flatnonzero(hi)] <= self.upper[hi] / scale)
        if scaling is not None and not scaling.identity:
            beta = scale * beta
            if intercept is not None:
                intercept = scaling.eta_mult * intercept + scaling.eta_offset
        for f in self.callables:
            made = f(beta, intercept)
            out.extend(made if isinstance(made, (list, tuple)) else [made])
        return out


def _power_of_two(factor):
    """The power of two nearest ``factor``, or 1 when factor is in [1/16, 16] (or not finite).

    Scaling by a power of two is exact in floating point.
    """
    if not np.isfinite(factor) or factor <= 0 or 1.0 / 16 <= factor <= 16.0:
        return 1.0
    return float(2.0 ** np.round(np.log2(factor)))


class Scaling:
    """A well-scaled problem equivalent to ``prob``, solved by the backends.

    With s = ``prob.x_scale`` and a response scale r (a power of two; 1 unless y is badly
    scaled), the backends solve for (beta'', b'') on the data s X and y'' with

    .. math::

        \\eta = m \\eta'' + o, \\quad \\beta = c \\beta'', \\quad b = m b'' + o,
        \\quad c = s m, \\quad \\epsilon'' = \\epsilon c^k / m,

    k the degree of homogeneity of the shift (1 for support functions and norms), and
    the robust objective is R = a R'' + a_0:

    * gaussian: y'' = y / r, m = r, o = 0, a = r^2, a_0 = 0 (the loss is quadratic);
    * huber: the same with threshold M / r (rho_M(r u) = r^2 rho_{M/r}(u));
    * poisson: y'' = y / r, m = 1, o = log r, a = r, a_0 = -r log(r) sum_i w_i y''_i
      (e^{eta'' + log r} - r y'' (eta'' + log r) = r l(y'', eta'') - r y'' log r);
    * binomial, hinge: y'' = y, m = 1, o = 0, a = 1, a_0 = 0.

    The response scale r is chosen from the weighted spread of y (gaussian, huber) or its
    weighted mean (poisson), so that the solvers' absolute tolerances are relative ones;
    ``loss_scale=True`` (the fast path) takes for huber the square root of twice its
    loss rho_M at the spread instead (the spread itself within the quadratic zone), so
    that the objective R'' is of order one where the threshold is far below the spread.
    ``identity=True`` gives the trivial scaling (s = r = 1), for programs solved in the
    original units (the penalised twin, whose penalty level would otherwise rescale too);
    ``x_scale`` replaces s (the fast path takes it from the centred columns).
    """

    def __init__(self, prob, identity=False, x_scale=None, loss_scale=False):
        from .families import Gaussian, Huber

        fam, y, w = prob.family, prob.y, prob.sample_weight
        self.x = 1.0 if identity else (prob.x_scale if x_scale is None else float(x_scale))
        self.family, self.y = fam, y
        r = 1.0
        if identity:
            pass
        elif isinstance(fam, (Gaussian, Huber)):
            # (a constant y: w @ y rounds off it, and the spread of rounding, ~4e-16,
            # made r = 2^-51 and y / r ~ 4e15: both backends failed; r from max |y| then)
            spread = 0.0 if np.ptp(y) == 0 else float(np.sqrt(w @ np.square(y - w @ y)))
            if loss_scale and isinstance(fam, Huber) and spread > fam.threshold:
                # the loss's own scale: R'' = R / r^2 is O(1) for r^2 = 2 rho_M(spread),
                # spread itself within the quadratic zone, sqrt(2 M spread - M^2) beyond
                # it (with r = spread, y on a scale of 1e6 and M = 1.345 made R'' ~ 1e-6:
                # the fast path's tolerances, absolute below 1, stopped it 50% above the
                # optimum; the interior-point solvers measured worse with this scale on
                # some of those problems, so the cvxpy backend keeps r = spread)
                m = fam.threshold
                spread = float(np.sqrt(2.0 * m * spread - m * m))
            r = _power_of_two(spread) if spread > 0 else _power_of_two(float(np.max(np.abs(y))))
        elif isinstance(fam, Poisson):
            r = _power_of_two(float(w @ y))
        self.response = r
        self.eta_mult = self.eta_offset = 0.0
        self.objective_mult, self.objective_offset = 1.0, 0.0
        if r != 1.0:
            self.y = y / r
            if isinstance(fam, Huber):
                self.family = Huber(threshold=fam.threshold / r)
        if isinstance(fam, Poisson):
            self.eta_mult, self.eta_offset = 1.0, float(np.log(r))
            self.objective_mult = r
            self.objective_offset = -r * np.log(r) * float(w @ self.y)
        else:
            self.eta_mult = r
            self.objective_mult = r * r if isinstance(fam, (Gaussian, Huber)) else 1.0
        k = prob.shift_degree
        if not identity and k is not None and k > 1.0:
            # A shift eps h(beta) of degree k > 1 (ridge, L_r): on unit-size columns the
            # solution has |beta''| ~ (k eps'')^(-1/(k-1)) when k eps'' > 1, eps'' the
            # scaled radius, the loss's gradient there balancing the shift's. The
            # coefficients are scaled by that factor too (a power of two), so that the
            # solver's variables are of order one: with X ~ 1e-3 and k = 3, eps'' was
            # 2^40 and beta'' ~ 1e-6, and ECOS returned points 1e-3 (ridge, status
            # 'optimal') to 1e14 (L_r(3)) relative above the optimum. The factor is set
            # at the problem's eps (the scaling is shared by ``with_params`` copies;
            # any eps stays exact, only the conditioning is tuned for this one).
            eps_unit = prob.eps * (self.x * self.eta_mult) ** k / self.eta_mult
            if k * eps_unit > 1.0:
                self.x *= _power_of_two((k * eps_unit) ** (-1.0 / (k - 1.0)))
        self.coef = self.x * self.eta_mult
        self.eps = self.coef ** prob.shift_degree / self.eta_mult  # eps'' = eps * this
        self.identity = self.coef == 1.0 and r == 1.0

    def to_original(self, coef, intercept):
        """(beta, b) from the scaled problem's (beta'', b'')."""
        coef = coef if self.coef == 1.0 else coef * self.coef
        return coef, self.eta_mult * intercept + self.eta_offset

    def to_scaled(self, coef, intercept):
        """(beta'', b'') from (beta, b)."""
        coef = coef if self.coef == 1.0 else coef / self.coef
        return coef, (intercept - self.eta_offset) / self.eta_mult

    def objective(self, value):
        """The original objective from the scaled problem's value (None stays None)."""
        if value is None:
            return None
        return self.objective_mult * value + self.objective_offset


def _check_weighted_response(family, y, w):
    """The samples with positive weight must still carry what the family needs."""
    live = w > 0
    if family.is_classifier and np.unique(y[live]).shape[0] < 2:
        raise ValueError(f"family '{family.name}' needs both classes among the samples with "
                         "positive sample_weight; only one class has positive weight")
    if isinstance(family, Poisson) and not np.any(y[live] > 0):
        raise ValueError("family 'poisson' needs at least one positive count y among the "
                         "samples with positive sample_weight")


def check_problem(prob):
    """Raise TypeError unless ``prob`` is an AdversarialProblem."""
    if not isinstance(prob, AdversarialProblem):
        raise TypeError(f"prob must be an AdversarialProblem, got {type(prob).__name__}")
    return prob


def resolve_family(family):
    family = resolve(family, FAMILIES, "family")
    if not isinstance(family, Family):
        raise TypeError(f"family must be a Family or one of {sorted(FAMILIES)}, "
                        f"got {type(family).__name__}")
    return family


def resolve_perturbation(perturbation):
    perturbation = resolve(perturbation, PERTURBATIONS, "perturbation")
    if not isinstance(perturbation, Perturbation):
        raise TypeError(f"perturbation must be a Perturbation or one of "
                        f"{sorted(PERTURBATIONS)}, got {type(perturbation).__name__}")
    return perturbation


def resolve_penalty(penalty):
    if penalty is None:
        return None
    penalty = resolve(penalty, PENALTIES, "penalty")
    if not isinstance(penalty, Penalty):
        raise TypeError(f"penalty must be a Penalty or one of {sorted(PENALTIES)}, "
                        f"got {type(penalty).__name__}")
    return penalty


class AdversarialProblem:
    """Adversarial training of a GLM: data, family, perturbation set and parameters.

    Parameters
    ----------
    X : array-like or scipy.sparse matrix, shape (n_samples, n_features)
    y : array-like, shape (n_samples,)
        Response; class labels (any two) for binomial / hinge.
    family : Family or str, default "gaussian"
        "gaussian", "binomial" (= "logistic"), "poisson", "hinge", "huber".
    perturbation : Perturbation or str, default "linf"
        The attacker's set S at radius 1 ("linf" = FGSM, "l2", "l1", or an object).
    eps : float >= 0, default 0.1
        Attack radius.
    alpha : float in [0, 1], default 0.0
        Weight of the clean loss (Goodfellow's mix); 0 is pure adversarial training.
    fit_intercept : bool, default True
        Fit an unpenalised, unperturbed intercept.
    sample_weight : array-like or None
        Nonnegative weights, normalised to sum 1.
    penalty : Penalty or str or None
        Generalized FGSM: replaces the shift eps sigma_S(beta) by eps P(beta). A
        non-convex penalty (``penalties.SCAD``, ``MCP``, ``Lr`` with r < 1) is solved by
        the local linear approximation (``fc.lla_solve``, which ``fc.solve`` calls).
    constraints : callable, str, tuple, list or None
        Constraints on the coefficients (see ``CoefConstraints``).

    Notes
    -----
    The object is immutable; ``with_params(eps=..., alpha=...)`` returns a copy sharing
    the data and the backends' caches, so a cvxpy formulation is canonicalised once
    per structure and re-solved for new parameter values (DPP).
    """

    def __init__(self, X, y, family="gaussian", perturbation="linf", eps=0.1, alpha=0.0,
                 fit_intercept=True, sample_weight=None, penalty=None, constraints=None):
        x_stats = {}  # filled by the one reduction over a dask / array API X
        X = check_X(X, x_stats)
        n, d = X.shape
        y = check_y(y, n)
        family = resolve_family(family)
        y_internal, classes = family.encode_y(y)
        perturbation = resolve_perturbation(perturbation)
        perturbation.check_dim(d)
        penalty = resolve_penalty(penalty)
        if penalty is not None:
            # a non-convex penalty (SCAD, MCP, L_r with r < 1) is accepted: fc.solve hands
            # the problem to the local linear approximation (fgsm_cvx.lla)
            penalty.check_dim(d)
        s = self.__dict__
        s["X"], s["y"], s["classes"] = X, y_internal, classes
        s["family"], s["perturbation"], s["penalty"] = family, perturbation, penalty
        s["fit_intercept"] = check_bool(fit_intercept, "fit_intercept")
        s["sample_weight"] = check_sample_weight(sample_weight, n)
        _check_weighted_response(family, y_internal, s["sample_weight"])
        s["constraints"] = None if constraints is None else CoefConstraints(constraints, d,
                                                                      s["fit_intercept"])
        s["eps"] = check_scalar(eps, "eps", lower=0.0)
        s["alpha"] = check_scalar(alpha, "alpha", lower=0.0, upper=1.0)
        s["_cache"] = {"x_stats": x_stats} if x_stats else {}

    def __setattr__(self, name, value):
        raise AttributeError("AdversarialProblem is immutable; use with_params(eps=, alpha=)")

    def __repr__(self):
        n, d = self.X.shape
        shift = self.penalty if self.penalty is not None else self.perturbation
        return (f"AdversarialProblem(n_samples={n}, n_features={d}, family={self.family!r}, "
                f"shift={shift!r}, eps={self.eps}, alpha={self.alpha}, "
                f"fit_intercept={self.fit_intercept})")

    @property
    def n_samples(self):
        """Number of rows of X."""
        return self.X.shape[0]

    @property
    def n_features(self):
        """Number of columns of X (the length of beta)."""
        return self.X.shape[1]

    @property
    def symmetric(self):
        """True when the predictor interval is symmetric (one shift t suffices)."""
        return self.penalty is not None or self.perturbation.symmetric

    @property
    def x_scale(self):
        """A power of two s with s X of order one (1 unless X is badly scaled).

        1 while the root mean square of the nonzero entries of X lies in [1/16, 16]. For a
        dask / array API X the count and the sum of squares come from the validation's
        reduction over X (no second pass).
        """
        scale = self._cache.get("x_scale")
        if scale is None:
            stats = self._cache.get("x_stats")
            if stats is not None:
                nnz, sum_sq = stats["nnz"], stats["sum_sq"]
            else:
                X = self.X
                data = X.data if sp.issparse(X) else X
                nnz = np.count_nonzero(data)
                sum_sq = np.sum(np.square(data, dtype=np.float64))
            rms = float(np.sqrt(sum_sq / nnz)) if nnz else 1.0
            scale = self._cache["x_scale"] = _power_of_two(1.0 / rms)
        return scale

    @property
    def engine(self):
        """Where the products with X run (``fgsm_cvx.engine``): numpy / scipy.sparse,
        dask, or the array API namespace of X. Made once, shared by ``with_params``."""
        out = self._cache.get("engine")
        if out is None:
            out = self._cache["engine"] = make_engine(self.X)
        return out

    @property
    def on_host(self):
        """True when X is a numpy array or a scipy.sparse matrix."""
        return engine_name(self.X) in HOST_ENGINES

    def per_sample(self, v):
        """(xp, v on X's engine, weighted mean): for evaluating per-sample maps where X is.

        ``v`` is a host vector of length n (y, a mask ...); the weighted mean
        sum_i w_i u_i of an engine vector u is returned as a float (one reduction).
        """
        if self.on_host:
            return np, v, lambda u: float(self.sample_weight @ u)
        eng = self.engine

        def mean(u):
            with eng.errstate():
                return eng.fetch(eng.dot(eng.put(self.sample_weight), u))[0]

        return eng.xp, eng.put(v), mean

    @property
    def scaling(self):
        """The well-scaled equivalent problem the backends solve (see ``Scaling``)."""
        out = self._cache.get("scaling")
        if out is None:
            # a shift that is not homogeneous does not rescale: solve in original units
            out = self._cache["scaling"] = Scaling(self, identity=self.shift_degree is None)
        return out

    @property
    def shift_degree(self):
        """k with shift(s beta) = s^k shift(beta): 1 for support functions and norms, the
        penalty's ``degree`` otherwise (None for a penalty that is not homogeneous)."""
        return 1.0 if self.penalty is None else self.penalty.degree

    def with_params(self, eps=None, alpha=None):
        """A copy with new eps and/or alpha, sharing data and solver caches."""
        fields = {}
        if eps is not None:
            fields["eps"] = check_scalar(eps, "eps", lower=0.0)
        if alpha is not None:
            fields["alpha"] = check_scalar(alpha, "alpha", lower=0.0, upper=1.0)
        return self._replaced(**fields)

    def _replaced(self, **fields):
        """A shallow copy with ``fields`` replaced (the object is immutable: copies share
        the data and, unless a field replaces it, the ``_cache``)."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.__dict__.update(fields)
        return new

    def _with_perturbation(self, perturbation):
        """A copy with another perturbation set whose shift has the same degree, sharing
        the data and the caches (the fast path's equivalent problems, ``fast/box.py``)."""
        perturbation.check_dim(self.n_features)
        return self._replaced(perturbation=perturbation)

    def with_penalty(self, penalty, constraints=None):
        """A copy with another generalized-FGSM penalty (and optionally constraints).

        ``constraints`` is a ``CoefConstraints`` (or None to keep the current ones). The
        copy shares the data (and its engine) but not the solver caches: the formulation
        depends on the penalty. Used by the local linear approximation for its
        weighted-FGSM steps.
        """
        penalty = resolve_penalty(penalty)
        if penalty is not None:
            penalty.check_dim(self.n_features)
        if constraints is not None and not isinstance(constraints, CoefConstraints):
            raise TypeError("constraints must be a CoefConstraints here")
        fields = {"penalty": penalty} if constraints is None else \
            {"penalty": penalty, "constraints": constraints}
        # the data's own entries stay: X's statistics and engine (y and w placed there)
        fields["_cache"] = {k: v for k, v in self._cache.items()
                            if k in ("x_stats", "x_scale", "engine", "condition_number")}
        return self._replaced(**fields)

    # ----- numpy pieces shared by objectives, attacks and backends -----------------
    def check_coef(self, coef, intercept):
        """Validate (coef, intercept) for this problem; return them as (ndarray, float)."""
        coef = check_vector(coef, "coef", length=self.n_features)
        intercept = check_scalar(intercept, "intercept")
        if not self.fit_intercept and intercept != 0.0:
            raise ValueError("intercept must be 0 for a problem with fit_intercept=False")
        return coef, intercept

    def linear_predictor(self, coef, intercept=0.0):
        """eta = X beta + b (a numpy array, or an array of X's engine: lazy for dask).

        X of another dtype than float64 (float32, integers) is not upcast whole, which
        numpy's X @ coef does (a temporary float64 copy of X): the engine's float64 copy
        serves where the fast path made one, else a block of rows at a time."""
        if not self.on_host or (self.X.dtype != np.float64 and "engine" in self._cache):
            return self.engine.matvec(coef) + intercept
        X = self.X
        if X.dtype == np.float64 or sp.issparse(X):
            return np.asarray(X @ coef).ravel() + intercept
        coef = np.asarray(coef, dtype=np.float64)
        out = np.empty(X.shape[0])
        step = max(1, _BLOCK_ENTRIES // max(X.shape[1], 1))
        for i in range(0, X.shape[0], step):
            out[i:i + step] = X[i:i + step].astype(np.float64) @ coef
        return out + intercept

    def unit_shift(self, coef):
        """(sigma_S(beta), sigma_S(-beta)), or (P(beta), P(beta)) with a penalty."""
        if self.penalty is not None:
            p = self.penalty.value(coef)
            return p, p
        up = self.perturbation.support(coef)
        down = up if self.perturbation.symmetric else self.perturbation.support(-coef)
        return up, down

    def unit_noise(self, coef, direction):
        """The radius-1 perturbation that moves eta by +unit_shift (direction +1) or -down."""
        if self.penalty is not None:
            return direction * self.penalty.noise(coef)
        # argmax over S of delta^T (direction * beta): direction -1 minimises delta^T beta
        return self.perturbation.unit_argmax(direction * coef)


def robust_objective(prob, coef, intercept=0.0, eta=None):
    """The exact adversarial objective R(beta, b) of docs/theory.md §2 (numpy).

    .. math::

        R = \\sum_i w_i [\\alpha l(y_i, \\eta_i) + (1-\\alpha)
            \\max(l(y_i, \\eta_i + c_{up}), l(y_i, \\eta_i - c_{down}))],

    c_up = eps sigma_S(beta), c_down = eps sigma_S(-beta) (eps P(beta) for both with a
    penalty). ``eta``: the linear predictor X beta + b when already computed (it is not
    checked). Returns a float.
    """
    coef, intercept = check_problem(prob).check_coef(coef, intercept)
    eta = prob.linear_predictor(coef, intercept) if eta is None else eta
    up, down = prob.unit_shift(coef)
    xp, y, _ = prob.per_sample(prob.y)
    adv = prob.family.worst_case(y, eta, float(prob.eps * up), float(prob.eps * down), xp)
    return _mix(prob, eta, adv)


def _mix(prob, eta, adv):
    """sum_i w_i [alpha l(y_i, eta_i) + (1 - alpha) adv_i], skipping a zero-weight term."""
    xp, y, mean = prob.per_sample(prob.y)
    total = (1.0 - prob.alpha) * adv if prob.alpha < 1 else 0.0
    if prob.alpha > 0:  # skipped at alpha = 0 so that 0 * inf never makes a NaN
        total = total + prob.alpha * prob.family.loss(y, eta, xp)
    return mean(total)


def fgsm_shift(prob, coef, intercept=0.0):
    """Per-sample predictor shift of literal FGSM: eps * sign(l'(eta_i)) * unit shift.

    FGSM moves x along sign(grad_x l) = sign(l') sign(beta) (the steepest ascent of
    the linearised loss over S), so eta moves up by eps sigma_S(beta) when l' > 0,
    down by eps sigma_S(-beta) when l' < 0, and not at all when l' = 0.
    """
    eta = prob.linear_predictor(coef, intercept)
    xp, y, _ = prob.per_sample(prob.y)
    s = xp.sign(prob.family.grad(y, eta, xp))
    up, down = (float(v) for v in prob.unit_shift(coef))
    return eta, prob.eps * xp.where(s > 0, up, xp.where(s < 0, -down, xp.zeros_like(s)))


def fgsm_objective(prob, coef, intercept=0.0):
    """The objective of literal (sign-gradient) FGSM training (numpy).

    .. math:: \\sum_i w_i [\\alpha l(y_i, \\eta_i) + (1 - \\alpha) l(y_i, \\eta_i + s_i)],

    s_i the FGSM shift of ``fgsm_shift``. Always <= ``robust_objective``; equal for
    losses where the sign of l' picks the worst endpoint (gaussian, huber, binomial).
    """
    coef, intercept = check_problem(prob).check_coef(coef, intercept)
    eta, shift = fgsm_shift(prob, coef, intercept)
    xp, y, _ = prob.per_sample(prob.y)
    return _mix(prob, eta, prob.family.loss(y, eta + shift, xp))
