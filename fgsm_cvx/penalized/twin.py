"""The penalised-likelihood twin of FGSM (docs/theory.md §4, item 3).

.. math::

    \\min_{\\beta, b}\\; \\sum_i w_i\\, l(y_i, x_i^\\top\\beta + b) + \\lambda P(\\beta),

weights summing to one, the intercept unpenalised. With P the dual norm of the attack set
and lam = (1 - alpha) eps kappa this is the estimator FGSM behaves like to first order
(``compare``). Solved by the same two backends as the adversarial problem: a DCP program
with lam as a ``cp.Parameter`` (DPP: ``with_lam`` re-solves without re-canonicalising),
or accelerated proximal gradient with the penalty's prox.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np

from .._diagnostics import check_poisson_zeros
from .._validation import check_scalar
from ..cvx import check_solver, solve_formulation, with_fallback
from ..engine import engine_name, require_host
from ..families import Hinge
from ..fast.solver import check_penalized_fast, solve_fast_penalized
from ..path import zero_if_better
from ..problem import AdversarialProblem, Scaling, resolve_penalty, robust_objective
from ..solve import check_backend

#: "auto" takes the fast path for a penalised fit from this many entries of X on (the
#: adversarial problems' rule until 2026-12-02, ``fgsm_cvx.solve``; the penalised fits'
#: own crossover has not been measured)
AUTO_FAST_SIZE_PENALIZED = 20_000


def resolve_convex_penalty(penalty, what="penalized_fit"):
    """A convex Penalty object from an object or a name; raise naming ``penalty``."""
    if penalty is None:
        raise TypeError(f"{what} needs a penalty: a Penalty or one of the names "
                        "l1, lasso, l2, linf, ridge")
    penalty = resolve_penalty(penalty)
    if not penalty.convex:
        raise ValueError(f"penalty {penalty!r} is non-convex; {what} needs a convex penalty "
                         "(a norm, ridge, or L_r with r >= 1). Generalized FGSM with a "
                         "non-convex penalty is solved by fc.lla_solve")
    return penalty


class PenalizedProblem:
    """Penalised likelihood: data, family, a convex penalty P and its level lam.

    .. math:: F(\\beta, b) = \\sum_i w_i\\, l(y_i, \\eta_i) + \\lambda P(\\beta),
              \\quad \\eta_i = x_i^\\top \\beta + b.

    The data are validated by (and held in) an ``AdversarialProblem`` with alpha = 1, whose
    robust objective is the clean weighted mean loss. Immutable; ``with_lam`` returns a
    copy sharing the data and the cvxpy formulation (lam is a DPP parameter).
    """

    def __init__(self, X, y, family, penalty, lam, fit_intercept=True, sample_weight=None,
                 constraints=None):
        base = AdversarialProblem(X, y, family=family, perturbation="linf", eps=0.0,
                                  alpha=1.0, fit_intercept=fit_intercept,
                                  sample_weight=sample_weight, constraints=constraints)
        penalty = resolve_convex_penalty(penalty)
        penalty.check_dim(base.n_features)
        self.base, self.penalty = base, penalty
        self.lam = check_scalar(lam, "lam", lower=0.0)
        self._cache = {}

    def with_lam(self, lam):
        """A copy at another lam, sharing data and the canonicalised cvxpy program."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.lam = check_scalar(lam, "lam", lower=0.0)
        return new

    def __repr__(self):
        n, d = self.base.X.shape
        return (f"PenalizedProblem(n_samples={n}, n_features={d}, family={self.base.family!r}, "
                f"penalty={self.penalty!r}, lam={self.lam})")

    def objective(self, coef, intercept=0.0):
        """sum_i w_i l(y_i, eta_i) + lam P(beta), in numpy."""
        coef, intercept = self.base.check_coef(coef, intercept)
        # at alpha = 1 the robust objective is the clean weighted mean loss
        return robust_objective(self.base, coef, intercept) + self.lam * self.penalty.value(coef)


class PenalizedFormulation:
    """The DCP program of a PenalizedProblem with lam as a nonnegative parameter."""

    def __init__(self, pp):
        prob = pp.base
        self.scaling = Scaling(prob, identity=True)  # solved in the original units
        X = prob.X if prob.X.dtype == np.float64 else prob.X.astype(np.float64)
        self.beta = cp.Variable(prob.n_features, name="beta")
        self.intercept = cp.Variable(name="intercept") if prob.fit_intercept else None
        eta = X @ self.beta
        if self.intercept is not None:
            eta = eta + self.intercept
        self.lam = cp.Parameter(nonneg=True, name="lam")
        # lam (a parameter) times a parameter-free convex expression: DPP
        objective = prob.sample_weight @ prob.family.loss_cvx(prob.y, eta) \
            + self.lam * pp.penalty.cvx(self.beta)
        constraints = [] if prob.constraints is None else \
            prob.constraints.cvx(self.beta, self.intercept)
        self.problem = cp.Problem(cp.Minimize(objective), constraints)


def _formulation(pp):
    form = pp._cache.get("cvxpy")
    if form is None:
        form = pp._cache["cvxpy"] = PenalizedFormulation(pp)
    form.lam.value = pp.lam
    return form


