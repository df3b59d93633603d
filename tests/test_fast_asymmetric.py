"""Asymmetric boxes on the fast path (two shifts t_up, t_dn), against independent references:
the families' own endpoint maximum, finite differences, cvxpy's projection and the cvxpy
backend (Clarabel)."""

import warnings

import cvxpy as cp
import numpy as np
import pytest
from conftest import FAMILY_CASES, QUICK, make_y
from hypothesis import given, settings
from hypothesis import strategies as st
from test_fast import SETTINGS, _reference
from test_fast import _random_problem as _drawn_problem

import fgsm_cvx as fc
from fgsm_cvx.fast.box import BoxShift
from fgsm_cvx.fast.epigraph import project_epigraph
from fgsm_cvx.fast.newton import BoxOrthant, _Point, manifold_of, newton_system
from fgsm_cvx.fast.objective import interval_second_order_terms, interval_terms

BOX_SETS = {
    # lower != -upper, per-feature arrays
    "box": lambda d: fc.Box(-np.linspace(0.2, 1.0, d), np.linspace(1.5, 0.5, d)),
    # one-sided: the attacker may only raise the features (lower = 0), one immutable
    "box_one_sided": lambda d: fc.Box(0.0, np.r_[np.linspace(0.5, 2.0, d - 1), 0.0]),
    # a box on every other feature; scalar bounds broadcast over the masked features
    "masked_box": lambda d: fc.Masked(fc.Box(-0.3, 1.0), np.arange(d) % 2 == 0),
}
# CI runs the quick mode; the full mode draws 50 problems per family and set
N_EXAMPLES = 3 if QUICK else 50


def _labels(family_id, n, rng):
    return make_y(family_id, rng.standard_normal(n), rng)


@pytest.mark.parametrize("family_id", list(FAMILY_CASES))
def test_interval_terms_exact_at_mu_zero_and_derivatives(family_id):
    """At mu = 0 the term is the family's max of the two endpoint losses (``worst_case``,
    written independently); at mu > 0 its derivatives match central differences."""
    fam = FAMILY_CASES[family_id]()
    rng = np.random.default_rng(3)
    n = 200
    y = fam.encode_y(_labels(family_id, n, rng))[0]
    eta = rng.uniform(-2.0, 2.0, n)
    for t_up, t_dn in ((0.7, 0.1), (0.0, 0.4), (0.3, 0.3), (1e-6, 2.0)):
        value = interval_terms(fam, y, eta, t_up, t_dn, 0.0, grad=False)
        np.testing.assert_allclose(value, fam.worst_case(y, eta, t_up, t_dn), rtol=1e-12,
                                   atol=1e-12)
        h = 1e-6
        _, d_eta, d_up, d_dn = interval_terms(fam, y, eta, t_up, t_dn, 0.05)

        def f(e=eta, u=t_up, dn=t_dn):
            return interval_terms(fam, y, e, u, dn, 0.05, grad=False)

        np.testing.assert_allclose(d_eta, (f(e=eta + h) - f(e=eta - h)) / (2 * h), atol=1e-5)
        np.testing.assert_allclose(d_up, (f(u=t_up + h) - f(u=t_up - h)) / (2 * h), atol=1e-5)
        np.testing.assert_allclose(d_dn, (f(dn=t_dn + h) - f(dn=t_dn - h)) / (2 * h), atol=1e-5)
        assert np.all(d_up >= -1e-12) and np.all(d_dn >= -1e-12)  # nondecreasing in both


def _cvx_projection(pert, beta0, t0, eps):
    d = beta0.shape[0]
    b, tu, td = cp.Variable(d), cp.Variable(), cp.Variable()
    prob = cp.Problem(cp.Minimize(cp.sum_squares(b - beta0) + cp.square(tu - t0[0])
                                  + cp.square(td - t0[1])),
                      [eps * pert.support_cvx(b) <= tu, eps * pert.support_cvx(-b) <= td])
    prob.solve(solver="CLARABEL", tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10)
    return b.value, np.array([tu.value, td.value]), prob.value


