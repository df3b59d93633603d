"""The penalised-likelihood twin (``fc.penalized_fit``) against scikit-learn, against
replicated data, and its two backends against each other."""

import numpy as np
import pytest
import sklearn
from conftest import make_y
from sklearn.linear_model import Lasso, LogisticRegression, Ridge

import fgsm_cvx as fc
from fgsm_cvx import penalties
from fgsm_cvx.penalized import PenalizedProblem
from fgsm_cvx.penalized.twin import solve_penalized

BETA = np.array([1.0, -0.5, 0.0, 0.0, 0.3])


def _data(family="gaussian", n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, BETA.shape[0]))
    return X, make_y(family, X @ BETA + 0.2, rng)


def _sk_logistic_l1(C):
    """scikit-learn's L1 logistic regression (saga: the intercept is not penalised)."""
    version = tuple(int(v) for v in sklearn.__version__.split(".")[:2])
    # scikit-learn 1.8 deprecated penalty= in favour of l1_ratio
    kw = {"l1_ratio": 1.0} if version >= (1, 8) else {"penalty": "l1"}
    return LogisticRegression(C=C, solver="saga", tol=1e-13, max_iter=200_000, **kw)


# ----- scikit-learn references ------------------------------------------------------------
@pytest.mark.parametrize("backend", ["cvxpy", "fast"])
def test_gaussian_l1_is_sklearn_lasso(backend):
    """Our loss is (y - eta)^2 / 2 (families.py), so mean loss + lam ||b||_1 is exactly
    sklearn's 1/(2n) ||y - X b||^2 + alpha ||b||_1 with alpha = lam."""
    X, y = _data()
    for lam in (0.01, 0.05, 0.2):
        ref = Lasso(alpha=lam, tol=1e-14, max_iter=1_000_000).fit(X, y)
        res = fc.penalized_fit(X, y, "gaussian", "l1", lam, backend=backend, tol=1e-10)
        assert res.backend == backend and res.lam == lam
        np.testing.assert_allclose(res.coef, ref.coef_, atol=1e-5)
        assert res.intercept == pytest.approx(ref.intercept_, abs=1e-5)
        # and the numpy objective is the Lasso objective at the returned point
        r = y - X @ res.coef - res.intercept
        assert res.objective == pytest.approx(np.mean(r**2) / 2 + lam * np.abs(res.coef).sum(),
                                              rel=1e-12)


@pytest.mark.parametrize("backend", ["cvxpy", "fast"])
def test_binomial_l1_is_sklearn_logistic(backend):
    """sklearn minimises C sum_i log-loss + ||b||_1, i.e. n C (mean loss + ||b||_1 / (n C)):
    C = 1 / (n lam)."""
    X, y = _data("binomial")
    n = X.shape[0]
    for lam in (0.005, 0.03):
        ref = _sk_logistic_l1(1.0 / (n * lam)).fit(X, y)
        res = fc.penalized_fit(X, y, "logistic", "lasso", lam, backend=backend, tol=1e-11)
        np.testing.assert_allclose(res.coef, ref.coef_[0], atol=1e-5)
        assert res.intercept == pytest.approx(ref.intercept_[0], abs=1e-5)


@pytest.mark.parametrize("backend", ["cvxpy", "fast"])
def test_gaussian_ridge_is_sklearn_ridge(backend):
    """"ridge" is lam ||b||^2 / 2: times 2n, sklearn's ||y - Xb||^2 + alpha ||b||^2 with
    alpha = n lam (sklearn centres the data for the intercept; the minimiser is the same)."""
    X, y = _data()
    n = X.shape[0]
    for lam in (0.01, 0.5):
        ref = Ridge(alpha=n * lam, tol=1e-14, solver="cholesky").fit(X, y)
        res = fc.penalized_fit(X, y, "gaussian", "ridge", lam, backend=backend, tol=1e-10)
        np.testing.assert_allclose(res.coef, ref.coef_, atol=1e-5)
        assert res.intercept == pytest.approx(ref.intercept_, abs=1e-5)


