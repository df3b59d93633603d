"""The hinge's exact finish (fast/working_set.py): a reduced conic program on the samples
near their kinks, certified by its dual bound, against cvxpy on the full problem."""

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import make_y, survey_draw
from test_fast import FAST_SETS

import fgsm_cvx as fc
import fgsm_cvx.fast.working_set as ws

# the fast path's sets of tests/test_fast.py (but its group_linf and masked_l2), a masked
# l-inf ball and the asymmetric boxes
SETS = {k: v for k, v in FAST_SETS.items() if k not in ("group_linf", "masked_l2")} | {
    "masked_linf": lambda d: fc.Masked("linf", np.arange(d) % 3 != 0),
    "box": lambda d: fc.Box(-0.5, np.linspace(0.5, 1.5, d)),
    "masked_box": lambda d: fc.Masked(fc.Box(-0.5, 1.0), np.arange(d) % 3 != 0),
}


def _problem(set_id, seed=0, n=800, d=6, alpha=0.0, fit_intercept=True, weights=False,
             fraction=0.3, X_format=None):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * rng.choice([0.5, 1.0, 2.0], d)
    y = make_y("hinge", X @ rng.standard_normal(d), rng)
    w = None
    if weights:
        w = rng.uniform(0.1, 2.0, n)
        w[rng.random(n) < 0.1] = 0.0  # weightless samples are no terms
    prob = fc.AdversarialProblem(X, y, family="hinge", perturbation=SETS[set_id](d),
                                 eps=0.0, alpha=alpha, fit_intercept=fit_intercept,
                                 sample_weight=w)
    top = fc.eps_max(prob)  # infinite where a feature is masked off the attack
    # (a new problem: with eps_max in its cache a solve at or beyond it would return the
    # null solution at once, ``solver._null_optimal``, and these tests are of the solve)
    prob = fc.AdversarialProblem(X, y, family="hinge", perturbation=SETS[set_id](d),
                                 eps=fraction * (top if np.isfinite(top) else 1.0),
                                 alpha=alpha, fit_intercept=fit_intercept, sample_weight=w)
    if X_format is None:
        return prob
    Xf = X.astype(np.float32) if X_format == "float32" else sp.csr_matrix(X)
    return fc.AdversarialProblem(Xf, y, family="hinge", perturbation=SETS[set_id](d),
                                 eps=prob.eps, alpha=alpha, fit_intercept=fit_intercept,
                                 sample_weight=w)


def _check_against_cvxpy(prob, res, rel=1e-7):
    """The reduced program certified the fast solution (its dual bound in the
    certificate), the bound is below the full problem's optimum from cvxpy, and the
    objectives agree."""
    ref = fc.solve(prob, backend="cvxpy", solver="CLARABEL", tol=1e-10)
    cert = res.certificate
    assert cert.gap is not None and cert.dual_objective is not None  # the reduced program
    assert cert.suboptimality_bound <= 1e-7 * (1 + abs(res.objective))
    # the dual bound of the minorant is a lower bound on F* (to Clarabel's tolerance)
    assert cert.dual_objective <= ref.objective + 1e-8 * (1 + abs(ref.objective))
    assert res.objective == pytest.approx(ref.objective, rel=rel, abs=1e-10)
    return ref


@pytest.mark.parametrize("set_id", list(SETS))
@pytest.mark.parametrize("alpha", [0.0, 0.4])
def test_reduced_program_certifies_the_cvxpy_optimum(set_id, alpha):
    for seed, (fit_intercept, weights) in enumerate([(True, False), (False, True)]):
        prob = _problem(set_id, seed=seed, alpha=alpha, fit_intercept=fit_intercept,
                        weights=weights)
        _check_against_cvxpy(prob, fc.solve(prob, backend="fast"))


@pytest.mark.parametrize("fraction", [0.0, 1.5])
def test_reduced_program_at_eps_zero_and_beyond_eps_max(fraction):
    prob = _problem("l2", fraction=0.0) if fraction == 0.0 else \
        _problem("linf", fraction=fraction)
    res = fc.solve(prob, backend="fast")
    _check_against_cvxpy(prob, res)
    if fraction > 1:
        assert np.all(res.coef == 0.0)


@pytest.mark.parametrize("set_id", ["l2", "linf"])
def test_few_samples_per_feature_take_the_program_of_all_samples(set_id):
    """n = 200, d = 40: fewer samples than the near set's minimum (2 per unknown) beside
    a quarter of n, so the program holds every sample (the whole problem, small); FISTA
    alone needed thousands of iterations on such problems or ran out of them."""
    prob = _problem(set_id, n=200, d=40)
    res = fc.solve(prob, backend="fast")
    _check_against_cvxpy(prob, res)
    assert res.n_iter <= 2 * ws.FIRST_TRY  # the first try certified