def fast_supported(pp):
    try:
        check_penalized_fast(pp.base, pp.penalty)
    except NotImplementedError:
        return False
    return True


def solve_penalized(pp, backend="auto", solver="ECOS", tol=1e-8, max_iter=None,
                    verbose=False, warm_start=None):
    """Solve a PenalizedProblem; a Result with ``lam`` set (eps = 0, alpha = 1 there).

    ``backend`` as in ``fc.solve``: "auto" takes the fast path for problems with at least
    ``AUTO_FAST_SIZE_PENALIZED`` entries of X that it covers (not hinge), cvxpy otherwise.
    """
    check_backend(backend)
    check_solver(solver, installed=False)  # before any solver runs; cvxpy checks installed
    if backend == "auto":
        large = pp.base.n_samples * pp.base.n_features >= AUTO_FAST_SIZE_PENALIZED
        use_fast = (not pp.base.on_host and fast_supported(pp)) or (
            large and not isinstance(pp.base.family, Hinge) and fast_supported(pp))
        backend = "fast" if use_fast else "cvxpy"
    if pp.lam == 0.0:
        # the clean fit: Poisson zero counts that e^eta -> 0 fits forever leave no
        # minimiser (the solvers returned 'optimal' points with a coefficient of -15 to
        # -20), as ``fc.solve`` at eps = 0 finds
        check_poisson_zeros(pp.base, "FISTA" if backend == "fast" else solver)
    if backend == "fast":
        kwargs = {} if max_iter is None else {"max_iter": int(max_iter)}
        res = solve_fast_penalized(pp.base, pp.penalty, pp.lam, pp.objective, tol=tol,
                                   warm_start=warm_start, **kwargs)
    else:
        require_host(pp.base.X, "cvxpy")
        form = _formulation(pp)

        def attempt(name):
            # at lam = 0 the twin is the clean fit, pp.base: its diagnostics (separable
            # classes: no minimiser, where the solvers return a point of tiny loss as
            # 'optimal_inaccurate' with a bound of ~0) apply as they are
            return solve_formulation(form, pp.objective, solver=name, tol=tol,
                                     max_iter=max_iter, verbose=verbose,
                                     prob=pp.base if pp.lam == 0.0 else None, eps=0.0,
                                     alpha=1.0, lam=pp.lam, engine=engine_name(pp.base.X))

        res = with_fallback(attempt, solver)
    # at lam >= lam_max the exact zero is optimal, which the solvers reach only to ~1e-6
    return zero_if_better(pp.base, res, pp.objective) if pp.lam > 0 else res


def penalized_fit(X, y, family, penalty, lam, fit_intercept=True, sample_weight=None,
                  constraints=None, backend="auto", solver="ECOS", tol=1e-8, max_iter=None,
                  warm_start=None):
    """Fit a penalised-likelihood GLM (the twin of FGSM); return a certified Result.

    .. math::

        \\min_{\\beta, b}\\; \\sum_i w_i\\, l(y_i, x_i^\\top\\beta + b) + \\lambda P(\\beta),
        \\qquad \\textstyle\\sum_i w_i = 1,

    the intercept unpenalised.

    Parameters
    ----------
    X : array-like or scipy.sparse matrix, shape (n_samples, n_features)
    y : array-like, shape (n_samples,)
    family : Family or str
        "gaussian", "binomial" (= "logistic"), "poisson", "hinge", "huber".
    penalty : Penalty or str
        A convex penalty: "l1" (= "lasso"), "l2" (the non-squared norm), "linf", "ridge"
        (||beta||^2 / 2), or an object: any dual norm of a symmetric perturbation set
        (``penalties.WeightedL1``, ``GroupNorm``, ``EllipsoidNorm``, ``Lq``, ``DualNorm``),
        ``penalties.Lr(r)`` with r >= 1, ``penalties.SquaredL2()``.
    lam : float >= 0
        Penalty level. Conventions: gaussian loss (y - eta)^2 / 2, so with uniform
        weights "l1" is scikit-learn's ``Lasso(alpha=lam)`` and "ridge" is
        ``Ridge(alpha=n * lam)``; binomial "l1" is ``LogisticRegression(C=1 / (n lam))``.
    fit_intercept, sample_weight, constraints
        As in ``AdversarialProblem``.
    backend : {"auto", "cvxpy", "fast"}
        The fast path (accelerated proximal gradient; prox of lam P, for a norm the
        identity minus the projection onto the lam-ball of its dual) covers penalties
        with a closed-form prox and no user constraints; otherwise it raises
        NotImplementedError naming the cvxpy backend.
    solver, tol, max_iter, warm_start
        As in ``fc.solve``.

    Returns
    -------
    Result
        ``objective`` is the penalised objective recomputed in numpy; ``lam`` is set;
        ``eps`` = 0 and ``alpha`` = 1 (no attack: the clean loss).
    """
    check_backend(backend)
    pp = PenalizedProblem(X, y, family, penalty, lam, fit_intercept=fit_intercept,
                          sample_weight=sample_weight, constraints=constraints)
    return solve_penalized(pp, backend=backend, solver=solver, tol=tol, max_iter=max_iter,
                           warm_start=warm_start)
