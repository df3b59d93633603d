"""eps paths: the top of the grid, warm starts against cold solves, plotting, errors."""

import cvxpy as cp
import numpy as np
import pytest
from conftest import QUICK

import fgsm_cvx as fc

FAMILIES = ["gaussian", "logistic", "poisson", "huber", "hinge"]


def _data(family, n=150, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    eta = X @ np.linspace(1.0, -1.0, d) * 0.6
    y = {"gaussian": eta + rng.standard_normal(n), "huber": eta + rng.standard_t(2, n),
         "poisson": rng.poisson(np.exp(eta)), "logistic": eta + rng.logistic(size=n) > 0,
         "hinge": eta + rng.logistic(size=n) > 0}[family]
    return X, y.astype(float)


@pytest.mark.parametrize("family", FAMILIES)
def test_zero_at_eps_max_and_not_below(family):
    prob = fc.AdversarialProblem(*_data(family), family=family)
    path = fc.adversarial_path(prob, n_eps=50)
    assert path.eps[0] == pytest.approx(fc.eps_max(prob))
    assert np.all(path.coefs[0] == 0.0)
    assert np.max(np.abs(path.coefs[1])) > 1e-4
    # the zero point is really optimal there: no cold solve does better
    cold = fc.solve(prob.with_params(eps=path.eps[0]), backend="cvxpy")
    assert path.objectives[0] <= cold.objective + 1e-9
    assert path.n_nonzero[0] == 0 and path.n_nonzero[-1] == prob.n_features


HINGE_SETS = {"linf": fc.Linf(), "l2": fc.L2(), "l1": fc.L1(),
              "weighted_linf": fc.WeightedLinf(np.linspace(0.5, 2.0, 5)),
              "group": fc.Group(np.array([0, 0, 1, 1, 2])),
              "ellipsoid": fc.Ellipsoid(np.eye(5) + 0.3 * np.diag(np.ones(4), 1)),
              # asymmetric sets: at alpha = 0 the symmetrised set's program, at 0.3
              # (the weighted case) Dinkelbach's steps on sup E, balanced classes and no
              # intercept the support-function ratio
              "box": fc.Box([-1.0, -0.2, 0.0, -0.5, -0.1], [0.3, 1.0, 0.5, 0.5, 2.0]),
              "custom_polytope": fc.CustomSet(lambda delta: [
                  delta >= -0.5, cp.sum(delta) <= 1.0,
                  delta[0] - delta[1] + 0.5 * delta[3] <= 0.8])}


def assert_zero_from_eps_max(prob, backend="cvxpy", above_tol=1e-8):
    """eps_max of ``prob`` is finite and positive, and by full solves (Clarabel, or the
    fast path) just below it the optimum beats the zero point (0, b*) and just above
    it does not."""
    from fgsm_cvx.problem import robust_objective

    top = fc.eps_max(prob)
    assert 0.0 < top < np.inf
    b0 = prob.family.intercept_only(prob.y, prob.sample_weight) if prob.fit_intercept else 0.0
    gaps = []
    for factor in (1.0 - 1e-3, 1.0 + 1e-3):
        # (a copy without the cache, where eps_max is kept: the fast path would return
        # the null solution at once beyond it, ``solver._null_optimal``)
        at = prob._replaced(eps=top * factor, _cache={})
        best = fc.solve(at, backend=backend, **({"solver": "CLARABEL"}
                                                if backend == "cvxpy" else {}))
        gaps.append(best.objective - robust_objective(at, np.zeros(prob.n_features), b0))
    assert gaps[0] < -1e-7 and gaps[1] > -above_tol, gaps


@pytest.mark.parametrize("set_name", list(HINGE_SETS))
@pytest.mark.parametrize("case", ["more_positive", "more_negative_weighted_alpha",
                                  "balanced", "no_intercept"])
def test_hinge_eps_max_is_where_zero_becomes_optimal(set_name, case):
    """The hinge eps_max (one convex program, or the closed form for balanced classes and
    no intercept) against full cvxpy solves: just below it the optimum beats the zero
    point (0, b*), just above it does not."""
    rng = np.random.default_rng(len(set_name) + 7 * len(case))
    n, d = 150, 5
    X = rng.standard_normal((n, d)) + 0.5
    eta = X @ np.linspace(1.0, -1.0, d) * 2.0  # a strong signal: with a weak one and
    # unequal classes, the hinge's constant classifier can be optimal at every eps
    shift = {"more_positive": 0.8, "more_negative_weighted_alpha": -0.8}.get(case, 0.0)
    y = (eta + shift + rng.logistic(size=n) > 0).astype(float)
    w = rng.random(n) + 0.5 if case == "more_negative_weighted_alpha" else None
    if case == "balanced":
        y = (np.argsort(np.argsort(eta + rng.logistic(size=n))) >= n // 2).astype(float)
    prob = fc.AdversarialProblem(X, y, family="hinge", perturbation=HINGE_SETS[set_name],
                                 sample_weight=w, fit_intercept=case != "no_intercept",
                                 alpha=0.3 if w is not None else 0.0)
    assert_zero_from_eps_max(prob)


@pytest.mark.parametrize("alpha", [0.99, 0.9999])
def test_hinge_box_eps_max_near_clean(alpha):
    """An asymmetric set with alpha near 1 (Dinkelbach's steps on the dual program; the
    bisection on cvxpy solves that it replaced failed on ECOS at alpha = 0.9999): just
    below eps_max the fast path's optimum (reliable there, unlike the interior-point
    solvers) beats the zero point (0, b*), just above it does not."""
    rng = np.random.default_rng(int(alpha * 1e4))
    n, d = 400, 6
    X = rng.standard_normal((n, d))
    y = np.where(X @ np.linspace(1.0, -0.5, d) + rng.logistic(size=n) > -1.0, 1.0, -1.0)
    prob = fc.AdversarialProblem(X, y, family="hinge", alpha=alpha,
                                 perturbation=fc.Box(-0.5, np.linspace(0.2, 1.5, d)))
    assert_zero_from_eps_max(prob, backend="fast", above_tol=1e-9)


@pytest.mark.parametrize("set_name", ["linf", "l2", "group", "box"])
@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_hinge_eps_max_working_set(monkeypatch, set_name, alpha):
    """The hinge program's working set over the kink class (used from 3000 of its
    samples on), forced here on 150 samples with a first split from 30 of them and 5
    kept whole: the same eps_max as the whole program, and the threshold by full cvxpy
    solves (a box at alpha = 0.3: Dinkelbach's programs sup E on the working set)."""
    from fgsm_cvx import path as path_module

    X, y = _unequal_hinge(len(set_name) + int(10 * alpha))

    def problem():  # (a new problem each time: eps_max is kept in a problem's cache)
        return fc.AdversarialProblem(X, y, family="hinge",
                                     perturbation=HINGE_SETS[set_name], alpha=alpha)

    whole = fc.eps_max(problem())
    prob = problem()
    for name, value in (("_HINGE_DIRECT", 40), ("_HINGE_SUBSAMPLE", 30),
                        ("_HINGE_NEAR", 5)):
        monkeypatch.setattr(path_module, name, value)
    calls = []
    solve = path_module._HingeProgram.solve
    monkeypatch.setattr(path_module._HingeProgram, "solve",
                        lambda self, *a, **k: calls.append(a[0]) or solve(self, *a, **k))
    assert fc.eps_max(prob) == pytest.approx(whole, rel=1e-6)
    # a reduced program certified it: not the fallback to the whole program
    assert len(calls) >= 2 and calls[-1].sum() < calls[-1].size
    assert_zero_from_eps_max(prob)


def _unequal_hinge(seed, n=150, d=5):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) + 0.5
    y = (X @ np.linspace(1.0, -1.0, d) * 2.0 + 0.8 + rng.logistic(size=n) > 0).astype(float)
    return X, y


@pytest.mark.parametrize("penalty", [fc.penalties.L1(), fc.penalties.L2(),
                                     fc.penalties.WeightedL1(np.linspace(0.5, 2.0, 5)),
                                     fc.penalties.GroupNorm(np.array([0, 0, 1, 1, 2]))],
                         ids=["l1", "l2", "weighted_l1", "group"])
@pytest.mark.parametrize("alpha", [0.0, 0.4])
def test_hinge_eps_max_with_a_norm_penalty(penalty, alpha):
    """A penalty steep at 0 enters the hinge's eps_max through P'(0; u) (one program;
    it was a bisection on whole solves, 4.2 s instead of 0.2 s at n = 2000, d = 50):
    against full cvxpy solves on either side of it."""
    X, y = _unequal_hinge(11)
    assert_zero_from_eps_max(fc.AdversarialProblem(X, y, family="hinge", penalty=penalty,
                                                   alpha=alpha))


def test_hinge_eps_max_with_a_nonconvex_penalty():
    """SCAD and MCP equal |beta_j| near 0 (unit slope there, up to lam), so the radius
    from which beta = 0 is a local minimiser is the L1 penalty's (the bisection on
    cvxpy solves raised a ValueError: no DCP form); L_r with r < 1 is infinitely steep
    at 0: 0."""
    X, y = _unequal_hinge(12)
    l1 = fc.eps_max(fc.AdversarialProblem(X, y, family="hinge", penalty="l1", alpha=0.2))
    for penalty in (fc.penalties.SCAD(lam=0.5), fc.penalties.MCP(lam=2.0)):
        prob = fc.AdversarialProblem(X, y, family="hinge", penalty=penalty, alpha=0.2)
        assert fc.eps_max(prob) == pytest.approx(l1, rel=1e-9)
    assert fc.eps_max(fc.AdversarialProblem(X, y, family="hinge",
                                            penalty=fc.penalties.Lr(0.5))) == 0.0


@pytest.mark.parametrize("penalty", [fc.penalties.SquaredL2(), fc.penalties.Lr(1.5)],
                         ids=["ridge", "lr1.5"])
def test_hinge_eps_max_with_a_penalty_flat_at_zero(penalty):
    """A penalty flat at 0 shifts by o(|beta|): beta = 0 is optimal at some eps iff it is
    at eps = 0, and then at every eps. eps_max is inf where the clean hinge fit is not
    beta = 0 (the bisection returned 81-7875, above which a nonzero beta still beat
    beta = 0: checked at eps = 1e3 by Clarabel), and 0 where it is (labels +-1 on
    duplicated rows: no direction helps)."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((70, 4))
    eta = X @ [1.0, -0.5, 0.0, 0.3] + 0.2
    y = np.where(rng.random(70) < 1 / (1 + np.exp(-eta)), 1.0, -1.0)
    prob = fc.AdversarialProblem(X, y, family="hinge", penalty=penalty)
    assert fc.eps_max(prob) == np.inf
    # F along the segment from beta = 0 to the clean fit, at eps = 1e3 (numpy): below
    # the zero point near it (the hinge is 1-Lipschitz, so F(s) <= (1 - s) F(0) +
    # s F_clean(1) + eps s^r P: the o(s) shift loses to the linear fall for small s)
    far = prob.with_params(eps=1e3)
    clean = fc.solve(prob.with_params(eps=0.0), backend="cvxpy", solver="CLARABEL")
    b0 = prob.family.intercept_only(prob.y, prob.sample_weight)  # (the zero point's)
    f0 = fc.robust_objective(far, np.zeros(4), b0)
    best = min(fc.robust_objective(far, v * clean.coef, b0 + v * (clean.intercept - b0))
               for v in 10.0 ** -np.arange(1, 14))
    assert best < f0
    pairs = fc.AdversarialProblem(np.repeat(X[:35], 2, axis=0), np.tile([1.0, -1.0], 35),
                                  family="hinge", penalty=penalty)
    assert fc.eps_max(pairs) == 0.0


def test_hinge_eps_max_classes_equal_to_rounding():
    """Classes of equal weight whose float sums differ in the last bit (nine weights of
    0.1 each, summed in different orders: 0.9 and 0.9000000000000001) take the closed
    form ||sum_i w_i z_i x_i||_inf / ((1 - alpha) sum_i w_i) of balanced classes (the
    least eps with g^T u <= eps W ||u||_1 for all u, ||.||_1 the Linf ball's support),
    not the heavier class's program (5e-8 off, its tolerance)."""
    rng = np.random.default_rng(2)
    y = rng.permutation(np.r_[np.ones(9), -np.ones(9)])
    w = np.full(18, 0.1)
    assert float(w @ (y > 0)) != float(w @ (y < 0))  # the rounding this test is about
    X = rng.standard_normal((18, 3)) + 0.4 * y[:, None]
    prob = fc.AdversarialProblem(X, y, family="hinge", sample_weight=w, alpha=0.25)
    closed = np.abs(X.T @ (w * y)).max() / (0.75 * w.sum())
    assert fc.eps_max(prob) == pytest.approx(closed, rel=1e-13)


def test_hinge_eps_max_sparse_equals_dense():
    import scipy.sparse as sp

    X, y = _data("hinge")
    y[:30] = 1.0  # unequal classes: the convex program, not the closed form
    dense = fc.eps_max(fc.AdversarialProblem(X, y, family="hinge", perturbation="l2"))
    sparse = fc.eps_max(fc.AdversarialProblem(sp.csr_matrix(X), y, family="hinge",
                                              perturbation="l2"))
    assert sparse == pytest.approx(dense, rel=1e-7)


@pytest.mark.parametrize("backend", ["cvxpy", "fast"])
@pytest.mark.parametrize("family", ["gaussian", "logistic", "poisson"])
def test_warm_path_equals_cold_solves(family, backend):
    X, y = _data(family)
    prob = fc.AdversarialProblem(X, y, family=family, perturbation="l2")
    path = fc.adversarial_path(prob, n_eps=12 if QUICK else 30, backend=backend)
    for e, obj in zip(path.eps, path.objectives, strict=True):
        # a cold, independent solve: a new problem (new canonicalisation), other solver
        cold = fc.solve(fc.AdversarialProblem(X, y, family=family, perturbation="l2", eps=e),
                        backend="cvxpy", solver="CLARABEL")
        assert obj == pytest.approx(cold.objective, rel=1e-6, abs=1e-9)
    assert all(r.backend == backend for r in path.results)


@pytest.mark.parametrize("perturbation", ["linf", "l2"])
def test_fast_path_on_nearly_separable_data_equals_cold_solves(perturbation):
    """Breast cancer (standardised), logistic: toward small radii the coefficients grow
    to 10-130 and the loss flattens. The fast path (warm) and fast cold solves both meet
    cvxpy's objective (Clarabel at 1e-10) within 1e-6 at every radius; the cold solves'
    residual test alone left them up to 4e-4 above it."""
    import warnings

    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    prob = fc.AdversarialProblem(X, y, family="logistic", perturbation=perturbation)
    grid = fc.eps_grid(prob, 50)[::5 if QUICK else 1]
    path = fc.adversarial_path(prob, eps=grid, backend="fast")
    for e, warm in zip(grid, path.objectives, strict=True):
        one = prob.with_params(eps=e)
        cold = fc.solve(one, backend="fast").objective
        with warnings.catch_warnings():  # (the reference's fallback, inaccuracy notes)
            warnings.simplefilter("ignore")
            ref = fc.solve(one, backend="cvxpy", solver="CLARABEL", tol=1e-10).objective
        # (numpy objectives at feasible points: none is below F*; Clarabel's is
        # inaccurate by up to ~3e-6 here, so the fast ones may be lower)
        assert warm <= ref * (1 + 1e-6) and cold <= ref * (1 + 1e-6), (e, warm, cold, ref)
        assert warm == pytest.approx(cold, rel=1e-6)


def test_fast_path_where_newton_zeroes_the_only_group():
    """Poisson on three standardised diabetes columns, one group (p = 2), no intercept:
    at the second radius the warm start's Newton step set every coordinate of the one
    group to zero (its binding test) and then asked the group manifold for a working
    set at beta = 0, where it has none: an AttributeError. The path now meets cvxpy's
    objective at every radius."""
    from sklearn.datasets import load_diabetes

    X, target = load_diabetes(return_X_y=True, scaled=False)
    X = X[:, [2, 3, 8]]
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    prob = fc.AdversarialProblem(X, np.floor(target / 25.0), family="poisson",
                                 perturbation=fc.Group(np.zeros(3, dtype=int)),
                                 fit_intercept=False)
    path = fc.adversarial_path(prob, n_eps=8, eps_min_ratio=1e-2, backend="fast")
    for e, obj in zip(path.eps, path.objectives, strict=True):
        ref = fc.solve(prob.with_params(eps=e), backend="cvxpy", solver="CLARABEL")
        assert obj == pytest.approx(ref.objective, rel=1e-6), e


def test_explicit_grid_is_sorted_and_used():
    prob = fc.AdversarialProblem(*_data("gaussian"))
    path = fc.adversarial_path(prob, eps=[0.01, 0.3, 0.1], backend="cvxpy")
    np.testing.assert_array_equal(path.eps, [0.3, 0.1, 0.01])
    assert np.isnan(path.eps_max) and len(path) == 3
    for e, r in zip(path.eps, path.results, strict=True):
        assert r.eps == e


def test_grid_spacing():
    prob = fc.AdversarialProblem(*_data("logistic"), family="logistic")
    grid = fc.eps_grid(prob, n_eps=5, eps_min_ratio=1e-2)
    np.testing.assert_allclose(grid, fc.eps_max(prob) * np.logspace(0, -2, 5))


@pytest.mark.parametrize("kwargs, message", [
    ({"n_eps": 0}, "n_eps must be a positive integer"),
    ({"n_eps": 2.5}, "n_eps must be a positive integer"),
    ({"eps_min_ratio": 1.0}, "eps_min_ratio must be in"),
    ({"eps": [0.1, -1.0]}, "eps must be a nonempty 1-d array"),
    ({"eps": []}, "eps must be a nonempty 1-d array"),
    ({"backend": "gpu"}, "backend must be one of"),
])
def test_bad_arguments(kwargs, message):
    prob = fc.AdversarialProblem(*_data("gaussian"))
    with pytest.raises(ValueError, match=message):
        fc.adversarial_path(prob, **kwargs)


def test_no_default_grid_without_a_finite_eps_max():
    X, y = _data("gaussian")
    with pytest.raises(ValueError, match="eps_max is inf"):
        fc.adversarial_path(fc.AdversarialProblem(X, y, alpha=1.0))
    with pytest.raises(TypeError, match="AdversarialProblem"):
        fc.adversarial_path((X, y))


def test_plot_draws_one_line_per_coefficient():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    prob = fc.AdversarialProblem(*_data("logistic"), family="logistic")
    path = fc.adversarial_path(prob, n_eps=8)
    ax = path.plot(feature_names=list("abcde"))
    assert len(ax.get_lines()) == prob.n_features + 1  # plus the zero line
    np.testing.assert_array_equal(ax.get_lines()[2].get_ydata(), path.coefs[:, 2])
    assert ax.get_xscale() == "log"
    with pytest.raises(ValueError, match="feature_names has 3 names for 5 features"):
        path.plot(feature_names=list("abc"))  # (it was a bare IndexError)


def test_path_to_dict_is_json_safe():
    import json

    prob = fc.AdversarialProblem(*_data("gaussian"))
    d = json.loads(json.dumps(fc.adversarial_path(prob, n_eps=4).to_dict()))
    assert len(d["eps"]) == 4 and len(d["coefs"][0]) == prob.n_features


def _correlated_poisson(n, d, rho, seed):
    """AR(1) columns with correlation rho, a sparse truth, Poisson counts."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    for j in range(1, d):
        X[:, j] = rho * X[:, j - 1] + np.sqrt(1.0 - rho * rho) * X[:, j]
    beta = rng.standard_normal(d) * (rng.random(d) < 0.3) / np.sqrt(d) * 3
    return X, rng.poisson(np.exp(np.clip(X @ beta, -4, 4))).astype(float)


def test_stalled_newton_is_retried_after_identification(monkeypatch):
    """Along a Poisson path on correlated columns the predicted point often lies across
    a change of support, where Newton's damped steps stall; an identification run of
    FISTA and another try (``solver.NEWTON_TRIES``) save FISTA's hundreds of iterations
    at that stage (the same solutions either way). Each try pays here: 2918, 1749 and
    1365 iterations with one, two and three (2026-12-05). (On uncorrelated columns, where
    Poisson's pinned step now finishes a stage Newton gave up on, a second try no longer
    saves: n = 8000, d = 30, 335 with one, 404 with three; over 24 paths of a grid three
    tries took 12.3 s against 15.4 s with one, docs/performance.md.)"""
    from fgsm_cvx.fast import solver

    X, y = _correlated_poisson(2000, 50, 0.9, seed=2050)
    assert solver.NEWTON_TRIES == 3
    runs = {}
    for tries in (1, 2, 3):
        monkeypatch.setattr(solver, "NEWTON_TRIES", tries)
        runs[tries] = fc.adversarial_path(fc.AdversarialProblem(X, y, family="poisson"),
                                          n_eps=20, backend="fast", verbose=False)
    iterations = {k: sum(r.n_iter for r in p.results) for k, p in runs.items()}
    assert iterations[3] < iterations[2] < iterations[1], iterations
    assert iterations[3] <= 0.6 * iterations[1], iterations
    for tries in (1, 2):
        np.testing.assert_allclose(runs[3].objectives, runs[tries].objectives, rtol=1e-7)


def test_hinge_path_radii_try_the_reduced_program_early(monkeypatch):
    """A hinge path's warm radii try the exact finish after ``warm_first_try`` FISTA
    iterations (here WARM_FIRST_TRY = 10) instead of FIRST_TRY: the predicted point is
    near the solution. Counts,
    not times: at most 0.6x the iterations of the same path with the cold rule (0.40x
    measured, 675 against 1703), and the same objectives, certified (2026-12-04)."""
    from fgsm_cvx.fast import working_set

    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 20))
    beta = rng.standard_normal(20) * (rng.random(20) < 0.3) / np.sqrt(20) * 3
    y = (rng.random(2000) < 1.0 / (1.0 + np.exp(-X @ beta))).astype(float)
    runs = {}
    for rule in ("warm", "cold"):
        if rule == "cold":
            monkeypatch.setattr(working_set, "warm_first_try",
                                lambda model: working_set.FIRST_TRY)
        runs[rule] = fc.adversarial_path(fc.AdversarialProblem(X, y, family="hinge"),
                                         n_eps=50, backend="fast",
                                         verbose=False)
    iterations = {k: sum(r.n_iter for r in p.results) for k, p in runs.items()}
    assert iterations["warm"] <= 0.6 * iterations["cold"], iterations
    np.testing.assert_allclose(runs["warm"].objectives, runs["cold"].objectives,
                               rtol=1e-8)
    assert all(r.certificate.dual_objective is not None for r in runs["warm"].results[1:])


@pytest.mark.parametrize("family", ["gaussian", "hinge"])
def test_path_first_radius_is_zero_without_a_solve(family):
    """At the default grid's first radius, eps_max, beta = 0 with the intercept-only fit
    is optimal by definition: the path returns it without a solve (a hinge solve there
    took hundreds of iterations), with the objective of an independent cold solve."""
    X, y = _data("logistic" if family == "hinge" else family)
    prob = fc.AdversarialProblem(X, y, family=family)
    path = fc.adversarial_path(prob, n_eps=4, backend="fast")
    first = path.results[0]
    assert first.solver == "eps_max" and first.n_iter == 0 and first.backend == "fast"
    np.testing.assert_array_equal(first.coef, 0.0)
    cold = fc.solve(prob.with_params(eps=path.eps[0]), backend="cvxpy", solver="CLARABEL",
                    tol=1e-10)
    assert first.objective == pytest.approx(cold.objective, rel=1e-8)
    assert first.certificate.objective_numpy == first.objective
    assert np.any(path.coefs[1] != 0.0)


@pytest.mark.parametrize("backend", ["cvxpy", "fast"])
def test_path_stops_where_no_minimiser_exists(backend):
    """One feature, classes at |x| in [1, 3] on either side of 0, no intercept: the robust
    margins along u > 0 are (|x_i| - eps) u, all >= 0 and some > 0 exactly when
    eps <= 1, where no minimiser exists (at 0.8 and every smaller radius). "stop" ends the
    path at 1.2 with a warning; "raise" (the default) raises the SolverError."""
    x = np.concatenate([np.linspace(1.0, 3.0, 10), -np.linspace(1.0, 3.0, 10)])
    prob = fc.AdversarialProblem(x[:, None], (x > 0).astype(float), family="logistic",
                                 fit_intercept=False)
    grid = [2.0, 1.5, 1.2, 0.8, 0.5]
    with pytest.warns(UserWarning, match="the path stops at eps = 1.2"):
        path = fc.adversarial_path(prob, eps=grid, backend=backend, on_unbounded="stop")
    assert path.eps.tolist() == grid[:3] and len(path.results) == 3
    for e, obj in zip(path.eps, path.objectives, strict=True):  # the solved radii are right
        cold = fc.solve(prob.with_params(eps=e), backend="cvxpy", solver="CLARABEL")
        assert obj == pytest.approx(cold.objective, rel=1e-6)
    with pytest.raises(fc.SolverError) as err:
        fc.adversarial_path(prob, eps=grid, backend=backend)
    assert err.value.status == "unbounded"
    with pytest.raises(fc.SolverError):  # nothing solved before the first radius
        fc.adversarial_path(prob, eps=[0.8, 0.5], backend=backend, on_unbounded="stop")
    with pytest.raises(ValueError, match="on_unbounded"):
        fc.adversarial_path(prob, eps=grid, on_unbounded="skip")


@pytest.mark.parametrize("family", ["gaussian", "huber"])
def test_slow_warm_radii_switch_to_newton(monkeypatch, family):
    """Along a path on ill-conditioned data (AR(1) features, rho = 0.9) the symmetric
    losses' warm radii, FISTA and the early pinned step, ran to the pinned step's try at
    50 iterations; once one takes ``WARM_NEWTON_AFTER`` the path's next radii take one
    Newton stage and the pinned step at its end. Work counted in products with X (a
    second-order pass: its Gram matrix, d / 2 more), not time: at most 0.7x the rule's
    absence (0.47x gaussian, 0.53x Huber measured, 2026-12-05); the same objectives,
    and cvxpy's at three radii."""
    from fgsm_cvx import engine
    from fgsm_cvx.fast import active_set, solver

    # (the rule is the regular solver's: the gaussian path's active-set method, which
    # would follow these radii instead, is switched off)
    monkeypatch.setattr(active_set, "pays", lambda prob: False)
    rng = np.random.default_rng(0)
    n, d = 500, 20
    X = rng.standard_normal((n, d))
    for j in range(1, d):
        X[:, j] = 0.9 * X[:, j - 1] + np.sqrt(1.0 - 0.81) * X[:, j]
    y = X @ (rng.standard_normal(d) * (rng.random(d) < 0.3)) + rng.standard_normal(n)
    counts = {}

    def counting(name, original):
        def counted(self, *args, **kwargs):
            counts[name] = counts.get(name, 0) + 1
            return original(self, *args, **kwargs)
        return counted

    for name in ("matvec", "rmatvec", "second_order"):
        monkeypatch.setattr(engine.HostEngine, name,
                            counting(name, getattr(engine.HostEngine, name)))
    paths, work = {}, {}
    for rule in ("newton", "fista"):
        if rule == "fista":
            monkeypatch.setattr(solver, "WARM_NEWTON_AFTER", np.inf)
        counts.clear()
        prob = fc.AdversarialProblem(X, y, family=family)
        paths[rule] = fc.adversarial_path(prob, n_eps=20, backend="fast", verbose=False)
        work[rule] = counts.get("matvec", 0) + counts.get("rmatvec", 0) \
            + counts.get("second_order", 0) * (1 + d / 2)
        assert prob._cache.get(solver._WARM_NEWTON, False) == (rule == "newton")
    # (gaussian: the path without the rule takes the pinned step first on its warm
    # radii, ``solver.PINNED_FIRST_SHARE``, not FISTA: 0.80x measured, 2026-12-06)
    assert work["newton"] <= (0.85 if family == "gaussian" else 0.7) * work["fista"], work
    np.testing.assert_allclose(paths["newton"].objectives, paths["fista"].objectives,
                               rtol=1e-8)
    for k in (5, 12, 19):
        e = paths["newton"].eps[k]
        ref = fc.solve(fc.AdversarialProblem(X, y, family=family, eps=e), backend="cvxpy",
                       solver="CLARABEL")
        assert paths["newton"].objectives[k] == pytest.approx(ref.objective, rel=1e-6)


@pytest.mark.parametrize("seed, perturbation", [(1, "weighted"), (3, "l2")])
def test_well_fitted_path_is_accurate_relative_to_its_objective(seed, perturbation):
    """A gaussian path on AR(1) columns of scale 10 with little noise: the fit leaves F*
    at ~1e-3 of the objective at beta = 0, the scaled problem's unit. The continuation's
    stopping test, relative to 1 + |F| there, stopped radii 2.3e-6 and 2.5e-6 relative
    above Clarabel's optimum (2026-12-05); relative to |F| + STOP_FLOOR, within 1e-6."""
    rng = np.random.default_rng(seed)
    n, d = 400, 12
    X = rng.standard_normal((n, d))
    for j in range(1, d):
        X[:, j] = 0.9 * X[:, j - 1] + np.sqrt(1 - 0.81) * X[:, j]
    X *= 10
    y = X @ (rng.standard_normal(d) * (rng.random(d) < 0.5)) + 0.1 * rng.standard_t(3, n)
    pert = fc.WeightedLinf(np.linspace(0.5, 2, d)) if perturbation == "weighted" else fc.L2()
    prob = fc.AdversarialProblem(X, y, perturbation=pert, alpha=0.5, fit_intercept=False)
    path = fc.adversarial_path(prob, n_eps=12, backend="fast", verbose=False)
    for e, obj in zip(path.eps[1:], path.objectives[1:], strict=True):
        ref = fc.solve(prob.with_params(eps=e), backend="cvxpy", solver="CLARABEL",
                       tol=1e-10).objective
        assert obj <= ref + 1e-6 * abs(ref), (e, obj, ref)



def test_gaussian_warm_radii_go_to_the_pinned_step_first(monkeypatch):
    """An eps path of least squares on i.i.d. data (n = 2000, d = 20, 50 radii), whose
    solutions have few samples at their kinks (``solver.PINNED_FIRST_SHARE``): each warm
    radius offers the predicted point to the pinned step with its line search
    (``kinks._line_minimum``) before FISTA, which certifies most radii at once (3-5
    passes; FISTA's first stage and the early try took 10-15 iterations a radius).
    With the rule off, as before, no try searches and the path counts at least 1.6x
    the iterations; the objectives agree with each other and with cold solves."""
    from fgsm_cvx.fast import active_set, kinks, solver

    # (the regular solver's warm radii: the path's active-set method is switched off)
    monkeypatch.setattr(active_set, "pays", lambda prob: False)
    rng = np.random.default_rng(0)  # (benchmarks/bench_path.py's data)
    X = rng.standard_normal((2000, 20))
    y = X @ (rng.standard_normal(20) * (rng.random(20) < 0.3) / np.sqrt(20) * 3) \
        + rng.standard_normal(2000)
    tries, original = [], kinks.pinned_newton

    def recorded(*args, search=False, **kwargs):
        out = original(*args, search=search, **kwargs)
        tries.append((search, out[4]))
        return out

    monkeypatch.setattr(kinks, "pinned_newton", recorded)
    paths = {}
    for rule in ("pinned first", "fista first"):
        if rule == "fista first":
            monkeypatch.setattr(solver, "PINNED_FIRST_SHARE", 0.0)
        tries.clear()
        prob = fc.AdversarialProblem(X, y, family="gaussian")
        paths[rule] = fc.adversarial_path(prob, n_eps=50, backend="fast", verbose=False)
        searched = [ok for search, ok in tries if search]
        if rule == "pinned first":
            assert len(searched) >= 40 and np.mean(searched) >= 0.8, searched
        else:
            assert not searched
    iterations = {rule: sum(r.n_iter for r in path.results) for rule, path in paths.items()}
    assert 1.6 * iterations["pinned first"] <= iterations["fista first"], iterations
    # (each solve is within tol = 1e-8 of its objective's scale, 1 + |F| at its start)
    first, other = paths["pinned first"].objectives, paths["fista first"].objectives
    assert np.all(np.abs(first - other) <= 2e-8 * (1.0 + np.abs(other))), first - other
    path = paths["pinned first"]
    for e, res in list(zip(path.eps, path.results, strict=True))[5::15]:
        cold = fc.solve(fc.AdversarialProblem(X, y, family="gaussian", eps=e), backend="fast")
        assert abs(res.objective - cold.objective) <= 2e-8 * (1.0 + abs(cold.objective))