@pytest.mark.parametrize("X_format", ["csr", "float32"])
def test_reduced_program_on_sparse_and_float32_data(X_format):
    prob = _problem("linf", X_format=X_format)
    res = fc.solve(prob, backend="fast")
    dense = _problem("linf")
    if X_format == "float32":  # the reference on the data the solver saw
        dense = fc.AdversarialProblem(dense.X.astype(np.float32).astype(np.float64), dense.y,
                                      family="hinge", perturbation=fc.Linf(), eps=dense.eps)
    _check_against_cvxpy(dense, res)


def test_a_flat_valley_near_eps_max_is_certified_by_the_last_try():
    """At 0.999 eps_max the objective barely falls along the ray of the solution: FISTA's
    continuation stopped with coefficients 1/9 of the optimal ones, 1.05e-4 above the
    optimum (a randomized survey's draw: n = 1399, d = 6, features of scale 0.1,
    Group(p = inf), the first column 20 times the others' scale and off centre), and
    each try of the reduced program found more samples moved than half its near set. The
    last try grows its program without that limit and certifies the optimum that
    Clarabel finds on the full problem."""
    X, y, scale, rng = survey_draw("hinge", 1082169959)
    n, d = X.shape
    assert (n, d, scale) == (1399, 6, 0.1)  # the draw this test is about
    prob = fc.AdversarialProblem(X, y, family="hinge", perturbation=FAST_SETS["group_linf"](d))
    prob = prob.with_params(eps=0.999 * fc.eps_max(prob))
    ref = _check_against_cvxpy(prob, fc.solve(prob, backend="fast"))
    assert np.abs(ref.coef).max() > 3.0  # (the point FISTA stopped at had 0.42)


def test_a_small_objective_is_certified_in_its_own_units():
    """A hinge with an ellipsoid at 0.95 eps_max (alpha = 0.7, sample weights, features
    of scale 0.1; a randomized survey's draw): F* = 2e-3 of the null objective, and in
    the program's default units Clarabel stopped "almost solved" or with bounds 1.4e-7
    relative above the optimum, beyond the 1e-7 asked, so no try certified and FISTA ran
    out of its 20 000 iterations. Solved in units of F (``ws.SMALL_F``) the tries settle
    and certify Clarabel's optimum of the full problem."""
    X, y, scale, rng = survey_draw("hinge", 1544983930)
    n, d = X.shape
    w = rng.uniform(0.1, 2.0, n) if rng.random() < 0.5 else None
    alpha = float(rng.choice([0.0, 0.0, 0.3, 0.7]))
    assert (n, d, scale, w is not None, alpha) == (1220, 11, 0.1, True, 0.7)  # the draw
    prob = fc.AdversarialProblem(X, y, family="hinge", perturbation=FAST_SETS["ellipsoid"](d),
                                 alpha=alpha, sample_weight=w)
    prob = prob.with_params(eps=0.95 * fc.eps_max(prob))
    res = fc.solve(prob, backend="fast")
    _check_against_cvxpy(prob, res)
    assert res.objective < ws.SMALL_F  # (the case this test is about)


def test_a_zero_objective_is_certified_by_the_loss_bound():
    """Classes that the attack leaves separated with a margin (a survey's draw: n = 235,
    d = 5, features of scale 10, a masked ellipsoid at eps = 0.95): the reduced
    program's point has F = 0, Clarabel's bound lay 1.6e-7 above it (its dual error
    1e-6), so no try certified and FISTA ran out of its iterations. Every hinge term is
    >= 0: F = 0 is optimal, certified by that bound, as Clarabel on the full problem
    agrees."""
    X, y, scale, rng = survey_draw("hinge", 400002268)
    n, d = X.shape
    assert (n, d, scale) == (235, 5, 10.0)  # the draw this test is about
    mask = np.arange(d) % 2 == 0
    pert = fc.Masked(fc.Ellipsoid(1.5 * np.eye(int(mask.sum()))), mask)
    prob = fc.AdversarialProblem(X, y, family="hinge", perturbation=pert, eps=0.95)
    res = fc.solve(prob, backend="fast")
    ref = fc.solve(prob, backend="cvxpy", solver="CLARABEL", tol=1e-10)
    assert res.objective == 0.0 and ref.objective <= 1e-9
    assert res.certificate.dual_objective == 0.0 and res.certificate.gap == 0.0


