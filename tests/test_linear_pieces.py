"""The symmetric losses' exact finish (fast/linear_pieces.py): a reduced conic program
with the far samples' terms replaced by their linear pieces, certified by its dual bound.

Checked against an independent computation: the minorant against the numpy objective at
random points, the certified solves against the better of Clarabel and ECOS on the whole
problem (nearly least absolute deviations: Huber with its threshold far below the
residuals, where the fast path stopped 1e-6 to 4e-2 above the optimum before)."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_diabetes
from test_fast import _best_reference

import fgsm_cvx as fc
import fgsm_cvx.fast.kinks as kinks
import fgsm_cvx.fast.linear_pieces as lp
import fgsm_cvx.fast.working_set as ws
from fgsm_cvx.fast import conic
from fgsm_cvx.fast.model import Model, fast_scaling
from fgsm_cvx.fast.solver import shift_set
from fgsm_cvx.fast.working_set import near_set

SETS = {
    "linf": lambda d: fc.Linf(),
    "l2": lambda d: fc.L2(),
    "l1": lambda d: fc.L1(),
    "group": lambda d: fc.Group(np.arange(d) // 3),
    "lp3": lambda d: fc.Lp(3.0),
    "masked": lambda d: fc.Masked("linf", np.arange(d) % 3 != 0),
    # (two shifts at alpha > 0; at alpha = 0 the fast path solves it as weighted l-inf)
    "box": lambda d: fc.Box(-0.5, np.linspace(0.5, 1.5, d)),
}


def _nearly_lad(set_id, seed=0, n=200, d=8, alpha=0.0, fit_intercept=True, weights=False,
                fraction=0.05, threshold=1.345):
    """Heavy-tailed responses on a scale of 1e4 with Huber's default threshold: nearly
    least absolute deviations."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = 1e4 * (X[:, :3].sum(axis=1) + rng.standard_t(2, n))
    w = rng.uniform(0.1, 3.0, n) if weights else None
    prob = fc.AdversarialProblem(X, y, family=fc.Huber(threshold), alpha=alpha,
                                 perturbation=SETS[set_id](d), fit_intercept=fit_intercept,
                                 sample_weight=w)
    top = fc.eps_max(prob)
    return prob.with_params(eps=fraction * (top if np.isfinite(top) else 1.0))


def _diabetes_subset(k=296, scale=1e4, threshold=0.01):
    """Standardised diabetes rows (the first k), y x ``scale``, Huber(``threshold``),
    l1 set, no intercept, at 1e-3 eps_max: the first reduced program is unbounded
    below (its split is off), and the pinned step's residual test had certified a
    point 2e-3 above the optimum."""
    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    prob = fc.AdversarialProblem(X[:k], scale * y[:k], family=fc.Huber(threshold),
                                 perturbation=fc.L1(), fit_intercept=False)
    return prob.with_params(eps=1e-3 * fc.eps_max(prob))


def _check(prob, res, rel=1e-8):
    """The fast objective within ``rel`` of the better interior-point solution, and the
    certificate's dual bound (where the program certified) below it."""
    ref = _best_reference(prob)
    assert res.objective <= ref + rel * abs(ref), (res.objective, ref)
    cert = res.certificate
    if cert.dual_objective is not None:
        assert cert.dual_objective <= ref + 1e-8 * (1.0 + abs(ref))
        assert cert.gap <= 1e-7 * (1.0 + abs(res.objective))
    return ref


@pytest.mark.parametrize("set_id", list(SETS))
@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_nearly_lad_huber_reaches_the_optimum(set_id, alpha):
    """Within 1e-8 of the interior-point optimum (before the program: 7 of these 12
    ended 1e-8 to 1.3e-6 above it, after 270-2100 iterations; now 50-300)."""
    prob = _nearly_lad(set_id, seed=len(set_id), alpha=alpha, weights=alpha > 0)
    _check(prob, fc.solve(prob, backend="fast"))


