"""The gaussian eps path's active-set method (fast/active_set.py).

Checked against independent computations: the exact line search against a fine grid
of the numpy objective along the segment, the QR factors kept by updates against a
fresh factorisation, every followed radius against the better of Clarabel and ECOS on
the whole problem, and the certificate against points that are not optimal."""

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_regression
from test_fast import _best_reference

import fgsm_cvx as fc
from fgsm_cvx.fast import active_set
from fgsm_cvx.problem import robust_objective

SETS = {
    "linf": lambda d: fc.Linf(),
    "weighted": lambda d: fc.WeightedLinf(np.linspace(0.5, 2.0, d)),
    "masked": lambda d: fc.Masked("linf", np.arange(d) % 3 != 0),  # (free coordinates)
    "group": lambda d: fc.Group(np.arange(d) // 3, p=np.inf),
}


def _regression(n, d, seed=0, noise=5.0, **kw):
    X, y = make_regression(n, d, n_informative=max(d // 2, 1), noise=noise,
                           random_state=seed)
    return fc.AdversarialProblem(X, y, family="gaussian", **kw)


def test_covers_the_gaussian_loss_with_a_weighted_l1_shift_only():
    X = np.random.default_rng(0).standard_normal((40, 4))
    y = X[:, 0]
    for set_id in SETS:
        prob = fc.AdversarialProblem(X, y, perturbation=SETS[set_id](4))
        assert active_set.covers(prob), set_id
    for kw in ({"perturbation": fc.L2()}, {"perturbation": fc.L1()},
               {"family": "huber"}, {"alpha": 1.0},
               {"perturbation": fc.Box(-0.5, 1.0)}):
        assert not active_set.covers(fc.AdversarialProblem(X, y, **kw)), kw
    assert not active_set.covers(fc.AdversarialProblem(X.astype(np.float32), y))
    assert active_set.covers(fc.AdversarialProblem(sp.csr_matrix(X), y))


@pytest.mark.parametrize("seed", range(6))
def test_line_search_finds_the_minimum_along_the_segment(seed):
    """F(z + tau p) on [0, 1] (the numpy objective) has no point below the line
    search's tau; its breakpoints before tau are where residuals or coefficients
    changed sign."""
    rng = np.random.default_rng(seed)
    n, d = 60, 5
    X = rng.standard_normal((n, d))
    y = X @ rng.standard_normal(d) + rng.standard_normal(n)
    w = rng.uniform(0.5, 2.0, n)
    w /= w.sum()
    alpha, eps = rng.choice([0.0, 0.4]), 0.3
    a = rng.uniform(0.5, 1.5, d)
    prob = fc.AdversarialProblem(X, y, perturbation=fc.WeightedLinf(a), eps=eps,
                                 alpha=alpha, sample_weight=w, fit_intercept=False)
    beta, p = rng.standard_normal(d), 2.0 * rng.standard_normal(d)
    r, q = y - X @ beta, X @ p
    tau, kink, T, owner = active_set._line_search(r, q, prob.sample_weight, beta, p,
                                                  eps * a, 1.0 - alpha,
                                                  prob.sample_weight.sum(),
                                                  np.zeros(n, dtype=bool))
    grid = np.linspace(0.0, 1.0, 20001)
    values = [robust_objective(prob, beta + s * p) for s in grid]
    found = robust_objective(prob, beta + tau * p)
    assert found <= min(values) + 1e-12 * (1 + abs(found))
    assert np.all(T <= tau)
    for o, s in zip(owner, T, strict=True):  # (each breakpoint: a sign change there)
        v = r - s * q if o >= 0 else beta + s * p
        i = o if o >= 0 else -1 - o
        assert abs(v[i]) <= 1e-12 * (1 + np.abs(v).max())


def test_face_factors_follow_their_updates():
    """Pinning, releasing, entering and dropping keep Q R = X~[samples, cols]^T (as a
    fresh factorisation gives it) with Q orthogonal."""
    prob = _regression(50, 8, fit_intercept=True)
    data = active_set._data(prob)
    face = active_set._Face(data, np.array([0, 2, 5]), np.array([3, 7]))
    for op, arg in [("pin", 11), ("enter", 4), ("release", 7), ("drop", 2), ("pin", 20),
                    ("enter", 6), ("release", 3), ("drop", 0), ("pin", 1)]:
        getattr(face, op)(arg)
        B = data.rows(face.samples, face.cols)
        np.testing.assert_allclose(face.Q @ face.R, B.T, atol=1e-12)
        np.testing.assert_allclose(face.Q.T @ face.Q, np.eye(len(face.cols)), atol=1e-12)
    assert list(face.cols) == [8, 5, 4, 6] and list(face.samples) == [11, 20, 1]


@pytest.mark.parametrize("set_id", list(SETS))
@pytest.mark.parametrize("alpha, fit_intercept, weights", [
    (0.0, True, False), (0.5, False, True), (0.0, True, True)])
def test_follow_reaches_the_optimum_of_the_next_radius(set_id, alpha, fit_intercept,
                                                       weights):
    """From the solution at one radius, the next (eps / 1.3) is the optimum: within 1e-8
    of the better of Clarabel and ECOS, its coefficients those of a cold fast solve,
    and its certificate's residual at most the tolerance."""
    rng = np.random.default_rng(1)
    n, d = 150, 9
    w = rng.uniform(0.2, 3.0, n) if weights else None
    if weights:
        w[:5] = 0.0  # (zero-weight samples: no kink of their own)
    prob = _regression(n, d, seed=2, noise=3.0, perturbation=SETS[set_id](d), alpha=alpha,
                       fit_intercept=fit_intercept, sample_weight=w)
    top = fc.eps_max(prob)  # (infinite with free coordinates: the l-inf set's then)
    eps = 0.05 * (top if np.isfinite(top) else fc.eps_max(prob._with_perturbation(fc.Linf())))
    before = fc.solve(prob.with_params(eps=eps), backend="fast", tol=1e-10)
    res = active_set.follow(prob.with_params(eps=eps / 1.3), before)
    assert res is not None and res.solver == "active-set"
    ref = _best_reference(prob.with_params(eps=eps / 1.3))
    assert res.objective <= ref + 1e-8 * (1 + abs(ref))
    assert res.certificate.residual <= 1e-8
    cold = fc.solve(prob.with_params(eps=eps / 1.3), backend="fast", tol=1e-10)
    np.testing.assert_allclose(res.coef, cold.coef, atol=1e-5 * (1 + np.abs(cold.coef).max()))
    assert res.objective == pytest.approx(robust_objective(prob.with_params(eps=eps / 1.3),
                                                           res.coef, res.intercept))


def test_certificate_rejects_a_point_that_is_not_optimal(monkeypatch):
    """The certificate is recomputed from the returned point: moved off the optimum
    (the method's last step cut short), the residual exceeds the tolerance and no
    Result is returned."""
    prob = _regression(200, 10, seed=3, noise=2.0)
    eps = 0.1 * fc.eps_max(prob)
    before = fc.solve(prob.with_params(eps=eps), backend="fast", tol=1e-10)
    assert active_set.follow(prob.with_params(eps=eps / 1.2), before) is not None
    original = active_set._certified

    def moved(prob_, data, z, *args):
        z = z.copy()
        z[np.flatnonzero(z[:data.d])[0]] *= 1.0 + 1e-4
        return original(prob_, data, z, *args)

    monkeypatch.setattr(active_set, "_certified", moved)
    assert active_set.follow(prob.with_params(eps=eps / 1.2), before) is None


@pytest.mark.parametrize("sparse", [False, True])
def test_repeated_samples(sparse):
    """Samples repeated exactly: merged into one of their summed weight on dense X, the
    method follows every radius from the one before; on sparse X (not merged) two copies
    at their kink are dependent constraints, where it gives up and the path solves those
    radii as before. Either way at the optimum of Clarabel / ECOS."""
    prob = _regression(300, 30, seed=4)
    X = np.vstack([prob.X, prob.X[:100]])
    twice = fc.AdversarialProblem(sp.csr_matrix(X) if sparse else X,
                                  np.concatenate([prob.y, prob.y[:100]]))
    path = fc.adversarial_path(twice, n_eps=20, backend="fast", verbose=False)
    followed = [active_set.follow(twice.with_params(eps=path.eps[k]), path.results[k - 1])
                is not None for k in range(2, 20)]
    assert all(followed) if not sparse else not all(followed)
    for k in (4, 19):
        ref = _best_reference(twice.with_params(eps=path.eps[k]))
        assert path.objectives[k] <= ref + 1e-8 * (1 + abs(ref))


def test_follow_gives_up_where_its_iterations_run_out():
    prob = _regression(300, 30, seed=4)
    eps = fc.eps_grid(prob, 10)
    before = fc.solve(prob.with_params(eps=eps[5]), backend="fast")
    assert active_set.follow(prob.with_params(eps=eps[6]), before, max_iter=1) is None
    assert active_set.follow(prob.with_params(eps=eps[6]), before) is not None


@pytest.mark.parametrize("sparse", [False, True])
def test_saturated_path_is_followed_and_exact(sparse):
    """make_regression (high signal-to-noise: about one sample at its kink per
    unknown on most radii, where the smoothed solves need the reduced conic program):
    the radii after a saturated solution are answered by the active-set method, and
    every radius is at the optimum of cold solves and of Clarabel / ECOS at three
    radii, dense or sparse X alike."""
    prob = _regression(400, 40, seed=5)
    if sparse:
        prob = fc.AdversarialProblem(sp.csr_matrix(prob.X), prob.y)
    path = fc.adversarial_path(prob, n_eps=20, backend="fast", verbose=False)
    followed = [r.solver == "active-set" for r in path.results]
    assert sum(followed) >= 10, followed
    for k in range(1, 20):  # (a saturated solution's next radius is followed)
        if active_set.follows(prob, path.results[k - 1]):
            assert followed[k], k
    cold = [fc.solve(prob.with_params(eps=e), backend="fast").objective for e in path.eps]
    np.testing.assert_allclose(path.objectives, cold, rtol=1e-8)
    for k in (3, 10, 19):
        ref = _best_reference(prob.with_params(eps=path.eps[k]))
        assert path.objectives[k] <= ref + 1e-8 * (1 + abs(ref))


def test_follows_saturated_solutions_and_cheap_radii():
    """The rule: a solution with at least FOLLOW_SHARE samples at their kinks per
    unknown (counted here independently), or one the method reached cheaply."""
    prob = _regression(400, 40, seed=5)
    grid = fc.eps_grid(prob, 20)
    shares, rules = [], []
    for e in grid[1:]:
        res = fc.solve(prob.with_params(eps=e), backend="fast", tol=1e-10)
        r = prob.y - prob.X @ res.coef - res.intercept
        at = np.count_nonzero(np.abs(r) <= 1e-6 * (1 + np.abs(prob.y).max()))
        shares.append(at / (np.count_nonzero(res.coef) + 1))
        rules.append(active_set.follows(prob, res))
    shares = np.array(shares)
    assert (shares >= 0.5).any() and (shares < 0.5).any()
    assert rules == list(shares >= active_set.FOLLOW_SHARE)
    cheap = dataclasses.replace(res, solver="active-set", n_iter=5)
    assert active_set.follows(prob, cheap)
    assert active_set.follows(prob, dataclasses.replace(cheap, n_iter=100)) == rules[-1]


def test_large_n_paths_keep_the_regular_solver(monkeypatch):
    """Beyond SAMPLES_PER_UNKNOWN samples per unknown (and after FAILURES failures in a
    row) the path's radii are solved as before."""
    prob = _regression(400, 5, seed=6)
    monkeypatch.setattr(active_set, "SAMPLES_PER_UNKNOWN", 50)
    path = fc.adversarial_path(prob, n_eps=8, backend="fast", verbose=False)
    assert "active-set" not in {r.solver for r in path.results}
    calls = []
    monkeypatch.setattr(active_set, "SAMPLES_PER_UNKNOWN", 200)
    monkeypatch.setattr(active_set, "follows", lambda prob, last: True)
    monkeypatch.setattr(active_set, "follow", lambda *a, **k: calls.append(1))
    path = fc.adversarial_path(prob, n_eps=8, backend="fast", verbose=False)
    assert len(calls) == active_set.FAILURES
    assert "active-set" not in {r.solver for r in path.results}


def test_random_problems_agree_with_the_conic_solvers():
    """40 random problems (shapes, column scales, sets, alpha, weights with zeros,
    intercept): the step from a solution at one radius to a radius 1.1-3x smaller, where
    the method certifies it (at least 3 in 4), is at the better of Clarabel's and ECOS's
    optimum."""
    certified = 0
    for seed in range(40):
        rng = np.random.default_rng(100 + seed)
        n, d = int(rng.integers(15, 120)), int(rng.integers(1, 12))
        X = rng.standard_normal((n, d)) * 10.0 ** rng.uniform(-2, 2, d)
        y = X @ (rng.standard_normal(d) / np.abs(X).mean(axis=0)) \
            + 10.0 ** rng.uniform(-2, 0.5) * rng.standard_normal(n)
        w = rng.uniform(0.0, 2.0, n) if rng.random() < 0.5 else None
        prob = fc.AdversarialProblem(X, y, perturbation=SETS[rng.choice(list(SETS))](d),
                                     alpha=float(rng.choice([0.0, 0.3, 0.8])),
                                     fit_intercept=bool(rng.random() < 0.7),
                                     sample_weight=w)
        top = fc.eps_max(prob)
        top = top if np.isfinite(top) else fc.eps_max(prob._with_perturbation(fc.Linf()))
        eps = top * 10.0 ** rng.uniform(-2.5, -0.2)
        before = fc.solve(prob.with_params(eps=eps), backend="fast")
        after = prob.with_params(eps=eps / rng.uniform(1.1, 3.0))
        res = active_set.follow(after, before)
        if res is None:
            continue
        certified += 1
        ref = _best_reference(after)
        assert res.objective <= ref + 1e-8 * (1 + abs(ref)), seed
    assert certified >= 30, certified


def test_certificate_residual_is_invariant_to_column_scales(monkeypatch):
    """The residual is per standardised column: a column multiplied by 1e3 (its set's
    weight too, the same problem in other units) and a point moved off the optimum by
    the same relative amount give the same residual (a residual in the columns' own
    units would differ by 1e6 on that column)."""
    X, y = make_regression(200, 6, n_informative=6, noise=2.0, random_state=7)
    c = np.ones(6)
    c[2] = 1e3
    probs = [fc.AdversarialProblem(X, y, perturbation=fc.WeightedLinf(np.ones(6))),
             fc.AdversarialProblem(X * c, y, perturbation=fc.WeightedLinf(c))]
    original = active_set._certified

    def moved(prob_, data, z, *args):
        z = z.copy()
        z[2] *= 1.0 + 1e-3
        return original(prob_, data, z, *args[:-3], np.inf, *args[-2:])  # (no tol)

    monkeypatch.setattr(active_set, "_certified", moved)
    residuals = []
    for prob in probs:
        eps = 0.02 * fc.eps_max(probs[0])
        before = fc.solve(prob.with_params(eps=eps), backend="fast", tol=1e-10)
        res = active_set.follow(prob.with_params(eps=eps / 1.2), before)
        residuals.append(res.certificate.residual)
    assert residuals[0] > 1e-6
    assert residuals[1] == pytest.approx(residuals[0], rel=1e-4)