def test_samples_on_the_wrong_side_join_the_reduced_program(monkeypatch):
    """With the samples nearest their kinks left out of the first near set, the first
    reduced program leaves some on the wrong side of their replaced terms; they join it
    and the next program certifies the optimum."""
    monkeypatch.setattr(ws, "MAX_MOVED_FRACTION", np.inf)
    original_near, original = ws.near_set, ws.hinge_exact
    rounds = []

    def deficient(dist, w, *args, **kwargs):
        near = original_near(dist, w, *args, **kwargs)
        dist = np.where(w > 0, dist, np.inf)
        near[np.argsort(dist)[:4]] = False  # the four nearest their kinks
        return near

    def recorded(*args, **kwargs):
        out, lower = original(*args, **kwargs)
        rounds.append((out[3], out[4]))
        return out, lower

    monkeypatch.setattr(ws, "near_set", deficient)
    monkeypatch.setattr(ws, "hinge_exact", recorded)
    for set_id in ("linf", "l2", "box"):
        rounds.clear()
        prob = _problem(set_id, alpha=0.3, weights=True)
        res = fc.solve(prob, backend="fast")
        assert rounds[-1][1] and rounds[-1][0] >= 3  # certified after a second program
        _check_against_cvxpy(prob, res)


def test_fista_keeps_its_momentum_after_a_declined_try(monkeypatch):
    """A try that declines (the band too wide) is asked again at the stage's end only;
    FISTA runs the stage through meanwhile. (It ran one iteration per call, each
    restarting its momentum: 2378 iterations on a hinge path's first radius that now
    takes 211.) At eps = eps_max, with the first try declined: 335 iterations here,
    8359 with one-iteration runs."""
    original = ws.near_set
    calls = []

    def first_declined(*args, **kwargs):
        calls.append(1)
        return None if len(calls) == 1 else original(*args, **kwargs)

    prob = _problem("linf", n=3000, d=8, fraction=1.0)
    monkeypatch.setattr(ws, "near_set", first_declined)
    declined = fc.solve(prob, backend="fast")
    assert len(calls) >= 2  # declined once, asked again
    assert declined.n_iter <= 1000
    ref = fc.solve(prob, backend="cvxpy", solver="CLARABEL", tol=1e-10)
    assert declined.objective == pytest.approx(ref.objective, rel=1e-7)


def test_a_far_point_is_not_certified():
    """From a point far from the solution (the cvxpy optimum's coefficients halved) the
    step either certifies the true optimum, or hands back no bound and either the state
    (F = inf: declined, or no program solved) or its programs' best point, which is no
    better than the optimum (F there is an objective, not a bound)."""
    from fgsm_cvx.fast.model import Model, fast_scaling
    from fgsm_cvx.fast.solver import shift_set

    for set_id in ("linf", "l2"):
        prob = _problem(set_id, alpha=0.2)
        ref = fc.solve(prob, backend="cvxpy", solver="CLARABEL", tol=1e-10)
        sc = fast_scaling(prob)
        model = Model(prob, sc)
        eps = prob.eps * sc.eps
        beta, b = sc.to_scaled(0.5 * ref.coef, ref.intercept)
        shift = shift_set(prob)
        t = eps * shift.value(beta)
        Xb = model.engine.matvec(beta * model.scale)
        step = ws.ReducedStep(ws.hinge_exact, model, shift, prob.perturbation, True, eps)
        state = (beta, b, t, Xb)
        out = step(state, 0.05, 0.0, 1e-9)
        if out[4]:
            assert sc.objective(out[1]) == pytest.approx(ref.objective, rel=1e-7)
        else:
            assert step.bounds is None and not out[4]
            if np.isfinite(out[1]):
                assert sc.objective(out[1]) >= ref.objective * (1 - 1e-9)
            else:
                assert out[0] is state


@pytest.mark.parametrize("engine", ["dask", "array_api_strict"])
def test_reduced_program_on_other_engines(engine):
    da = pytest.importorskip("dask.array")
    xps = pytest.importorskip("array_api_strict")
    prob = _problem("group_l2", alpha=0.3)
    X = da.from_array(prob.X, chunks=(200, prob.n_features)) if engine == "dask" \
        else xps.asarray(prob.X)
    res = fc.solve(fc.AdversarialProblem(X, prob.y, family="hinge",
                                         perturbation=prob.perturbation, eps=prob.eps,
                                         alpha=0.3), backend="fast")
    assert res.engine == engine
    _check_against_cvxpy(prob, res)


def test_each_failed_try_widens_the_next_near_set():
    """``ReducedStep``: a failed try doubles the near set's sizes for the next one (a
    declined try does not), and a certified one keeps its bounds."""
    seen = []

    def step(*args, widen, work, final):
        seen.append(widen)
        state, outcome = args[-4], args[0][len(seen) - 1]
        if outcome == "declined":
            return (state, np.inf, np.inf, None, False), None
        if outcome == "failed":
            return (state, np.inf, np.inf, 2, False), None
        return (state, 1.5, 0.0, 3, True), 1.25

    outcomes = ["failed", "declined", "failed", "failed", "certified"]
    reduced = ws.ReducedStep(step, outcomes)
    for _ in outcomes:
        out = reduced("state", 0.1, 0.0, 1e-9)
    assert seen == [1, 2, 2, 4, 8]
    assert out[4] and reduced.bounds == (1.5, 1.25)
    seen.clear()  # with widen_declined, a decline widens the next try too
    reduced = ws.ReducedStep(step, outcomes, widen_declined=True)
    for _ in outcomes:
        reduced("state", 0.1, 0.0, 1e-9)
    assert seen == [1, 2, 4, 8, 16]