def test_sample_weights_match_sklearn_and_replication():
    """Weights normalised to sum one: sklearn's Lasso(sample_weight=w) (which rescales w to
    sum n) and, for integer weights, the fit on the replicated rows."""
    X, y = _data(n=120)
    rng = np.random.default_rng(3)
    w = rng.integers(1, 4, X.shape[0]).astype(float)
    lam = 0.03
    res = fc.penalized_fit(X, y, "gaussian", "l1", lam, sample_weight=w, backend="cvxpy")
    ref = Lasso(alpha=lam, tol=1e-14, max_iter=1_000_000).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(res.coef, ref.coef_, atol=1e-5)
    rep = np.repeat(np.arange(X.shape[0]), w.astype(int))
    res_rep = fc.penalized_fit(X[rep], y[rep], "gaussian", "l1", lam, backend="cvxpy")
    np.testing.assert_allclose(res.coef, res_rep.coef, atol=1e-6)
    assert res.intercept == pytest.approx(res_rep.intercept, abs=1e-6)
    # binomial: C = 1 / (W lam), W the raw total weight
    Xb, yb = _data("binomial", n=120)
    resb = fc.penalized_fit(Xb, yb, "binomial", "l1", lam, sample_weight=w, backend="fast",
                            tol=1e-11)
    refb = _sk_logistic_l1(1.0 / (w.sum() * lam)).fit(Xb, yb, sample_weight=w)
    np.testing.assert_allclose(resb.coef, refb.coef_[0], atol=1e-5)


# ----- the two backends on every penalty ----------------------------------------------------
D = BETA.shape[0]
PENALTY_CASES = {
    "l1": lambda: "l1",
    "l2": lambda: "l2",
    "linf": lambda: "linf",
    "ridge": lambda: "ridge",
    "weighted_l1": lambda: penalties.WeightedL1(np.array([0.5, 1.0, 2.0, 0.0, 1.0])),
    "group": lambda: penalties.GroupNorm([[0, 1], [2, 3, 4]]),
    "ellipsoid": lambda: penalties.EllipsoidNorm(np.eye(D) + 0.3 * np.eye(D, k=1)),
    "lq3": lambda: penalties.Lq(3),
    "lr1.5": lambda: penalties.Lr(1.5),
}
FAMILY_FOR = {"l1": "poisson", "l2": "binomial", "linf": "huber", "ridge": "binomial",
              "weighted_l1": "gaussian", "group": "binomial", "ellipsoid": "gaussian",
              "lq3": "poisson", "lr1.5": "binomial"}


@pytest.mark.parametrize("pen_id", list(PENALTY_CASES))
def test_fast_twin_agrees_with_cvxpy(pen_id):
    """Proximal gradient (prox = identity minus the projection onto the dual ball) against
    the interior-point solution (Clarabel, tight), on a family per penalty."""
    family = FAMILY_FOR[pen_id]
    X, y = _data(family, n=300, seed=1)
    w = np.random.default_rng(5).uniform(0.5, 2.0, X.shape[0])
    lam = 0.04
    ref = fc.penalized_fit(X, y, family, PENALTY_CASES[pen_id](), lam, sample_weight=w,
                           backend="cvxpy", solver="CLARABEL", tol=1e-10)
    res = fc.penalized_fit(X, y, family, PENALTY_CASES[pen_id](), lam, sample_weight=w,
                           backend="fast", tol=1e-10)
    assert res.objective == pytest.approx(ref.objective, rel=1e-8)
    np.testing.assert_allclose(res.coef, ref.coef, atol=2e-5)
    assert res.certificate.residual < 1e-6


def test_hinge_twin_fast_vs_cvxpy():
    X, y = _data("hinge", n=300, seed=2)
    ref = fc.penalized_fit(X, y, "hinge", "l1", 0.02, backend="cvxpy")
    res = fc.penalized_fit(X, y, "hinge", "l1", 0.02, backend="fast")
    assert res.objective == pytest.approx(ref.objective, rel=1e-6)