@pytest.mark.parametrize("set_id", list(BOX_SETS))
def test_box_epigraph_projection_against_cvxpy(set_id):
    """Random points of every kind: already in K, outside one constraint only (one
    multiplier), outside both, and deep in the polar cone (projecting to beta = 0)."""
    d, eps = 7, 0.7
    pert = BOX_SETS[set_id](d)
    rng = np.random.default_rng(11)
    kinds = {"feasible": 0, "one": 0, "both": 0, "zero": 0}
    for trial in range(40):
        beta0 = rng.standard_normal(d) * rng.choice([0.1, 1.0, 5.0])
        up, dn = eps * pert.support(beta0), eps * pert.support(-beta0)
        kind = list(kinds)[trial % 4]
        if kind == "feasible":
            t0 = np.array([up, dn]) + rng.uniform(0.0, 1.0, 2)
        elif kind == "one":  # one side far inside: only the other multiplier is active
            t0 = np.array([up - rng.uniform(0.1, 1.0), dn + 50.0])
            if rng.random() < 0.5:
                t0 = np.array([up + 50.0, dn - rng.uniform(0.1, 1.0)])
        elif kind == "both":
            t0 = np.array([up, dn]) - rng.uniform(0.1, 2.0, 2)
        else:
            t0 = -np.array([up, dn]) * 10.0 - 1.0
        beta, t = project_epigraph(pert, beta0, t0, eps)
        ref_beta, ref_t, ref_dist = _cvx_projection(pert, beta0, t0, eps)
        assert eps * pert.support(beta) <= t[0] + 1e-12  # in K
        assert eps * pert.support(-beta) <= t[1] + 1e-12
        dist = float(np.sum((beta - beta0) ** 2) + np.sum((t - t0) ** 2))
        assert dist <= ref_dist + 1e-9  # no point of K is closer
        np.testing.assert_allclose(beta, ref_beta, atol=1e-6)
        np.testing.assert_allclose(t, ref_t, atol=1e-6)
        if kind == "feasible":
            np.testing.assert_array_equal(beta, beta0)
            np.testing.assert_array_equal(t, t0)
        elif kind == "one":  # the far side's shift is untouched, the near side's moved
            far = int(np.argmax(t0 - np.array([up, dn])))
            assert t[far] == t0[far] and t[1 - far] > t0[1 - far]
        elif kind == "zero":
            free = BoxShift.from_perturbation(pert, d)
            free = (free.upper - free.lower) == 0  # unperturbed features keep beta0
            np.testing.assert_array_equal(beta[~free], 0.0)
            np.testing.assert_array_equal(beta[free], beta0[free])
            np.testing.assert_allclose(t, 0.0, atol=1e-12)
        kinds[kind] += 1
    assert min(kinds.values()) == 10


def test_eps_zero_projection_keeps_beta():
    beta, t = project_epigraph(fc.Box(-1.0, 2.0), np.array([1.0, -3.0]), (-0.5, 0.2), 0.0)
    np.testing.assert_array_equal(beta, [1.0, -3.0])
    np.testing.assert_array_equal(t, [0.0, 0.2])


def _random_problem(family_id, set_id, data):
    """test_fast's problem drawer with a box; eps up to 1.5 eps_max, alpha 0 or 1/2."""
    return _drawn_problem(family_id, set_id, data, sets=BOX_SETS, alphas=(0.0, 0.5),
                          fractions=(0.3, 0.05, 0.7, 1.5, 0.0), n_max=400)


# Coefficient tolerance (times 1 + max |beta|) where the minimiser is unique. Huber's linear
# pieces can leave the objective nearly flat: one full-mode draw (n = 217, d = 6, weights,
# Box) changes the objective by 2e-9 relative over 3e-4 in beta, below what the first-order
# path resolves once its stages stop at the rounding floor of f; binomial and gaussian are
# held to 1e-4.
COEF_TOL = {"binomial": 1e-4, "gaussian": 1e-4, "huber": 1e-3}