def test_near_set_widened():
    """``near_set`` with ``widen``: at least MIN x widen per unknown (the nearest first),
    None beyond MAX x widen."""
    rng = np.random.default_rng(0)
    dist, w = rng.random(500), np.ones(500)
    near = ws.near_set(dist, w, 0.0, 5, 3, widen=4)
    assert near.sum() == ws.MIN_NEAR_PER_UNKNOWN * 5 * 4
    assert np.all(dist[near] < np.min(dist[~near]))  # the nearest
    wide = np.full(500, 0.001)  # all within the band
    assert ws.near_set(wide, w, 1.0, 5, 3) is None  # 500 > 20 per unknown x 5
    assert ws.near_set(wide, w, 1.0, 5, 3, widen=8).sum() == 500


@pytest.mark.parametrize("set_id", ["l2", "box"])
def test_program_is_a_bounded_minorant_equal_at_its_split(set_id):
    """With a near set of the few samples nearest their kinks (so most violated terms are
    replaced by their linear pieces), G is finite at its minimum, which lies below the
    full problem's optimum (cvxpy), G <= F at random points, far ones included, and G = F
    at the point whose split it was built from; a box's two shifts included. (With the
    violated terms entered as their linear sum, not max(0, sum), the l2 program here is
    unbounded below.)"""
    from fgsm_cvx.fast import conic
    from fgsm_cvx.fast.model import Model, fast_scaling
    from fgsm_cvx.fast.solver import shift_set

    prob = _problem(set_id, n=400, d=6, alpha=0.3, weights=True, fraction=0.05)
    ref = fc.solve(prob, backend="cvxpy", solver="CLARABEL", tol=1e-10)
    sc = fast_scaling(prob)
    model, eps, shift = Model(prob, sc), prob.eps * sc.eps, shift_set(prob)
    rng = np.random.default_rng(0)
    d = prob.n_features
    beta0, b0 = sc.to_scaled(ref.coef * (1 + 0.01 * rng.standard_normal(d)), ref.intercept)
    t0 = eps * shift.value(beta0)
    box = np.ndim(t0) > 0
    eta0 = model.engine.fetch(model.engine.matvec(beta0 * model.scale))[0] + b0
    a0, a1 = ws._arguments(model, eta0, t0, box)
    weights = (model.alpha, 1.0 - model.alpha)
    near = ws.near_set(ws._kink_distance(a0, a1, weights), model.w_host, 0.0, d + 3, d,
                       least=4)
    split = ws._Split(a0, a1, *weights, near)
    lin, on_shift = split.coefficients(model.w_host)
    z = model.y_host
    u = lin * z
    idx = np.flatnonzero(near)
    q, A, rhs, cones = ws._program(
        np.asarray(model.rows(idx)), z[idx], model.w_host[idx], *weights,
        ws.replaced_sum(model, lin, on_shift, ws.linear_coefficient(model, u),
                        -float(np.sum(u)), box),
        conic.support_template(prob.perturbation, d), eps, box, True, None, model.offset)
    least = conic.clarabel_solve(q, A, rhs, cones, 1e-12)
    assert least.status == "optimal"
    assert sc.objective(least.dual) <= ref.objective + 1e-8 * abs(ref.objective)
    centre = np.zeros(d) if model.centre is None else model.centre

    def both(beta, b):  # (G, F) at (beta, b) with t = eps sigma_S(beta)
        t = eps * shift.value(beta)
        # G there: the program with (beta, b_c, t) pinned by equality rows, minimised over
        # its slacks (b = b_c - s c^T beta)
        fixed = np.r_[beta, b + float(centre @ beta), t]
        k = fixed.size
        pin = sp.hstack([sp.eye(k), sp.csc_matrix((k, A.shape[1] - k))])
        solved = conic.clarabel_solve(q, sp.vstack([pin, A]), np.r_[fixed, rhs],
                                      [conic.zero_cone(k), *cones], 1e-12)
        assert solved.status == "optimal"
        return q @ solved.x, model.evaluate(beta, b, t, 0.0)[1]

    g, f = both(beta0, b0)
    assert g == pytest.approx(f, rel=1e-8)
    for _ in range(20):
        scale = rng.choice([0.1, 1.0, 10.0, 1e3])
        g, f = both(beta0 + scale * rng.standard_normal(d), b0 + scale * rng.standard_normal())
        assert 0.0 <= g + 1e-9 and g <= f + 1e-8 * abs(f)