def test_program_certifies_where_the_pinned_step_does_not(monkeypatch):
    """On the diabetes subset the solve ends by the program, certified by its dual bound,
    after a first program that was unbounded below (its near set then grows)."""
    statuses = []
    original = conic.clarabel_solve

    def recorded(*args, **kwargs):
        out = original(*args, **kwargs)
        statuses.append(out.status)
        return out

    monkeypatch.setattr(conic, "clarabel_solve", recorded)
    prob = _diabetes_subset()
    res = fc.solve(prob, backend="fast")
    assert "unbounded" in statuses and statuses[-1] == "optimal"
    assert res.certificate.dual_objective is not None
    _check(prob, res)


def _nearly_collinear(rng, n, d):
    """(X, y): n x d standard normal columns, the first half replaced by one column plus
    noise of 1e-7 to 1e-3 each (nearly equal), y a sparse linear fit plus unit noise."""
    X = rng.standard_normal((n, d))
    base = rng.standard_normal(n)
    for j in range(d // 2):
        X[:, j] = base + 10.0 ** rng.uniform(-7, -3) * rng.standard_normal(n)
    eta = X @ (rng.standard_normal(d) * (rng.random(d) < 0.5))
    return X, eta / eta.std() + rng.standard_normal(n)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_untrusted_bound_does_not_certify_nearly_collinear_columns(seed):
    """Huber at eps = 0 (alpha = 0.5) on 100 x 30 columns, half of them nearly equal
    (differences of 1e-7 to 1e-3): the optimum has coefficients of ~1e5 along those
    differences, where the reduced program's interior-point bound carries a dual error
    of ~1e5 gap tolerances. Taken as it was, it certified points 10-14% above the
    optimum (``conic.solve_program`` now lowers an untrusted bound by its error). The
    reference is independent and well conditioned: the same fit on Q of X = QR (the same
    predictors, orthonormal columns) by the cvxpy backend; Clarabel on X itself stopped
    9-11% above it."""
    X, y = _nearly_collinear(np.random.default_rng(seed), 100, 30)
    make = lambda A: fc.AdversarialProblem(A, y, family="huber", alpha=0.5, eps=0.0)  # noqa: E731
    reference = fc.solve(make(np.linalg.qr(X)[0]), backend="cvxpy", solver="CLARABEL")
    res = fc.solve(make(X), backend="fast")
    assert res.objective <= reference.objective * (1 + 1e-6)
    bound = res.certificate.dual_objective
    assert bound is None or bound <= reference.objective * (1 + 1e-8)


@pytest.mark.parametrize("seed", [1, 3])
def test_a_declined_program_is_asked_again_within_a_long_stage(seed):
    """Gaussian, a masked box at alpha = 0.9 (two shifts: no pinned step), columns on six
    decades with Student-t rows, n = 192, d = 5: the program of all samples (the gaussian
    loss's) declined at 50 iterations, past its size cap, and FISTA never finished the
    stage whose end would have asked it again: the solve ran out of 4000 iterations. A
    declined step is now asked again within the stage (at 4x the work, its cap doubled)
    and certifies; Clarabel's objective on the whole problem is the reference."""
    rng = np.random.default_rng(seed)
    n, d = 192, 5
    X = rng.standard_t(2, (n, d)) * 10.0 ** rng.uniform(-3, 3, d)
    eta = X @ (rng.standard_normal(d) / np.sqrt(np.mean(X**2, 0)))
    y = eta / eta.std() + rng.standard_normal(n)
    pert = fc.Masked(fc.Box(-0.5, 1.0), np.array([True, True, False, True, False]))
    prob = fc.AdversarialProblem(sp.csr_matrix(X), y, family="gaussian", perturbation=pert,
                                 alpha=0.9, eps=0.01)
    res = fc.solve(prob, backend="fast", max_iter=4000)
    assert res.certificate.gap is not None  # the program's
    ref = fc.solve(prob, backend="cvxpy", solver="CLARABEL", tol=1e-10)
    assert res.objective <= ref.objective * (1 + 1e-7)
    assert res.certificate.dual_objective <= ref.objective * (1 + 1e-8)


def test_fista_goes_on_from_an_uncertified_program_point():
    """Huber on 250 x 80 columns, half of them nearly equal (differences of 1e-7 to
    1e-3), a masked box, eps = 1e-4, no intercept: the program of the whole problem has
    an untrusted bound (a dual error of ~5e4 gap tolerances: no certificate), and FISTA
    from its own point ran out of 3000 iterations. It now goes on from the program's
    point, whose objective is lower, and converges there (58 iterations). One-sided
    reference: no worse than the better of Clarabel and ECOS on the whole problem (both
    stop a few % above it on such columns)."""
    rng = np.random.default_rng(3)
    d = 80
    X, y = _nearly_collinear(rng, 250, d)
    pert = fc.Masked(fc.Box(-0.5, 1.0), rng.random(d) < 0.6)
    prob = fc.AdversarialProblem(X, y, family="huber", perturbation=pert, eps=1e-4,
                                 fit_intercept=False)
    res = fc.solve(prob, backend="fast", max_iter=3000)
    assert res.objective <= _best_reference(prob) * (1 + 1e-6)


def test_without_the_program_the_solve_does_not_finish(monkeypatch):
    """The failure the program mends: without it the pinned step does not certify this
    problem's solve (its residual bound; ``kinks._bounded``), and its flat objective
    fools the continuation's test: the solve stopped well above the optimum (1e-5
    relative and more) until Newton's decrement tested such stops; now it runs out of
    iterations in the flat valley, an error that names the cvxpy backend."""
    certified = []
    original = kinks.pinned_newton

    def recorded(*args, **kwargs):
        out = original(*args, **kwargs)
        certified.append(out[4])
        return out

    monkeypatch.setattr(lp, "covers", lambda *args: False)
    monkeypatch.setattr(kinks, "pinned_newton", recorded)
    prob = _diabetes_subset()
    with pytest.raises(fc.SolverError, match="flat valley.*backend='cvxpy'"):
        fc.solve(prob, backend="fast", max_iter=3000)
    assert certified and not any(certified)


def test_bounded_residual_needs_curvature_or_a_small_step():
    """``kinks._bounded``: a residual of 1e-6 bounds F - F* by r^2 / (2 m) with curvature,
    by r (1 + ||x||) without it (a linear objective), and a KKT step whose model
    decrease exceeds the tolerance fails."""
    r, zero = 1e-6, np.zeros(3)
    beta = np.full(3, 100.0)
    assert kinks._bounded(r, np.eye(3), zero, zero, beta, 0.0, 1e-8)  # 5e-13
    assert not kinks._bounded(r, np.zeros((3, 3)), zero, zero, beta, 0.0, 1e-8)  # 1.7e-4
    assert kinks._bounded(r, np.zeros((3, 3)), zero, zero, zero, 0.0, 1e-5)  # 1e-6
    step, grad = np.full(3, 1e-2), np.full(3, -1e-2)  # decrease 3e-4 - 1.5e-4
    assert not kinks._bounded(r, np.eye(3), step, grad, beta, 0.0, 1e-8)
    # the least curvature decides, about r^2 / (2 tol) = 5e-5: a rotated diagonal of
    # 6e-5 bounds the gap (4.2e-9), of 4e-5 not (1.25e-8)
    Q = np.linalg.qr(np.random.default_rng(0).standard_normal((3, 3)))[0]
    for least, ok in ((6e-5, True), (4e-5, False)):
        H = Q @ np.diag([1.0, 0.3, least]) @ Q.T
        assert kinks._bounded(r, H, zero, zero, beta, 0.0, 1e-8) is ok, least


@pytest.mark.parametrize("family", ["huber", "gaussian"])
@pytest.mark.parametrize("alpha", [0.0, 0.4])
@pytest.mark.parametrize("set_id", ["l2", "box"])
def test_program_is_a_minorant_equal_at_its_split(family, alpha, set_id):
    """G <= F at random points (the numpy objective of the scaled problem), G = F at the
    point whose split it was built from; a box's two shifts included. The gaussian far
    samples enter as one quadratic (``linear_pieces._far_quadratic``): its near set is
    not every sample either."""
    prob = _nearly_lad(set_id, seed=3, n=120, d=5, alpha=alpha, weights=True)
    if family == "gaussian":
        prob = fc.AdversarialProblem(prob.X, prob.y, family="gaussian", alpha=alpha,
                                     perturbation=prob.perturbation, eps=prob.eps,
                                     sample_weight=prob.sample_weight)
    ref = fc.solve(prob, backend="cvxpy", solver="CLARABEL", tol=1e-10)
    sc = fast_scaling(prob)
    model, eps = Model(prob, sc), prob.eps * sc.eps
    shift = shift_set(prob)
    rng = np.random.default_rng(0)
    beta0, b0 = sc.to_scaled(ref.coef * (1 + 0.01 * rng.standard_normal(5)), ref.intercept)
    t0 = eps * shift.value(beta0)
    Xb0 = model.engine.matvec(beta0 * model.scale)
    r = model.y_host - (model.engine.fetch(Xb0)[0] + b0)
    d = prob.n_features
    near = near_set(lp._distance(model, r, t0), model.w_host, 1e-3, d + 2, d)
    assert near is not None and not near.all() and lp.quadratic_far(model) == (
        family == "gaussian")
    side = np.sign(r - lp._interval(t0, model.offset)[0])
    u = np.where(near, 0.0, model.w_host * getattr(model.family, "threshold", 0.0) * side)
    idx = np.flatnonzero(near)
    kappa = 0.3  # (any unit: the program's value times kappa is G)
    P, q, A, rhs, cones, const, sigma = lp._program(
        np.asarray(model.rows(idx)), model.y_host[idx], model.w_host[idx], model.family,
        model.alpha, lp._far_part(model, u, near, ws.linear_coefficient(model, u),
                                  box=np.ndim(t0) > 0),
        conic.support_template(prob.perturbation, d), eps, model.offset, True, None, kappa,
        quad=lp._far_quadratic(model, near, side, np.ndim(t0) > 0)
        if family == "gaussian" else None)
    P_full = P + sp.triu(P, k=1).T  # (Clarabel takes P's upper triangle)

    def both(beta, b):  # (G, F) at (beta, b) with t = eps sigma_S(beta)
        t = eps * shift.value(beta)
        b_c = b + float(model.centre @ beta)  # b = b_c - s c^T beta
        # G there: the program with (beta~, b~, t~) pinned by equality rows, minimised over
        # its auxiliary columns (Huber's pieces, the support's)
        fixed = np.r_[beta, b_c, t] / sigma
        k = fixed.size
        pin = sp.hstack([sp.eye(k), sp.csc_matrix((k, A.shape[1] - k))])
        solved = conic.clarabel_solve(q, sp.vstack([pin, A]), np.r_[fixed, rhs],
                                      [conic.zero_cone(k), *cones], 1e-12, P=P)
        assert solved.status == "optimal"
        x = solved.x
        value = 0.5 * x @ (P_full @ x) + q @ x + const
        return kappa * value, model.evaluate(beta, b, t, 0.0)[1]

    # (G by Clarabel's primal value: within its relative gap tolerance, 1e-9, of G)
    g, f = both(beta0, b0)
    assert g == pytest.approx(f, rel=3e-9)
    for _ in range(20):
        scale = rng.choice([0.1, 1.0, 10.0])
        g, f = both(beta0 + scale * rng.standard_normal(5), b0 + scale * rng.standard_normal())
        assert g <= f + 3e-9 * abs(f)


@pytest.mark.parametrize("box", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_gaussian_far_quadratic_is_the_far_samples_terms(box, fit_intercept):
    """``linear_pieces._far_quadratic`` against the terms summed in numpy: at random
    (beta, b_c, t), z^T P z / 2 + q^T z + const equals
    sum_far w [alpha r^2 + (1 - alpha) (s (r - h) + u)^2] / 2 with (h, u) the shifts'
    centre and half-width (``_interval``; an LLA offset in u), sides s drawn at random,
    weights, shifted columns; and P is positive semidefinite."""
    rng = np.random.default_rng(5)
    n, d = 300, 7
    X = rng.standard_normal((n, d)) + 2.0
    y = X @ rng.standard_normal(d) + rng.standard_normal(n) + 3.0
    prob = fc.AdversarialProblem(X, y, family="gaussian", alpha=0.3, eps=0.1,
                                 perturbation=fc.Box(-0.5, 1.0) if box else "l2",
                                 fit_intercept=fit_intercept,
                                 sample_weight=rng.uniform(0.5, 2.0, n))
    model = Model(prob, fast_scaling(prob))
    model.offset = 0.37  # (a penalty's LLA offset: u = t + offset)
    assert lp.quadratic_far(model)
    near, s = rng.random(n) < 0.3, rng.choice([-1.0, 1.0], n)
    P, q, const = lp._far_quadratic(model, near, s, box)
    assert np.min(np.linalg.eigvalsh(P)) >= -1e-10 * np.max(np.abs(P))
    far, w, a = ~near, model.w_host, model.alpha
    rows = model.rows(np.arange(n))  # (centred where there is an intercept)
    for _ in range(5):
        beta, b_c = rng.standard_normal(d), rng.standard_normal()
        t = rng.uniform(0.0, 1.0, 2) if box else rng.uniform(0.0, 1.0)
        r = model.y_host - rows @ beta - b_c
        h, u = lp._interval(t, model.offset)
        want = 0.5 * np.sum(w[far] * (a * r[far] ** 2
                                      + (1 - a) * (s[far] * (r[far] - h) + u) ** 2))
        z = np.r_[beta, b_c, t]
        assert 0.5 * z @ P @ z + q @ z + const == pytest.approx(want, rel=1e-12)


def test_gaussian_program_holds_the_near_samples_only(monkeypatch):
    """On make_regression's high signal-to-noise data (600 x 30, noise 5) the solutions
    of the middle radii are saturated (about as many samples at their kinks as unknowns)
    and the reduced program certifies them: it holds the samples near their kinks (64
    of 600) and the others' quadratic, not the whole problem, and the solves equal
    Clarabel's. (With every sample near, a program of 2000 x 200 took 3-4 s a radius;
    with the near samples 0.6 s.)"""
    from sklearn.datasets import make_regression

    sizes, near_set = [], lp.near_set

    def counted(*args, **kwargs):
        out = near_set(*args, **kwargs)
        sizes.append(None if out is None else int(np.count_nonzero(out)))
        return out

    monkeypatch.setattr(lp, "near_set", counted)
    X, y = make_regression(600, 30, n_informative=15, noise=5.0, random_state=0)
    prob = fc.AdversarialProblem(X, y, family="gaussian", perturbation="l2")
    grid = fc.eps_grid(prob, 12)
    for eps in grid[2:5]:
        res = fc.solve(prob.with_params(eps=eps), backend="fast")
        ref = fc.solve(prob.with_params(eps=eps), backend="cvxpy", solver="CLARABEL",
                       tol=1e-10)
        assert res.objective == pytest.approx(ref.objective, rel=1e-8)
    assert sizes and max(m for m in sizes if m is not None) < 600 // 4, sizes


def test_path_starts_each_radius_with_the_program():
    """An eps path of nearly-LAD Huber (standardised diabetes, y x 100): every radius is
    certified by the program, at cvxpy's optimum; once the program has certified a
    radius the next starts with it from the predicted point (a few iterations), where a
    cold solve waits for the pinned step's two failures (~127 each). Counts, not times."""
    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    prob = fc.AdversarialProblem(X, 100 * y, family="huber")
    path = fc.adversarial_path(prob, n_eps=10, backend="fast", verbose=False)
    for e, res in zip(path.eps[1:], path.results[1:], strict=True):
        assert res.certificate.dual_objective is not None
        _check(fc.AdversarialProblem(X, 100 * y, family="huber", eps=e), res)
    cold = [fc.solve(fc.AdversarialProblem(X, 100 * y, family="huber", eps=e),
                     backend="fast").n_iter for e in path.eps[1:]]
    assert sum(r.n_iter for r in path.results[2:]) * 4 <= sum(cold[1:])


def test_a_failed_program_at_the_predicted_point_does_not_widen_the_next(monkeypatch):
    """Along a path whose radii the program certifies, each radius offers its predicted
    point to the program first; where that program fails (its split is the
    prediction's: on make_regression 2000 x 200, Huber, radii whose solution moves
    fast), the next try's near set is not doubled, as a failure after FISTA's work
    doubles it: counted so, the next try came a few iterations later with twice the near
    samples, 1-1.4 s a program where the cold solve's took 0.35 s (the path 45 -> 28 s).
    Here every start try is made to fail; each radius's next try keeps the near set,
    and every radius is certified at the interior-point optimum."""
    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    prob = fc.AdversarialProblem(X, 100 * y, family="huber")
    tries, original = [], lp.symmetric_exact

    def failing_at_start(*args, work, widen, **kwargs):
        tries.append((work, widen))
        if work == 0.0:  # (the predicted point's try: no FISTA work yet)
            return (args[5], np.inf, np.inf, 1, False), None
        return original(*args, work=work, widen=widen, **kwargs)

    monkeypatch.setattr(lp, "symmetric_exact", failing_at_start)
    path = fc.adversarial_path(prob, n_eps=8, backend="fast", verbose=False)
    after = [b for a, b in zip(tries, tries[1:], strict=False) if a[0] == 0.0]
    assert after and all(widen == 1 for _, widen in after), tries
    for e, res in zip(path.eps[1:], path.results[1:], strict=True):
        assert res.certificate.dual_objective is not None
        _check(prob.with_params(eps=e), res)


def test_path_returns_to_the_pinned_step_after_a_saturated_stretch():
    """Huber on high signal-to-noise data (make_regression, 1000 x 20, noise 5): the
    program certifies a long stretch of radii, whose solutions are saturated (as many
    samples at their kinks as unknowns); at the smallest radii fewer samples sit at kinks
    and the pinned step certifies each radius in a few iterations. With the program first
    on every radius after the first it certified, it went on certifying those too (an
    interior-point solve each, where the pinned step is cheaper). Each radius checked
    against the interior-point optimum; counts, not times."""
    from sklearn.datasets import make_regression

    X, y = make_regression(1000, 20, n_informative=10, noise=5.0, random_state=0)
    prob = fc.AdversarialProblem(X, y, family="huber")
    path = fc.adversarial_path(prob, n_eps=20, backend="fast", verbose=False)
    by_program = [r.certificate.dual_objective is not None for r in path.results]
    assert any(by_program)  # (the stretch: where the pinned step fails)
    after = path.results[max(np.flatnonzero(by_program)) + 1:]
    assert len(after) >= 4 and max(r.n_iter for r in after) <= 15, by_program
    for e, res in list(zip(path.eps, path.results, strict=True))[1::3]:
        _check(prob.with_params(eps=e), res)


def test_gaussian_pinned_step_pivots_to_a_saturated_solution():
    """Least squares on high signal-to-noise data at a radius whose solution is
    saturated (11 samples at their kinks for 11 unknowns): the pinned step's full KKT
    steps crossed many kinks and its tries failed, and the whole problem's program
    certified after 355 iterations. Stopping each step at its first kink (the pivots,
    ``kinks._first_kink``), the pinned step certifies it (82-201 iterations: which of its
    tries does turns on rounding, its active set cycling near the vertex), at the
    interior-point optimum."""
    from sklearn.datasets import make_regression

    X, y = make_regression(1000, 20, n_informative=10, noise=5.0, random_state=0)
    prob = fc.AdversarialProblem(X, y, family="gaussian")
    prob = prob.with_params(eps=fc.eps_grid(prob, 20)[3])
    res = fc.solve(prob, backend="fast")
    assert res.certificate.dual_objective is None  # (no program: the pinned step)
    # saturated: the interior-point solution's samples at their kinks (to 3e-11 of
    # max |y|, the next at 2e-6) number the unknowns, 10 coefficients and the intercept
    # (the pinned step's own certified point may leave its constrained samples within
    # the objective's tolerance of their kinks, not at them)
    ref = fc.solve(prob, backend="cvxpy", solver="CLARABEL", tol=1e-10)
    at_kink = np.abs(y - prob.linear_predictor(ref.coef, ref.intercept)) <= 1e-9 * np.abs(y).max()
    assert np.count_nonzero(at_kink) >= np.count_nonzero(res.coef) + 1
    # (tol = 1e-8 is relative to the objective's scale at the cold start, the null
    # model's, 3-7 times F* here: 1e-7 of F*)
    _check(prob, res, rel=1e-7)


@pytest.mark.parametrize("n, d", [(600, 150), (200, 10)])
def test_gaussian_program_waits_for_the_work_it_costs(n, d, monkeypatch):
    """The gaussian program is an interior-point solve of the near samples and the far
    ones' quadratic (a dense d x d block, which costs little beside the rows: 1.9 s at
    n = 1000, d = 250 for the whole problem, where FISTA and the pinned step took 0.6 s).
    With the pinned
    step failing every try, the program runs only once the solve's work pays for it
    (``linear_pieces.program_pays``, with m the near samples counted here from the
    programs' rows): at d = 150 the first tries decline (about 0.4 s against 0.3 ms an
    iteration), at d = 10 the first runs; both solves reach the optimum within the
    solve's tolerance."""
    monkeypatch.setattr(kinks, "pinned_newton",
                        lambda model, manifold, fit_intercept, eps, state, *a, **k:
                        (state, np.inf, np.inf, 1, False))
    tries, original, near = [], lp.symmetric_exact, []
    near_set = lp.near_set

    def recorded(*args, work, **kwargs):
        near.clear()
        out, lower = original(*args, work=work, **kwargs)
        tries.append((work, out[3] is not None, near[0]))
        return out, lower

    def counted(*args, **kwargs):
        out = near_set(*args, **kwargs)
        near.append(n if out is None else int(np.count_nonzero(out)))
        return out

    monkeypatch.setattr(lp, "symmetric_exact", recorded)
    monkeypatch.setattr(lp, "near_set", counted)
    rng = np.random.default_rng(3)
    X = rng.standard_normal((n, d))
    y = X @ (rng.standard_normal(d) * (rng.random(d) < 0.5)) + rng.standard_normal(n)
    prob = fc.AdversarialProblem(X, y, family="gaussian", perturbation=fc.L2(), eps=1.0)
    prob = prob.with_params(eps=0.1 * fc.eps_max(prob))
    res = fc.solve(prob, backend="fast")
    assert tries  # (asked after the pinned step's failures)
    # a program ran exactly where the model says it pays, for its m near samples (fewer
    # than n: the far samples are the quadratic)
    assert all(ran == lp.program_pays(m, n, d, work) for work, ran, m in tries), tries
    assert min(m for _, _, m in tries) < n, tries
    assert tries[0][1] == (d == 10), tries
    _check(prob, res, rel=1e-6)


def test_huber_program_of_most_samples_waits_for_the_work_it_costs(monkeypatch):
    """Huber's far samples shrink its program only where most residuals lie beyond the
    threshold (nearly LAD); with most within it (small noise) the program is nearly the
    whole problem, as the gaussian loss's, and past ``HUBER_PROGRAM_SECONDS`` of the
    cost model it waits as that one does for the work it costs
    (``linear_pieces.program_pays``, ``program_floor``): a Huber fit at n = 5000,
    d = 400 spent 9.8 s in such a program (modelled 21.6 s) where FISTA alone finished
    in 1.3 s. Here the floor is lowered to 0.1 s so that a problem of a test's size
    (n = 600, d = 150, the program modelled at ~0.4 s) is past it. With the pinned step
    failing every try, each try runs its program exactly where the cost model says it
    pays for its near samples (the first here does not: unbudgeted, it ran), and the
    solve reaches the optimum either way."""
    monkeypatch.setattr(lp, "HUBER_PROGRAM_SECONDS", 0.1)
    monkeypatch.setattr(kinks, "pinned_newton",
                        lambda model, manifold, fit_intercept, eps, state, *a, **k:
                        (state, np.inf, np.inf, 1, False))
    sizes, tries, original = [], [], lp.symmetric_exact
    pays_for = lp.program_pays_for

    def sized(model, m, work):
        sizes.append((m, lp.program_floor(model)))
        return pays_for(model, m, work)

    widths = []  # (widen, declined, certified) of each try

    def recorded(*args, work, **kwargs):
        sizes.clear()
        out, lower = original(*args, work=work, **kwargs)
        tries.append((work, *(sizes[0] if sizes else (None, None)), out[3] is not None))
        widths.append((kwargs["widen"], out[3] is None, out[4]))
        return out, lower

    monkeypatch.setattr(lp, "program_pays_for", sized)
    monkeypatch.setattr(lp, "symmetric_exact", recorded)
    n, d = 600, 150
    rng = np.random.default_rng(3)
    X = rng.standard_normal((n, d))
    y = X @ (rng.standard_normal(d) * (rng.random(d) < 0.5)) + 0.3 * rng.standard_normal(n)
    prob = fc.AdversarialProblem(X, y, family="huber", perturbation=fc.L2(), eps=1.0)
    prob = prob.with_params(eps=0.1 * fc.eps_max(prob))
    res = fc.solve(prob, backend="fast")
    assert tries  # (asked after the pinned step's failures)
    assert all(floor == 0.1 for _, _, floor, _ in tries), tries  # (Huber, dense rows)
    assert all(m is not None and ran == lp.program_pays(m, n, d, work, floor=0.1)
               for work, m, _, ran in tries), tries
    assert tries[0][1] > n // 2 and not tries[0][3], tries  # most samples near: declined
    # a declined try leaves the next one's near set as it was (widened, each costs more
    # and declines again: make_regression 2000 x 200, a Huber radius's last program
    # 8403 rows, 8.6 s, against 6867 rows unwidened); a failed one doubles it
    for (widen, declined, _), (after, _, _) in zip(widths, widths[1:], strict=False):
        assert after == widen * (1 if declined else 2), widths
    _check(prob, res, rel=1e-6)


def test_a_tries_grown_programs_wait_for_the_work_they_cost(monkeypatch):
    """A try's later programs (the samples left off their pieces joined to its near set,
    or the near set grown where the program was unbounded) are budgeted as its first
    (``linear_pieces.program_pays``): along a Huber path on make_regression 2000 x 200
    a predicted point's split was off by ~2400 samples, and programs of 4000 run at
    once took 2-8 s a radius (the path 69 -> 49 s). With Huber's floor lowered to 0.02 s,
    every program solved along a short path is one the cost model pays for at its try's
    work, some grown ones are declined, and every radius reaches the optimum."""
    from sklearn.datasets import make_regression

    monkeypatch.setattr(lp, "HUBER_PROGRAM_SECONDS", 0.02)
    programs, checks, work_now = [], [], []
    original, program, pays_for = lp.symmetric_exact, lp._program, lp.program_pays_for

    def budgeted(*args, work, **kwargs):
        work_now[:] = [work]
        return original(*args, work=work, **kwargs)

    def recorded(rows, *args, **kwargs):
        programs.append((rows.shape[0], work_now[0]))
        checks.append("program")
        return program(rows, *args, **kwargs)

    def asked(model, m, work):
        out = bool(pays_for(model, m, work))
        checks.append(out)
        return out

    monkeypatch.setattr(lp, "symmetric_exact", budgeted)
    monkeypatch.setattr(lp, "_program", recorded)
    monkeypatch.setattr(lp, "program_pays_for", asked)
    n, d = 400, 60
    X, y = make_regression(n, d, n_informative=d // 2, noise=2.0, random_state=0)
    prob = fc.AdversarialProblem(X, y, family="huber", perturbation=fc.L2())
    path = fc.adversarial_path(prob, n_eps=8, backend="fast", verbose=False)
    assert programs
    assert all(lp.program_pays(m, n, d, work, floor=0.02) for m, work in programs), \
        programs
    # (a refusal right after a program solved: a grown one declined)
    assert any(a == "program" and b is False for a, b in zip(checks, checks[1:],
                                                          strict=False)), checks
    for e, res in zip(path.eps, path.results, strict=True):
        _check(prob.with_params(eps=e), res, rel=1e-7)


def test_huber_program_floor_on_dense_and_sparse_rows():
    """``program_floor``: Huber's program on dense rows runs whatever the work up to
    HUBER_PROGRAM_SECONDS of the cost model (its early programs paid on small problems:
    n = 400, d = 150, ``L1``, 0.27 s with them, 0.60 s with the gaussian's floor);
    the gaussian loss's, and any on sparse rows, up to PROGRAM_MIN_SECONDS."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 5))
    y = X[:, 0] + rng.standard_normal(50)
    floors = {}
    for family in ("huber", "gaussian"):
        for name, data in (("dense", X), ("sparse", sp.csr_matrix(X * (X > 1.0)))):
            prob = fc.AdversarialProblem(data, y, family=family, eps=0.1)
            floors[family, name] = lp.program_floor(Model(prob, fast_scaling(prob)))
    assert floors == {("huber", "dense"): lp.HUBER_PROGRAM_SECONDS,
                      ("huber", "sparse"): lp.PROGRAM_MIN_SECONDS,
                      ("gaussian", "dense"): lp.PROGRAM_MIN_SECONDS,
                      ("gaussian", "sparse"): lp.PROGRAM_MIN_SECONDS}, floors