@pytest.mark.parametrize("set_id", list(BOX_SETS))
def test_fast_box_agrees_with_cvxpy(family_id, set_id):
    """Objective within 1e-6 relative of Clarabel's; coefficients as COEF_TOL, at tol=1e-9.

    A reference that the conic solvers only reach as 'optimal_inaccurate' bounds the optimum
    from above only (a full-mode poisson draw with a one-sided box: all three solvers stop
    1.2e-4 high, where Nelder-Mead on the exact objective confirms the fast point)."""

    @settings(SETTINGS, max_examples=N_EXAMPLES)
    @given(data=st.data())
    def check(data):
        prob = _random_problem(family_id, set_id, data)
        ref = _reference(prob)
        res = fc.solve(prob, backend="fast")
        assert res.backend == "fast"
        if ref.status != "optimal":
            assert res.objective <= ref.objective + 1e-6 * abs(ref.objective) + 1e-10
            return
        assert res.objective == pytest.approx(ref.objective, rel=1e-6, abs=1e-10)
        if family_id in COEF_TOL:
            tol = COEF_TOL[family_id]
            tight = fc.solve(prob, backend="fast", tol=1e-9, max_iter=100_000)
            scale = 1 + np.abs(ref.coef).max()
            np.testing.assert_allclose(tight.coef, ref.coef, atol=tol * scale)
            assert tight.intercept == pytest.approx(ref.intercept,
                                                    abs=tol * (1 + abs(ref.intercept)))

    check()


@pytest.mark.parametrize("family_id", ["binomial", "gaussian", "poisson"])
def test_fast_box_large_eps_gives_zero(family_id):
    """Beyond eps_max the solution is beta = 0, as cvxpy finds; eps = 0 is the clean fit."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((600, 5))
    y = make_y(family_id, X @ (0.5 * rng.standard_normal(5)), rng)
    prob = fc.AdversarialProblem(X, y, family=family_id, perturbation=BOX_SETS["box"](5))
    for eps in (0.0, 2.0 * fc.eps_max(prob)):
        sub = prob.with_params(eps=eps)
        res = fc.solve(sub, backend="fast")
        ref = fc.solve(sub, backend="cvxpy", solver="CLARABEL", tol=1e-10)
        assert res.objective == pytest.approx(ref.objective, rel=1e-7)
        if eps > 0:
            np.testing.assert_allclose(res.coef, 0.0, atol=1e-8)
        else:
            np.testing.assert_allclose(res.coef, ref.coef, atol=1e-4)


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_fast_box_at_eps_zero_on_ill_conditioned_columns(alpha):
    """At eps = 0 a box problem is the clean fit: least squares here, without an
    intercept, on columns of scales 2 (off centre, mean 5) and 0.1. Solved with the box's
    pair of shifts FISTA alone stopped 1.6e-6 above the optimum (a randomized survey's
    draw); the clean fit's Newton step and pinned step solve it exactly."""
    rng = np.random.default_rng(871442618)
    X = 0.1 * rng.standard_normal((1408, 2))
    X[:, 0] = 20.0 * X[:, 0] + 5.0
    y = X @ np.array([-14.0, -3.3]) + rng.standard_normal(1408)
    prob = fc.AdversarialProblem(X, y, perturbation=BOX_SETS["box"](2), eps=0.0,
                                 alpha=alpha, fit_intercept=False)
    res = fc.solve(prob, backend="fast")
    lstsq = np.linalg.lstsq(X, y, rcond=None)[0]  # the clean fit, independently
    assert res.objective == pytest.approx(0.5 * np.mean((y - X @ lstsq) ** 2), rel=1e-9)
    np.testing.assert_allclose(res.coef, lstsq, rtol=1e-6)


def test_box_goes_fast_in_auto_paths_and_estimators():
    """backend='auto' takes the fast path for a large box problem; a path and an estimator
    with a box run on it and agree with cvxpy."""
    rng = np.random.default_rng(2)
    X = rng.standard_normal((5000, 6))
    y = make_y("binomial", X @ (0.5 * rng.standard_normal(6)), rng)
    box = fc.Box(-0.2, 0.6)
    prob = fc.AdversarialProblem(X, y, family="binomial", perturbation=box, eps=0.05)
    assert fc.solve(prob).backend == "fast"
    grid = np.array([0.02, 0.05, 0.1])
    path = fc.adversarial_path(prob, eps=grid, backend="fast")
    for e, res in zip(path.eps, path.results, strict=True):  # the path runs from the largest eps
        ref = fc.solve(prob.with_params(eps=e), backend="cvxpy", solver="CLARABEL", tol=1e-10)
        assert res.backend == "fast"
        assert res.objective == pytest.approx(ref.objective, rel=1e-7)
    clf = fc.AdversarialClassifier(perturbation=box, eps=0.05, backend="fast").fit(X, y)
    ref = fc.solve(prob, backend="cvxpy", solver="CLARABEL", tol=1e-10)
    np.testing.assert_allclose(clf.coef_.ravel(), ref.coef,
                               atol=1e-4 * (1 + np.abs(ref.coef).max()))