@pytest.mark.parametrize("pert", ["l1", "linf"])
def test_ill_conditioned_programs_certify_only_the_optimum(pert):
    """Raw breast-cancer columns (scales 1e-2 to 1e3), no intercept (found by a
    randomized survey). With Clarabel's dual bounds alone, the L1 set's reduced program
    returned a bound above F at its own solution (it certified a point 21% above the
    optimum before such bounds were refused; then the solve did not converge), and the
    Linf set's a bound 0.8% above the program's minimum, below F, which certified a
    point 0.8% above the optimum. Such programs go to HiGHS's simplex
    (``conic.solve_program``): the solve must reach the optimum of the explicit linear
    program min mean(s), s >= 0, s_i >= 1 - y_i x_i^T beta + eps sigma, sigma >= the
    set's support function of beta (HiGHS on the whole problem, scipy), and its
    certificate's bound must lie below that optimum."""
    from scipy.optimize import linprog
    from sklearn.datasets import load_breast_cancer

    X, t = load_breast_cancer(return_X_y=True)
    y, eps = 2.0 * t - 1.0, 0.01
    n, d = X.shape
    # support function of beta: ||beta||_inf for the L1 ball (one u >= +-beta_j), ||beta||_1
    # for the Linf ball (u_j >= +-beta_j, sigma = sum u); columns (beta, u, s)
    k = 1 if pert == "l1" else d
    U = -np.ones((d, 1)) if pert == "l1" else -np.eye(d)
    # s_i >= 1 - y_i x_i beta + eps sigma  <=>  -y_i x_i beta + eps sigma - s_i <= -1
    A_margin = np.hstack([-y[:, None] * X, np.full((n, k), eps), -np.eye(n)])
    A_abs = np.vstack([np.hstack([np.eye(d), U, np.zeros((d, n))]),
                       np.hstack([-np.eye(d), U, np.zeros((d, n))])])
    lp = linprog(np.r_[np.zeros(d + k), np.full(n, 1.0 / n)],
                 A_ub=np.vstack([A_margin, A_abs]), b_ub=np.r_[-np.ones(n), np.zeros(2 * d)],
                 bounds=[(None, None)] * d + [(0, None)] * (n + k), method="highs")
    assert lp.status == 0
    prob = fc.AdversarialProblem(X, y, family="hinge", perturbation=pert, eps=eps,
                                 fit_intercept=False)
    res = fc.solve(prob, backend="fast", max_iter=2000)
    assert res.objective <= lp.fun * (1 + 1e-6)
    assert res.certificate.dual_objective <= lp.fun * (1 + 1e-9)


def test_ill_conditioned_second_order_program_solved_with_other_equilibration():
    """The same raw columns with an L2 set (second-order cone programs, no simplex to turn
    to): Clarabel stopped "almost solved" on every program past 600 rows, and the solve
    ended without convergence. Solved again with other equilibration settings
    (``conic.RETRY_EQUILIBRATION``), a trusted program certifies the solution: it must
    be at least as good as the cvxpy backend's (ECOS, Clarabel; their objectives
    recomputed at their points, upper bounds on the optimum), its bound below them."""
    from sklearn.datasets import load_breast_cancer

    X, t = load_breast_cancer(return_X_y=True)
    prob = fc.AdversarialProblem(X, 2.0 * t - 1.0, family="hinge", perturbation="l2",
                                 eps=0.1, fit_intercept=False)
    upper = min(fc.robust_objective(prob, r.coef, r.intercept) for r in
                (fc.solve(prob, backend="cvxpy", solver=s) for s in ("ECOS", "CLARABEL")))
    res = fc.solve(prob, backend="fast")
    assert res.objective <= upper * (1 + 1e-8)
    assert res.certificate.dual_objective is not None
    assert res.certificate.dual_objective <= upper * (1 + 1e-8)