def test_lam_zero_is_maximum_likelihood_and_large_lam_zeroes():
    """lam = 0: the unpenalised fit (least squares by numpy); lam above ||X^T r0||_inf / n
    (the Lasso's lambda_max, r0 the centred y): all coefficients vanish."""
    X, y = _data(n=150)
    res = fc.penalized_fit(X, y, "gaussian", "l1", 0.0, tol=1e-10)
    A = np.column_stack([X, np.ones(X.shape[0])])
    ls = np.linalg.lstsq(A, y, rcond=None)[0]
    np.testing.assert_allclose(np.append(res.coef, res.intercept), ls, atol=1e-6)
    lam_max = np.max(np.abs(X.T @ (y - y.mean()))) / X.shape[0]
    big = fc.penalized_fit(X, y, "gaussian", "l1", 1.001 * lam_max)
    assert np.max(np.abs(big.coef)) < 1e-7
    small = fc.penalized_fit(X, y, "gaussian", "l1", 0.99 * lam_max)
    assert np.max(np.abs(small.coef)) > 1e-5


def test_numerical_failure_of_one_solver_falls_back_to_another(monkeypatch):
    """The twin retries the other installed solvers where the first fails numerically,
    as fc.solve does (ECOS failed on 1 in 25 small Poisson twins: the default
    penalized_fit raised SolverError). ECOS's failure is forced here; the answer is
    checked against the fast backend."""
    import warnings

    from fgsm_cvx.exceptions import SolverError, SolverFallbackWarning
    from fgsm_cvx.penalized import twin

    real = twin.solve_formulation

    def ecos_fails(form, objective, solver="ECOS", **kwargs):
        if solver == "ECOS":
            raise SolverError("ECOS failed: forced", status="solver_error", solver="ECOS")
        return real(form, objective, solver=solver, **kwargs)

    monkeypatch.setattr(twin, "solve_formulation", ecos_fails)
    rng = np.random.default_rng(13)
    X = rng.standard_normal((50, 3))
    y = rng.poisson(np.exp(np.clip(X @ rng.standard_normal(3), -2, 2))).astype(float)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = fc.penalized_fit(X, y, "poisson", "linf", 0.01, backend="cvxpy")
    assert res.solver != "ECOS"
    assert any(issubclass(w.category, SolverFallbackWarning) for w in caught)
    fast = fc.penalized_fit(X, y, "poisson", "linf", 0.01, backend="fast")
    assert res.objective == pytest.approx(fast.objective, rel=1e-7)


@pytest.mark.parametrize("backend", ["cvxpy", "fast"])
def test_lam_zero_on_separable_classes_has_no_minimiser(backend):
    """At lam = 0 the twin is the clean fit: on separable classes no minimiser exists and
    the twin says so as fc.solve does (it returned a point of loss 6e-6, 'certified')."""
    from fgsm_cvx.exceptions import SolverError

    rng = np.random.default_rng(1)
    X = rng.standard_normal((20, 2))
    y = (X[:, 0] > 0).astype(float)
    with pytest.raises(SolverError, match="no minimiser exists"):
        fc.penalized_fit(X, y, "binomial", "ridge", 0.0, backend=backend)
    assert fc.penalized_fit(X, y, "binomial", "ridge", 0.1, backend=backend).objective > 0.1


def test_lam_is_a_dpp_parameter_and_constraints_hold():
    X, y = _data(n=100)
    pp = PenalizedProblem(X, y, "gaussian", "l1", 0.05, constraints="nonnegative")
    first = solve_penalized(pp, backend="cvxpy")
    other = pp.with_lam(0.01)
    second = solve_penalized(other, backend="cvxpy")
    assert pp._cache["cvxpy"] is other._cache["cvxpy"]  # canonicalised once
    assert pp._cache["cvxpy"].problem.is_dpp()
    fresh = fc.penalized_fit(X, y, "gaussian", "l1", 0.01, constraints="nonnegative")
    np.testing.assert_allclose(second.coef, fresh.coef, atol=1e-7)
    assert np.all(first.coef >= -1e-9) and np.all(second.coef >= -1e-9)


# ----- validation ---------------------------------------------------------------------------
class _NoProx(penalties.Penalty):
    """A convex penalty without a prox (the fast path must refuse it)."""

    def value(self, beta):
        return float(np.sum(np.abs(beta)))

    def cvx(self, beta):
        import cvxpy as cp

        return cp.norm1(beta)