@pytest.mark.parametrize("set_id", list(BOX_SETS))
def test_centred_box_is_the_weighted_linf_problem(family_id, set_id):
    """At alpha = 0 the box problem is the weighted l-inf problem of the half-widths with
    the intercept moved by eps m^T beta (``box.centred_box``): the numpy objectives of
    the two agree at random points, each from its own set's worst case; with a clean term
    or (for an off-centre box) without an intercept there is no such problem."""
    from fgsm_cvx.fast.box import centred_box
    from fgsm_cvx.problem import robust_objective

    rng = np.random.default_rng(11)
    d = 5
    X = rng.standard_normal((300, d))
    y = make_y(family_id, X @ (0.5 * rng.standard_normal(d)), rng)
    prob = fc.AdversarialProblem(X, y, family=FAMILY_CASES[family_id](),
                                 perturbation=BOX_SETS[set_id](d), eps=0.4)
    equivalent, centre = centred_box(prob)
    box = BoxShift.from_perturbation(prob.perturbation, d)
    np.testing.assert_allclose(centre, 0.5 * (box.upper + box.lower))
    assert isinstance(equivalent.perturbation, fc.WeightedLinf)
    for _ in range(5):
        beta, b = 0.5 * rng.standard_normal(d), rng.standard_normal()
        assert robust_objective(prob, beta, b) == pytest.approx(
            robust_objective(equivalent, beta, b + prob.eps * centre @ beta), rel=1e-12)
    assert centred_box(prob.with_params(alpha=0.3)) is None
    no_intercept = fc.AdversarialProblem(X, y, family=FAMILY_CASES[family_id](),
                                         perturbation=BOX_SETS[set_id](d), eps=0.4,
                                         fit_intercept=False)
    assert centred_box(no_intercept) is None  # these boxes are off-centre