def test_untrusted_conic_program_solved_again_to_a_tighter_feasibility():
    """Standardised breast cancer, an ``Lp(3)`` set, sample weights over four decades,
    eps = 1e-2 eps_max (the objective ~3e-3; found by a randomized path survey): Clarabel
    "solved" every reduced program with a dual error of 6-900 gap tolerances and a bound
    above the program's own point, no try certified, and FISTA ran out of its 20 000
    iterations. Solved again to a feasibility tolerance of ``conic.TIGHT_FEASIBILITY``,
    a program certifies the point: at least as good (to 1e-6) as the cvxpy backend's
    ECOS and Clarabel points (Clarabel at tol 1e-10: at its default, 2e-5 above), its
    bound not above them beyond that."""
    from sklearn.datasets import load_breast_cancer

    X, t = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    w = np.exp(np.random.default_rng(1).uniform(np.log(1e-2), np.log(1e2), X.shape[0]))
    prob = fc.AdversarialProblem(X, 2.0 * t - 1.0, family="hinge", perturbation=fc.Lp(3),
                                 sample_weight=w)
    prob = prob.with_params(eps=1e-2 * fc.eps_max(prob))
    upper = min(fc.robust_objective(prob, r.coef, r.intercept) for r in
                (fc.solve(prob, backend="cvxpy", solver=s, tol=tol)
                 for s, tol in (("ECOS", 1e-8), ("CLARABEL", 1e-10))))
    res = fc.solve(prob, backend="fast")
    assert res.objective <= upper * (1 + 1e-6)
    assert res.certificate.dual_objective <= upper * (1 + 1e-6)