def _forbid_solvers(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("a solver ran before the input was validated")

    import fgsm_cvx.penalized.twin as twin

    monkeypatch.setattr(twin, "solve_formulation", boom)
    monkeypatch.setattr(twin, "solve_fast_penalized", boom)


BAD_CALLS = [
    ("lam_negative", dict(lam=-0.1), ValueError, "lam must be in"),
    ("lam_nan", dict(lam=float("nan")), ValueError, "lam must be finite"),
    ("lam_string", dict(lam="0.1"), TypeError, "lam must be a real number"),
    ("penalty_unknown", dict(penalty="elastic"), ValueError, "unknown penalty 'elastic'"),
    ("penalty_none", dict(penalty=None), TypeError, "needs a penalty"),
    ("penalty_type", dict(penalty=3), TypeError, "penalty must be a Penalty"),
    ("penalty_nonconvex", dict(penalty=penalties.SCAD()), ValueError, "non-convex"),
    ("penalty_nonconvex_fast", dict(penalty=penalties.Lr(0.5), backend="fast"), ValueError,
     "non-convex"),
    ("penalty_dims", dict(penalty=penalties.WeightedL1([1.0, 2.0])), ValueError,
     "scales has length 2"),
    ("family_unknown", dict(family="gamma"), ValueError, "unknown family 'gamma'"),
    ("backend_unknown", dict(backend="gpu"), ValueError, "backend must be one of"),
    ("solver_unknown", dict(solver="MOSEK"), ValueError, "solver must be one of"),
]


@pytest.mark.parametrize("case", BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_bad_input_is_refused_before_any_solver(case, monkeypatch):
    _, kwargs, exc, message = case
    X, y = _data(n=40)
    _forbid_solvers(monkeypatch)
    args = dict(family="gaussian", penalty="l1", lam=0.1)
    args.update(kwargs)
    with pytest.raises(exc, match=message):
        fc.penalized_fit(X, y, args.pop("family"), args.pop("penalty"), args.pop("lam"),
                         **args)


def test_fast_path_refuses_what_it_cannot_do_naming_cvxpy():
    X, y = _data(n=40)
    for kwargs in ({"penalty": _NoProx()}, {"penalty": "l1", "constraints": "nonnegative"}):
        pen = kwargs.pop("penalty")
        with pytest.raises(NotImplementedError, match="backend='cvxpy'"):
            fc.penalized_fit(X, y, "gaussian", pen, 0.1, backend="fast", **kwargs)
        # "auto" falls back to cvxpy for a large problem it cannot take fast
        Xl = np.tile(X, (150, 1))
        yl = np.tile(y, 150)
        assert fc.penalized_fit(Xl, yl, "gaussian", pen, 0.1, **kwargs).backend == "cvxpy"


def test_twin_on_sparse_X_matches_dense():
    import scipy.sparse as sp

    X, y = _data("binomial", n=400, seed=4)
    X[np.abs(X) < 0.8] = 0.0
    dense = fc.penalized_fit(X, y, "binomial", "l1", 0.01, backend="fast", tol=1e-10)
    sparse = fc.penalized_fit(sp.csr_matrix(X), y, "binomial", "l1", 0.01, backend="fast",
                              tol=1e-10)
    np.testing.assert_allclose(dense.coef, sparse.coef, atol=1e-8)


@pytest.mark.parametrize("backend", ["cvxpy", "fast"])
def test_exact_zero_at_and_above_lam_max(backend):
    """lam_max = ||X^T (mean(y) - y)||_inf / n for logistic L1 (the KKT condition of
    beta = 0 at the intercept-only fit): just above it every coefficient is exactly 0
    (the solvers alone stop ~1e-6 away), just below it some is not."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 5))
    y = (X @ [1.0, -0.5, 0.0, 0.0, 0.3] + rng.logistic(size=300) > 0).astype(float)
    lam_max = np.abs(X.T @ (y.mean() - y)).max() / 300
    above = fc.penalized_fit(X, y, "binomial", "l1", 1.001 * lam_max, backend=backend)
    assert np.all(above.coef == 0.0)
    assert above.intercept == pytest.approx(np.log(y.mean() / (1 - y.mean())), abs=1e-12)
    below = fc.penalized_fit(X, y, "binomial", "l1", 0.9 * lam_max, backend=backend)
    assert np.abs(below.coef).max() > 1e-4


@pytest.mark.parametrize("penalty, lam", [("l1", 1e-4), ("l2", 3e-4)])
def test_fast_twin_on_nearly_separable_data(penalty, lam):
    """Breast cancer (standardised), logistic with a small penalty: the loss is flat along
    the large coefficients, and FISTA's residual test alone stopped 2e-6 to 2e-5
    (relative) above the optimum. A solve that has run 50 iterations goes on with a
    residual tolerance 100 times smaller (F - F* ~ r^2 / (2 m)): no worse than the better
    of Clarabel and ECOS at 1e-10 (numpy objectives at feasible points), to 1e-6."""
    import warnings

    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    fast = fc.penalized_fit(X, y, "logistic", penalty, lam, backend="fast")
    with warnings.catch_warnings():  # (the references' inaccuracy notes)
        warnings.simplefilter("ignore")
        ref = min(fc.penalized_fit(X, y, "logistic", penalty, lam, backend="cvxpy", solver=s,
                                   tol=1e-10).objective for s in ("CLARABEL", "ECOS"))
    assert fast.objective <= ref * (1 + 1e-6), (fast.objective, ref)


@pytest.mark.parametrize("backend", ["cvxpy", "fast"])
def test_poisson_clean_fit_without_minimiser_raises(backend):
    """lam = 0 is the clean fit: with a feature nonzero only where y = 0, e^eta -> 0 fits
    those counts forever without moving the positive ones, so no minimiser exists (found
    by a survey: 'optimal' with a coefficient of -19.5 from cvxpy, -14.5 from the fast
    path). It raises as ``fc.solve`` at eps = 0 does; with a penalty (lam > 0) a
    minimiser exists, and the marking feature's coefficient is finite and negative."""
    rng = np.random.default_rng(13)
    y = rng.poisson(1.0, 30).astype(float)
    X = np.c_[rng.standard_normal(30), (y == 0).astype(float)]
    with pytest.raises(fc.SolverError) as err:
        fc.solve(fc.AdversarialProblem(X, y, "poisson", eps=0.0), backend=backend)
    assert err.value.status == "unbounded"
    with pytest.raises(fc.SolverError) as err:
        fc.penalized_fit(X, y, "poisson", "l1", 0.0, backend=backend)
    assert err.value.status == "unbounded"
    res = fc.penalized_fit(X, y, "poisson", "l1", 0.05, backend=backend)
    assert np.isfinite(res.coef).all() and -10.0 < res.coef[1] < 0.0


def test_fast_gaussian_twin_takes_its_gradients_from_the_gram_matrix(monkeypatch):
    """Below 200 columns the gaussian twin forms the Gram matrix first
    (``solver._gram_first``) and FISTA takes X^T g from it: no ``map_reduce`` with X^T g,
    and the Lasso's answer is Clarabel's. The twin's columns are unscaled while the
    adversarial problem's (here x_scale != 1, solved first on the same problem and its
    cache) are scaled: each keeps its own Gram matrix."""
    import fgsm_cvx.fast.model as fast_model
    from fgsm_cvx.engine import HostEngine
    from fgsm_cvx.fast.model import fast_scaling

    monkeypatch.setattr(fast_model, "GRAM_GRADIENT_MIN_ENTRIES", 0)  # (small X here)
    rng = np.random.default_rng(17)
    X = rng.standard_normal((600, 8)) * 40.0 + 25.0
    y = X @ rng.standard_normal(8) / 40.0 + rng.standard_normal(600)
    w = rng.uniform(0.3, 2.0, 600)
    pp = PenalizedProblem(X, y, "gaussian", "l1", 0.05, sample_weight=w)
    assert fast_scaling(pp.base).x != 1.0
    fc.solve(pp.base, backend="fast")  # (caches the scaled Gram matrix)
    gradients = []
    map_reduce = HostEngine.map_reduce

    def counted(self, *args, **kwargs):
        if kwargs.get("rmatvec"):
            gradients.append(1)
        return map_reduce(self, *args, **kwargs)

    monkeypatch.setattr(HostEngine, "map_reduce", counted)
    res = solve_penalized(pp, backend="fast", tol=1e-10)
    assert not gradients and res.n_iter > 5
    ref = solve_penalized(pp, backend="cvxpy", solver="CLARABEL", tol=1e-10)
    assert res.objective == pytest.approx(ref.objective, rel=1e-8)
    np.testing.assert_allclose(res.coef, ref.coef, atol=1e-5 * np.abs(ref.coef).max())