def test_box_warm_start_from_its_solution_takes_few_iterations():
    """A Result of the box problem warm-starts its weighted l-inf equivalent as a
    candidate solution (its intercept moved too): a few iterations, the same point."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((3000, 8))
    y = make_y("poisson", X @ (0.3 * rng.standard_normal(8)), rng)
    prob = fc.AdversarialProblem(X, y, family="poisson", perturbation=BOX_SETS["masked_box"](8),
                                 eps=0.3)
    res = fc.solve(prob, backend="fast")
    ref = _reference(prob)
    assert res.objective == pytest.approx(ref.objective, rel=1e-7)
    again = fc.solve(prob, backend="fast", warm_start=res)
    assert again.n_iter <= 3
    assert again.intercept == pytest.approx(res.intercept, abs=1e-6)
    assert again.objective == pytest.approx(res.objective, rel=1e-9)


SECOND_ORDER_FAMILIES = ["binomial", "poisson", "gaussian", "huber"]


@pytest.mark.parametrize("family_id", SECOND_ORDER_FAMILIES)
def test_interval_second_order_terms_against_differences(family_id):
    """``interval_second_order_terms`` (the box's Newton pass): at mu = 0 its value is
    (1 - alpha) times the family's endpoint maximum plus alpha times the clean loss
    (``worst_case`` and ``loss``, written independently) and its first derivatives
    their central differences; at mu = 0.05 its second derivatives are the central
    differences of ``interval_terms``' first derivatives (another code path) plus the
    clean term's."""
    fam = FAMILY_CASES[family_id]()
    rng = np.random.default_rng(11)
    n, alpha, h = 300, 0.4, 1e-6
    y = fam.encode_y(_labels(family_id, n, rng))[0]
    eta = rng.uniform(-1.5, 1.5, n)
    for t_up, t_dn in ((0.7, 0.1), (0.05, 0.4), (0.3, 0.3)):
        def value(e=eta, u=t_up, dn=t_dn):
            return (1 - alpha) * fam.worst_case(y, e, u, dn) + alpha * fam.loss(y, e)

        H, H_e, (H_u, H_d), *_ = interval_second_order_terms(fam, y, eta, t_up, t_dn,
                                                             0.0, alpha)
        np.testing.assert_allclose(H, value(), rtol=1e-12, atol=1e-12)
        for got, (lo, hi) in ((H_e, (value(e=eta - h), value(e=eta + h))),
                              (H_u, (value(u=t_up - h), value(u=t_up + h))),
                              (H_d, (value(dn=t_dn - h), value(dn=t_dn + h)))):
            np.testing.assert_allclose(got, (hi - lo) / (2 * h), atol=1e-5)

        def first(e=eta, u=t_up, dn=t_dn):  # (d/deta, d/dt_up, d/dt_dn) at mu = 0.05
            _, d_e, d_u, d_d = interval_terms(fam, y, e, u, dn, 0.05)
            return (1 - alpha) * d_e + alpha * fam.grad(y, e), (1 - alpha) * d_u, \
                (1 - alpha) * d_d

        _, _, _, H_ee, (H_eu, H_ed), ((H_uu, H_ud), (H_du, H_dd)) = \
            interval_second_order_terms(fam, y, eta, t_up, t_dn, 0.05, alpha)
        def difference(plus, minus):
            return [(p - m) / (2 * h) for p, m in zip(plus, minus, strict=True)]

        d_e = difference(first(e=eta + h), first(e=eta - h))
        d_u = difference(first(u=t_up + h), first(u=t_up - h))
        d_d = difference(first(dn=t_dn + h), first(dn=t_dn - h))
        for got, want in ((H_ee, d_e[0]), (H_eu, d_u[0]), (H_ed, d_d[0]), (H_uu, d_u[1]),
                          (H_ud, d_d[1]), (H_du, d_u[2]), (H_dd, d_d[2])):
            np.testing.assert_allclose(got, want, atol=2e-4 * (1 + np.abs(want).max()))


def test_box_orthant_conditions_against_directional_derivatives():
    """``newton.BoxOrthant`` against Phi(beta) = g^T beta + b^T (sigma_S(beta),
    sigma_S(-beta)) (b = eps T, the shifts' slopes) evaluated by ``BoxShift.value``:
    its gradient on an orthant is the difference quotient there; at a zero coordinate
    the violation is the larger descent rate along +-e_j (0 where neither descends) and
    the entering sign is that direction; a nonzero coordinate binds where the slope
    pushes it towards zero."""
    d = 12
    rng = np.random.default_rng(5)
    lower, upper = -rng.uniform(0.0, 1.0, d), rng.uniform(0.0, 1.5, d)
    lower[[3, 7]] = upper[[3, 7]] = 0.0  # free (immutable) coordinates
    box = BoxShift(lower, upper)
    orthant = BoxOrthant(box)
    beta = rng.standard_normal(d)
    beta[[0, 1, 2, 3]] = 0.0
    beta[4] = 1e-9  # (near zero: binding where pushed down)
    g, bound = rng.standard_normal(d), np.array([0.7, 0.4])

    def phi(b):
        return g @ b + bound @ box.value(b)

    np.testing.assert_allclose(orthant.value(beta), box.value(beta), rtol=1e-14)
    W, signs = orthant.working(beta, {})
    np.testing.assert_array_equal(W, np.flatnonzero((beta != 0) | (upper - lower == 0)))
    G, h = orthant.gradient(beta, W, signs), 1e-7
    for k, j in enumerate(W):
        e = np.zeros(d)
        e[j] = h * max(abs(beta[j]), 1.0) if beta[j] else h
        if beta[j]:
            e[j] = min(e[j], abs(beta[j]) / 2)
        np.testing.assert_allclose(G[k], (box.value(beta + e) - box.value(beta - e))
                                   / (2 * e[j]), atol=1e-6)
    violation = orthant.violation(beta, g, bound)
    entering = orthant.entering(beta, g, bound, 0.0)
    for j in range(d):
        e = np.zeros(d)
        e[j] = 1e-6
        up, down = (phi(beta + e) - phi(beta)) / 1e-6, (phi(beta - e) - phi(beta)) / 1e-6
        if beta[j] == 0 and upper[j] - lower[j] > 0:
            assert violation[j] == pytest.approx(max(-up, -down, 0.0), abs=1e-6)
            if violation[j] > 0:
                assert entering[j] == (1.0 if up < down else -1.0)
        else:
            assert violation[j] == 0.0 and j not in entering
    binding = orthant.binding(beta, g, bound, 1e-6)
    slope = g[4] + bound @ (box.value(np.eye(d)[4]))  # d Phi / d beta_4 at beta_4 > 0
    assert (4 in binding) == (slope > 0)
    assert set(binding) <= {4}


@pytest.mark.parametrize("family_id", ["binomial", "poisson"])
def test_box_newton_system_against_differences_of_the_gradient(family_id):
    """``newton.newton_system`` on a box's orthant (two shifts: ``Model``'s box pass)
    against central differences of Phi(beta_W, b_c) = F(beta, b, eps sigma(beta))'s
    gradient from FISTA's gradient pass (``Model.gradient_pass``, another code path),
    with an intercept and alpha = 0.5."""
    from fgsm_cvx.fast.model import Model, fast_scaling
    from fgsm_cvx.fast.solver import shift_set

    rng = np.random.default_rng(8)
    n, d = 700, 6
    X = rng.standard_normal((n, d)) * [1.0, 3.0, 0.5, 1.0, 2.0, 1.0] + 0.3
    y = make_y(family_id, X @ (0.3 * rng.standard_normal(d)), rng)
    prob = fc.AdversarialProblem(X, y, family=family_id, eps=0.1, alpha=0.5,
                                 perturbation=BOX_SETS["masked_box"](d))
    scaling = fast_scaling(prob)
    model, eps = Model(prob, scaling), prob.eps * scaling.eps
    manifold = manifold_of(shift_set(prob), d)
    assert isinstance(manifold, BoxOrthant)
    beta = 0.2 * rng.standard_normal(d)
    beta[2] = 0.0  # (a zero coordinate of the box: outside W)
    W, signs = manifold.working(beta, {})
    b_c = 0.1 + float(model.centre @ beta)
    point = _Point(model, beta, b_c - float(model.centre @ beta), eps * manifold.value(beta),
                   0.0, W)
    H, grad = newton_system(manifold, beta, W, signs, point.gram(W), point.XtG,
                            point.sums, eps, True)

    def phi_gradient(z):  # (d Phi / d beta_W, d Phi / d b_c) at beta_W, b_c = z
        bb = beta.copy()
        bb[W] = z[:-1]
        t = eps * manifold.value(bb)
        _, _, g, g_b, T = model.gradient_pass(bb, z[-1] - float(model.centre @ bb), t, 0.0,
                                              True)
        return np.append(g[W] + eps * manifold.gradient(bb, W, signs) @ T, g_b)

    z0 = np.append(beta[W], b_c)
    np.testing.assert_allclose(grad, phi_gradient(z0), rtol=1e-10, atol=1e-12)
    h = 1e-6
    differences = np.column_stack([(phi_gradient(z0 + h * e) - phi_gradient(z0 - h * e))
                                   / (2 * h) for e in np.eye(z0.shape[0])])
    np.testing.assert_allclose(H, differences, atol=1e-6 * np.abs(H).max())


@pytest.mark.parametrize(("alpha", "intercept"), [(0.0, False), (0.9, True)])
def test_binomial_box_on_badly_scaled_columns_by_newton(alpha, intercept):
    """A masked box on columns over five decades (a randomized survey's failures):
    without a Newton step for the box's two shifts FISTA ran out of its 20 000
    iterations (SolverError); on the box's orthants (``newton.BoxOrthant``) the fast
    path ends at Clarabel's optimum in a few dozen iterations."""
    rng = np.random.default_rng(7082)
    n, d = 432, 30
    X = rng.standard_normal((n, d)) * 10.0 ** rng.uniform(-2, 3, d)
    eta = X @ (rng.standard_normal(d) / np.sqrt(np.mean(X**2, 0))) / np.sqrt(d)
    y = (rng.random(n) < 1 / (1 + np.exp(-3 * eta / eta.std()))).astype(float)
    prob = fc.AdversarialProblem(X, y, family="binomial", alpha=alpha,
                                 perturbation=fc.Masked(fc.Box(-0.5, 1.0),
                                                        rng.random(d) < 0.6),
                                 fit_intercept=intercept, eps=0.5)
    res = fc.solve(prob, backend="fast")
    ref = fc.solve(prob, backend="cvxpy", solver="CLARABEL", tol=1e-10)
    assert res.n_iter < 1000
    assert res.objective == pytest.approx(ref.objective, rel=1e-8)


# (seed, n, d, alpha, fit_intercept, weighted, eps, most iterations): two draws of the
# generator, and two of a randomized survey's draws (the same generator, its seeds)
POISSON_BOX_DRAWS = [(2, 305, 5, 0.9, True, True, 0.05, 100),
                     (3, 305, 5, 0.9, True, True, 0.05, 100),
                     (50764815, 305, 5, 0.9, True, True, 0.05, 100),
                     (919842235, 35, 45, 0.3, False, False, 0.2, 2000)]


@pytest.mark.parametrize("draw", POISSON_BOX_DRAWS)
def test_poisson_box_on_badly_scaled_columns_by_newton(draw):
    """A Poisson masked box at alpha > 0 on columns five decades apart (a randomized
    survey's failures): no exact step finishes a box for Poisson, and FISTA alone ran
    out of its 20 000 iterations. Newton's stages on the box's orthants now run from
    any size (a few dozen iterations); where they give up, Newton takes a stage over
    again after ``LATE_NEWTON_WORK`` iterations (the last draw, n = 35 < d = 45: FISTA
    alone ran out at a finer stage); the solve ends at the cvxpy backend's optimum
    (Clarabel's; on the survey's draws Clarabel fails numerically and ECOS answers,
    within 1e-8). (The third draw took 8221 iterations with the late hand-over and a
    line search that zeroed the binding coordinates at every step length,
    ``newton._UNBIND_BELOW``.)"""
    seed, n, d, alpha, intercept, weighted, eps, most = draw
    rng = np.random.default_rng(seed)
    scale = 10.0 ** rng.uniform(-2, 3, d)
    X = rng.standard_normal((n, d)) * scale
    y = rng.poisson(np.exp(np.clip(X @ (rng.standard_normal(d) / np.sqrt(d) / scale),
                                   -3, 3))).astype(float)
    mask = rng.random(d) < 0.6
    prob = fc.AdversarialProblem(X, y, family="poisson", alpha=alpha, eps=eps,
                                 perturbation=fc.Masked(fc.Box(-0.5, 1.0), mask),
                                 fit_intercept=intercept,
                                 sample_weight=rng.uniform(0.2, 3.0, n) if weighted else None)
    res = fc.solve(prob, backend="fast")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fc.SolverFallbackWarning)
        ref = fc.solve(prob, backend="cvxpy", solver="CLARABEL", tol=1e-10)
    assert res.n_iter <= most
    assert res.objective == pytest.approx(ref.objective, rel=1e-7)


def test_late_newton_on_a_poisson_box_returns_to_its_point(monkeypatch):
    """The survey's draw of ``test_poisson_box_on_badly_scaled_columns_by_newton`` by the
    late hand-over alone (Newton's stages from the size rule only,
    ``solver.POISSON_BOX_NEWTON`` off): Newton takes the stage over after
    ``LATE_NEWTON_WORK`` FISTA iterations, where its line search had zeroed a binding
    coefficient of 0.3 at every step length and could not return to its point (8221
    iterations in all); moving such coordinates with the step below
    ``newton._UNBIND_BELOW`` of it, about 1020."""
    from fgsm_cvx.fast import solver

    monkeypatch.setattr(solver, "POISSON_BOX_NEWTON", False)
    test_poisson_box_on_badly_scaled_columns_by_newton(
        (50764815, 305, 5, 0.9, True, True, 0.05, solver.LATE_NEWTON_WORK + 100))