def test_a_bound_above_the_point_is_solved_again_with_other_equilibration():
    """Raw breast-cancer columns with an intercept, a masked ``Group(p = 3)`` set (power
    cones), eps = 0.1 times the Linf set's eps_max: once the reduced program held every
    sample, Clarabel "solved" it with a dual error of 0.65 gap tolerances and its bound
    0.27 tolerances above the optimum, above F at the program's own point, so no try
    certified and FISTA ran 15792 iterations (83 s). Solved again with other
    equilibration settings (``conic.solve_again``, ``working_set.certify``), the program
    certifies: within the iteration budget, at least as good (to 1e-8) as the cvxpy
    backend's ECOS and Clarabel points, its bound not above them."""
    from sklearn.datasets import load_breast_cancer

    X, t = load_breast_cancer(return_X_y=True)
    mask = np.arange(X.shape[1]) % 3 != 0
    pert = fc.Masked(fc.Group(np.arange(int(mask.sum())) // 4, p=3.0), mask)
    eps = 0.1 * fc.eps_max(fc.AdversarialProblem(X, t, family="hinge", eps=1.0))
    prob = fc.AdversarialProblem(X, t, family="hinge", perturbation=pert, eps=eps)
    upper = min(fc.robust_objective(prob, r.coef, r.intercept) for r in
                (fc.solve(prob, backend="cvxpy", solver=s) for s in ("ECOS", "CLARABEL")))
    res = fc.solve(prob, backend="fast", max_iter=2000)
    assert res.objective <= upper * (1 + 1e-8)
    assert res.certificate.dual_objective <= upper * (1 + 1e-8)


def _mixed_scales_lp3():
    """A hinge problem on AR(1) columns of scales 1e-1 to 1e1 (n = 300, d = 10, an Lp(3)
    set at 0.2 eps_max), whose first reduced program's minimiser runs off."""
    rng = np.random.default_rng(3)
    n, d = 300, 10
    X = rng.standard_normal((n, d))
    for j in range(1, d):
        X[:, j] = 0.5 * X[:, j - 1] + np.sqrt(0.75) * X[:, j]
    beta = rng.standard_normal(d) * (rng.random(d) < 0.3) / np.sqrt(d) * 3
    y = (rng.random(n) < 1 / (1 + np.exp(-X @ beta))).astype(float)
    X = X * np.logspace(-1, 1, d)
    prob = fc.AdversarialProblem(X, y, family="hinge", perturbation=fc.Lp(3.0), eps=1.0)
    return prob.with_params(eps=0.2 * fc.eps_max(prob))


def _recorded(monkeypatch, name):
    """The answers of ``working_set.<name>``, recorded into the list returned."""
    from fgsm_cvx.fast import working_set

    out, original = [], getattr(working_set, name)

    def recorded(*args, **kwargs):
        out.append(original(*args, **kwargs))
        return out[-1]

    monkeypatch.setattr(working_set, name, recorded)
    return out


def test_after_a_failed_try_a_small_problem_takes_all_samples(monkeypatch):
    """Where every sample fits the program's cap, the try after a failed one holds them
    all: its split cannot be wrong, and on badly scaled columns FISTA's point does not
    settle the near set (mixed column scales, n = 300, d = 10, an Lp(3) set: 170
    iterations with the near sets at 2x and 4x, 80 then; the raw breast-cancer problem
    of the test above 448 -> 86). The first try fails here without its trust region
    (``working_set._TrustRegion``, taken away: the next test has it). The result is
    Clarabel's optimum."""
    from fgsm_cvx.fast import working_set

    monkeypatch.setattr(working_set._TrustRegion, "around",
                        classmethod(lambda cls, *args: None))
    near = _recorded(monkeypatch, "near_set")
    prob = _mixed_scales_lp3()
    res = fc.solve(prob, backend="fast")
    sizes = [None if s is None else int(s.sum()) for s in near]
    assert len(sizes) >= 2 and sizes[0] < prob.n_samples and sizes[1] == prob.n_samples, \
        sizes
    assert res.certificate.dual_objective is not None
    ref = fc.solve(prob, backend="cvxpy", solver="CLARABEL", tol=1e-10)
    assert res.objective <= ref.objective * (1 + 1e-8)


def test_a_trust_region_keeps_the_first_programs_near(monkeypatch):
    """The problem above: its first near set (54 of 300 samples) is separable, and the
    reduced program's minimiser runs off to where those samples' terms vanish (F there
    ~9 F*, the coefficients ~1000 times FISTA's). In the trust region the first try
    certifies (one near set, no program of all samples, half the iterations), at
    Clarabel's optimum, its bound below Clarabel's objective."""
    from fgsm_cvx.fast import working_set

    prob = _mixed_scales_lp3()
    ref = fc.solve(prob, backend="cvxpy", solver="CLARABEL", tol=1e-10)
    with monkeypatch.context() as patch:  # without the region: the first point runs off
        patch.setattr(working_set._TrustRegion, "around",
                      classmethod(lambda cls, *args: None))
        points = _recorded(patch, "program_point")
        off = fc.solve(prob, backend="fast")
    assert points[0][1] > 5.0 * ref.objective
    near = _recorded(monkeypatch, "near_set")
    points = _recorded(monkeypatch, "program_point")
    res = fc.solve(prob, backend="fast")
    assert len(near) == 1 and int(near[0].sum()) < prob.n_samples
    assert max(point[1] for point in points) < 5.0 * ref.objective
    assert res.n_iter < off.n_iter
    assert res.objective <= ref.objective * (1 + 1e-8)
    assert res.certificate.dual_objective <= ref.objective * (1 + 1e-9)


def test_sparse_rows_let_a_wide_text_problem_certify():
    """Hinge with an intercept on tf-idf rows (n = 3000, d = 800, density ~1%): the
    reduced program's least size, two rows per unknown, was past the cap on densified
    entries (2 x 802 x 800 > 1e6), so every try declined and FISTA finished alone: 13 457
    iterations, uncertified, 7.5e-8 above Clarabel's optimum. Its rows now keep X's
    sparsity (uncentred, the intercept column b = b_c - c^T beta), the program runs once
    its cost model pays (~3000 iterations) and certifies the optimum."""
    from test_fast import _tfidf

    X = _tfidf(3000, 800, 7)
    rng = np.random.default_rng(1)
    beta = np.zeros(800)
    beta[rng.choice(800, 30, replace=False)] = rng.normal(0, 4, 30)
    eta = np.asarray(X @ beta).ravel()
    y = np.where(rng.random(3000) < 1 / (1 + np.exp(eta.mean() - eta)), 1.0, 0.0)
    p0 = fc.AdversarialProblem(X, y, family="hinge", perturbation="linf")
    prob = p0.with_params(eps=0.01 * fc.eps_max(p0))
    res = fc.solve(prob, backend="fast")
    ref = fc.solve(prob, backend="cvxpy", solver="CLARABEL", tol=1e-10)
    assert res.certificate.dual_objective is not None  # (the program's bound)
    assert res.objective == pytest.approx(ref.objective, rel=1e-8)


def _hinge_on_two_nearly_equal_columns(seed):
    """Hinge with an L2 set at 0.1 eps_max on 50 x 2 columns equal to within 1e-7 to
    1e-1 (each its own scale), labels coin flips: the optimum lies far out along the
    columns' difference."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal(50)
    X = base[:, None] + 10.0 ** rng.uniform(-7, -1, 2) * rng.standard_normal((50, 2))
    y = (rng.random(50) < 0.5).astype(float)
    prob = fc.AdversarialProblem(X, y, family="hinge", perturbation=fc.L2())
    return prob.with_params(eps=0.1 * fc.eps_max(prob))


def test_fista_goes_on_from_an_uncertified_hinge_program_point():
    """Every reduced program's bound was untrusted (dual errors ~1e-2 against a gap
    tolerance of ~1e-8), so none certified, and FISTA went on from its own point, which
    lies in a flat valley: it stopped 2.2e-3 above Clarabel's objective, called optimal.
    The programs' best point is now where FISTA goes on (``hinge_exact`` returns it, as
    ``linear_pieces.symmetric_exact`` does). The reference is the cvxpy backend with
    Clarabel at tol 1e-10 on the whole problem."""
    prob = _hinge_on_two_nearly_equal_columns(33)
    reference = fc.solve(prob, backend="cvxpy", solver="CLARABEL", tol=1e-10)
    res = fc.solve(prob, backend="fast")
    assert res.objective <= reference.objective * (1 + 1e-6)


def test_the_step_search_recomputes_a_rounded_extrapolation():
    """The fast path started from ECOS's answer (after a cold fast solve on the same
    problem, whose caches it shares) went on from a program point with coefficients of
    ~1e5 along the columns' difference: F at FISTA's extrapolated point, from products
    combined across iterations, was ~1e-12 relative off F recomputed there, so no step
    passed the sufficient-decrease test and the search failed ("step search failed").
    Once L has grown 2^20-fold in one iteration, the point is now evaluated afresh
    (``solver.REFRESH_GROWTH``); both solves reach Clarabel's objective."""
    prob = _hinge_on_two_nearly_equal_columns(43)
    reference = fc.solve(prob, backend="cvxpy", solver="CLARABEL", tol=1e-10)
    ecos = fc.solve(prob, backend="cvxpy", solver="ECOS")
    cold = fc.solve(prob, backend="fast")
    warm = fc.solve(prob, backend="fast", warm_start=ecos)
    for res in (cold, warm):
        assert res.objective <= reference.objective * (1 + 1e-6)


def test_a_far_program_point_is_not_solved_again(monkeypatch):
    """A masked set at an absolute radius (n = 1e4, d = 50): the first reduced program,
    at FISTA's 35th iteration, has its point far from the solution (more than half its
    near samples move). Where that solve's bound is untrusted, its point is tested
    before HiGHS solves the program again, and the try ends there: no simplex solve for
    it, and the solve ends at the same optimum."""
    from fgsm_cvx.fast import conic

    rng = np.random.default_rng(2)
    X = rng.standard_normal((10000, 50))
    beta = rng.standard_normal(50) * (rng.random(50) < 0.3) / np.sqrt(50) * 3
    y = (rng.random(10000) < 1 / (1 + np.exp(-X @ beta))).astype(float)
    def problem():  # (a new one per solve: no cache shared)
        return fc.AdversarialProblem(X, y, family="hinge", eps=0.2,
                                     perturbation=fc.Masked("linf", np.arange(50) % 4 != 0))

    ref = fc.solve(problem(), backend="fast")
    real_clarabel, real_program = conic.clarabel_solve, conic.solve_program
    statuses, simplex = [], []

    def untrusted_first(*args, **kwargs):  # the first solve's bound untrusted
        out = real_clarabel(*args, **kwargs)
        return out._replace(dual_error=np.inf) if not statuses else out

    def program(*args, **kwargs):
        out = real_program(*args, **kwargs)
        statuses.append(out.status)
        return out

    monkeypatch.setattr(conic, "clarabel_solve", untrusted_first)
    monkeypatch.setattr(conic, "solve_program", program)
    monkeypatch.setattr(conic, "highs_solve", lambda *a, **k: simplex.append(1) or
                        pytest.fail("a far program's point was solved again"))
    res = fc.solve(problem(), backend="fast")
    assert statuses[0] == "far" and statuses[-1] == "optimal" and not simplex
    assert res.objective == pytest.approx(ref.objective, rel=1e-9)
    assert res.certificate.dual_objective is not None


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_the_trust_region_on_sparse_rows_with_an_intercept(monkeypatch, alpha):
    """Sparse rows keep the program's intercept uncentred (b, not b_c: the region's
    centre must be FISTA's b there, ``_TrustRegion.added``): a masked set at eps = 0
    (n = 800, d = 30, CSR with 30% and some large entries), where the region is used,
    certifies Clarabel's optimum, its bound below Clarabel's objective."""
    import scipy.sparse as sp

    from fgsm_cvx.fast import working_set

    used = _recorded(monkeypatch, "with_trust_region")
    rng = np.random.default_rng(4)
    n, d = 800, 30
    X = sp.random(n, d, density=0.3, random_state=rng, format="csr",
                  data_rvs=rng.standard_normal)
    X = (X + sp.csr_matrix(np.where(rng.random((n, d)) < 0.05, 3.0, 0.0))).tocsr()
    beta = rng.standard_normal(d) * (rng.random(d) < 0.4)
    y = (rng.random(n) < 1 / (1 + np.exp(-(X @ beta)))).astype(float)
    prob = fc.AdversarialProblem(X, y, family="hinge", alpha=alpha, eps=0.0,
                                 perturbation=fc.Masked("linf", np.arange(d) % 3 != 0))
    res = fc.solve(prob, backend="fast")
    assert used and working_set.near_cap(d + 2, d, 2) >= n  # (the region's regime)
    ref = fc.solve(prob, backend="cvxpy", solver="CLARABEL", tol=1e-10)
    assert res.objective <= ref.objective * (1 + 1e-8)
    assert res.certificate.dual_objective <= ref.objective * (1 + 1e-9)
