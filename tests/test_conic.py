"""The support-function cone template (fast/conic.py) against each set's closed-form
support function: with beta pinned, the least t the epigraph rows allow is
eps sigma_S(sign beta)."""

import copy

import clarabel
import cvxpy as cp
import numpy as np
import pytest
import scipy.sparse as sp
from test_working_set import SETS

import fgsm_cvx as fc
from fgsm_cvx.fast import conic

D = 6


def _least_t(pert, beta, eps, sign):
    """min t s.t. eps sigma_S(sign beta) <= t, beta fixed by equality rows, t >= 0, solved
    by Clarabel from the template's rows (columns: beta, t, the template's auxiliaries)."""
    template = conic.support_template(pert, D)
    n_cols = D + 1 + template.n_aux  # beta, t, then tau and the auxiliaries
    A_e, b_e, cones_e = conic.epigraph_rows(template, eps, sign, beta_col=0, t_col=D,
                                            aux_col=D + 1, n_cols=n_cols)
    pin = sp.hstack([sp.eye(D), sp.csc_matrix((D, n_cols - D))])  # beta = beta0
    t_nonneg = sp.csc_matrix(([-1.0], ([0], [D])), shape=(1, n_cols))  # 0 - (-t) >= 0
    A = sp.vstack([pin, t_nonneg, A_e]).tocsc()
    b = np.r_[beta, 0.0, b_e]
    cones = [clarabel.ZeroConeT(D), conic.nonneg_cone(1), *cones_e]
    q = np.zeros(n_cols)
    q[D] = 1.0
    solved = conic.clarabel_solve(q, A, b, cones, gap_tol=1e-10)
    assert solved.status == "optimal"
    x, dual = solved.x, solved.dual
    assert dual == pytest.approx(x[D], rel=1e-8, abs=1e-8)  # the dual bound meets it
    return x[D]


@pytest.mark.parametrize("set_id", list(SETS))
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_template_epigraph_is_the_support_function(set_id, sign):
    pert = SETS[set_id](D)
    rng = np.random.default_rng(3)
    for eps in (0.37, 2.5):
        beta = rng.standard_normal(D) * rng.choice([0.1, 1.0, 10.0], D)
        expected = eps * float(pert.support(sign * beta))
        assert _least_t(pert, beta, eps, sign) == pytest.approx(expected, rel=1e-6,
                                                                abs=1e-8)


def test_no_epigraph_rows_at_eps_zero():
    template = conic.support_template(fc.L2(), D)
    A, b, cones = conic.epigraph_rows(template, 0.0, 1.0, 0, D, D + 1, 20)
    assert A.shape == (0, 20) and b.size == 0 and cones == ()


def test_templates_are_shared_by_value_or_kept_per_set():
    # the package's sets by value: a new l-inf ball per problem (the shorthand), a box's
    # centred weighted l-inf ball (new per solve), an estimator's set after ``clone``
    # reuse the canonicalised template ...
    assert conic.support_template(fc.Linf(), D) is conic.support_template(fc.Linf(), D)
    assert conic.support_template(fc.Lp(3), D) is not conic.support_template(fc.Lp(4), D)
    scales = np.linspace(0.5, 1.5, D)
    wlinf = conic.support_template(fc.WeightedLinf(scales), D)
    assert conic.support_template(fc.WeightedLinf(scales.copy()), D) is wlinf
    assert conic.support_template(fc.WeightedLinf(scales + 1.0), D) is not wlinf
    for make in (lambda: fc.Group(np.arange(D) // 2),
                 lambda: fc.Masked(fc.Box(-0.5, 1.0), np.arange(D) % 3 != 0),
                 lambda: fc.Ellipsoid(np.eye(D) + 0.3 * np.diag(np.ones(D - 1), 1))):
        pert = make()
        assert conic.support_template(copy.deepcopy(pert), D) \
            is conic.support_template(pert, D)
    assert conic.support_template(fc.Group(np.arange(D) // 3), D) \
        is not conic.support_template(fc.Group(np.arange(D) // 2), D)
    # ... one per dimension
    assert conic.support_template(fc.L1(), D + 1).d == D + 1
    # custom sets (no value to compare) keep theirs while they live
    custom = fc.CustomSet(_l2_ball, symmetric=True)
    assert conic.support_template(custom, D) is conic.support_template(custom, D)
    assert conic.support_template(fc.CustomSet(_l2_ball, symmetric=True), D) \
        is not conic.support_template(custom, D)


def _l2_ball(delta):
    return [cp.norm(delta, 2) <= 1.0]


def test_custom_set_template_is_its_support_function():
    custom = fc.CustomSet(_l2_ball, symmetric=True)
    beta = np.linspace(-1.0, 2.0, D)
    assert _least_t(custom, beta, 0.7, 1.0) == pytest.approx(
        0.7 * float(np.linalg.norm(beta)), rel=1e-6)


def test_clarabel_solve_reports_infeasible_and_unbounded_programs():
    # min x s.t. x >= 1 and -x >= 0: infeasible
    A = sp.csc_matrix(np.array([[-1.0], [1.0]]))
    out = conic.clarabel_solve(np.ones(1), A, np.array([-1.0, 0.0]),
                               [conic.nonneg_cone(2)], gap_tol=1e-8)
    assert out.status == "failed" and out.x is None
    # min -x s.t. x >= 1: unbounded below (dual infeasible), with and without P = 0
    for P in (None, sp.csc_matrix((1, 1))):
        out = conic.clarabel_solve(-np.ones(1), sp.csc_matrix([[-1.0]]), np.array([-1.0]),
                                   [conic.nonneg_cone(1)], gap_tol=1e-8, P=P)
        assert out.status == "unbounded"


def test_clarabel_solve_quadratic_objective_against_closed_form():
    # min (x - 3)^2 / 2 + 2 |y| ... as min x^2/2 - 3x + 2 a s.t. a >= y - 1, a >= 1 - y:
    # x = 3 and a = |y - 1| = 0 at y = 1: the value -4.5
    P = sp.diags([1.0, 0.0, 0.0], format="csc")
    q = np.array([-3.0, 0.0, 2.0])
    A = sp.csc_matrix(np.array([[0.0, 1.0, -1.0], [0.0, -1.0, -1.0]]))  # b - A x >= 0
    out = conic.clarabel_solve(q, A, np.array([1.0, -1.0]), [conic.nonneg_cone(2)],
                               gap_tol=1e-10, P=P)
    assert out.status == "optimal"
    assert out.x == pytest.approx([3.0, 1.0, 0.0], abs=1e-6)
    assert out.dual == pytest.approx(-4.5, abs=1e-8)


def test_without_a_template_the_solve_is_finished_by_continuation(monkeypatch):
    """Where cvxpy cannot give the cone template (an internal it reads is missing), the
    reduced program declines and the continuation finishes the hinge solve: the same
    optimum, without the program's dual bound."""
    import weakref

    from test_fast import _best_reference
    from test_working_set import _problem

    def missing(pert, d):
        raise AttributeError("no var_id_to_col in this cvxpy")

    monkeypatch.setattr(conic, "_canonicalise", missing)
    monkeypatch.setattr(conic, "_BY_VALUE", {})
    monkeypatch.setattr(conic, "_TEMPLATES", weakref.WeakKeyDictionary())
    prob = _problem("l2")
    res = fc.solve(prob, backend="fast")
    assert res.certificate.dual_objective is None
    ref = _best_reference(prob)
    assert res.objective == pytest.approx(ref, rel=1e-6)


def _small_lp():
    """min x0 + 2 x1 s.t. x0 + x1 = 1 (a zero cone), x0 >= 0.25, x1 >= 0 (b - A x >= 0):
    optimum x = (1, 0), value 1; multipliers z_eq = -1 and z = (0, 1) on x0, x1's rows."""
    A = sp.csc_matrix(np.array([[1.0, 1.0], [-1.0, 0.0], [0.0, -1.0]]))
    return np.array([1.0, 2.0]), A, np.array([1.0, -0.25, 0.0]), \
        [clarabel.ZeroConeT(1), conic.nonneg_cone(2)]


def test_highs_solve_against_closed_form_and_statuses():
    q, A, b, cones = _small_lp()
    out = conic.highs_solve(q, A, b, cones)
    assert out.status == "optimal"
    assert out.x == pytest.approx([1.0, 0.0], abs=1e-12)
    assert out.dual == pytest.approx(1.0, abs=1e-12) and out.dual <= 1.0 + 1e-15
    assert out.dual_error <= 1e-14
    # infeasible (x >= 1 and -x >= 0) and unbounded below (min -x s.t. x >= 1)
    infeasible = conic.highs_solve(np.ones(1), sp.csc_matrix([[-1.0], [1.0]]),
                                   np.array([-1.0, 0.0]), [conic.nonneg_cone(2)])
    assert infeasible.status == "failed" and infeasible.x is None
    unbounded = conic.highs_solve(-np.ones(1), sp.csc_matrix([[-1.0]]), np.array([-1.0]),
                                  [conic.nonneg_cone(1)])
    assert unbounded.status == "unbounded"


def test_clarabel_reports_its_dual_error():
    """``dual_error`` = |P x + A^T z + q|^T |x| recomputed from Clarabel's own (x, z)."""
    q, A, b, cones = _small_lp()
    out = conic.clarabel_solve(q, A, b, cones, gap_tol=1e-10)
    assert out.status == "optimal" and out.dual == pytest.approx(1.0, abs=1e-8)
    assert 0.0 <= out.dual_error <= 1e-6


def test_untrusted_linear_programs_go_to_the_simplex(monkeypatch):
    """A linear program whose interior-point dual error exceeds TRUSTED_DUAL_ERROR gap
    tolerances is solved again by HiGHS; a trusted one, or a conic program, keeps
    Clarabel's answer."""
    q, A, b, cones = _small_lp()
    calls = []
    real_highs = conic.highs_solve

    def fake_clarabel(q, A, b, cones, gap_tol, P=None, tol_feas=1e-8,  # a bound above
                      equilibration=None):  # the min
        return conic.ConicSolution("optimal", np.array([0.5, 0.5]), 1.4, error)

    def highs(*args):
        calls.append(args)
        return real_highs(*args)

    monkeypatch.setattr(conic, "clarabel_solve", fake_clarabel)
    monkeypatch.setattr(conic, "highs_solve", highs)
    gap_tol = 1e-6
    error = 10 * conic.TRUSTED_DUAL_ERROR * gap_tol
    out = conic.solve_program(q, A, b, cones, gap_tol)
    assert len(calls) == 1 and out.dual == pytest.approx(1.0, abs=1e-12)
    error = 0.5 * conic.TRUSTED_DUAL_ERROR * gap_tol
    assert conic.solve_program(q, A, b, cones, gap_tol).dual == 1.4 and len(calls) == 1
    error = 1.0  # a second-order cone: no simplex to turn to (its bound lowered by the
    soc = [clarabel.SecondOrderConeT(3)]  # error: ``conic._lowered``)
    assert conic.solve_program(q, A, b, soc, gap_tol).dual == pytest.approx(0.4) \
        and len(calls) == 1


def test_an_untrusted_point_its_caller_rejects_is_not_solved_again(monkeypatch):
    """``far(x)`` is asked of an untrusted solve's point before HiGHS solves the program
    again: True returns that point as "far" (no bound, no second solve), False goes on
    to the simplex; a trusted solve never asks it."""
    q, A, b, cones = _small_lp()
    calls, asked = [], []
    gap_tol = 1e-6
    error = 10 * conic.TRUSTED_DUAL_ERROR * gap_tol

    def fake_clarabel(q, A, b, cones, gap_tol, P=None, tol_feas=1e-8, equilibration=None):
        return conic.ConicSolution("optimal", np.array([0.5, 0.5]), 1.4, error)

    monkeypatch.setattr(conic, "clarabel_solve", fake_clarabel)
    monkeypatch.setattr(conic, "highs_solve", lambda *a: calls.append(a) or
                        conic.ConicSolution("optimal", np.array([1.0, 0.0]), 1.0, 0.0))
    out = conic.solve_program(q, A, b, cones, gap_tol,
                              far=lambda x: asked.append(x.copy()) or True)
    assert out.status == "far" and out.dual is None and not calls
    np.testing.assert_array_equal(out.x, [0.5, 0.5])
    np.testing.assert_array_equal(asked[0], [0.5, 0.5])
    out = conic.solve_program(q, A, b, cones, gap_tol, far=lambda x: False)
    assert out.status == "optimal" and out.dual == 1.0 and len(calls) == 1
    error = 0.5 * conic.TRUSTED_DUAL_ERROR * gap_tol  # trusted: far is not asked
    out = conic.solve_program(q, A, b, cones, gap_tol, far=lambda x: asked.append(x) or True)
    assert out.status == "optimal" and out.dual == 1.4 and len(asked) == 1


def test_untrusted_conic_programs_are_solved_again_with_other_equilibration(monkeypatch):
    """A conic program that Clarabel leaves "almost solved" with a large dual error is
    solved again with the equilibration settings of RETRY_EQUILIBRATION; the first
    trusted answer counts (as "optimal"), and none trusted is a failure."""
    q, A, b, _ = _small_lp()
    soc = [clarabel.SecondOrderConeT(3)]
    gap_tol, calls = 1e-6, []
    errors = {None: 10.0, 100: 10.0, 0: 0.0}  # dual errors by equilibration setting

    def fake_clarabel(q, A, b, cones, gap_tol, P=None, equilibration=None):
        calls.append(equilibration)
        return conic.ConicSolution("almost", np.zeros(2), 0.5, errors[equilibration])

    monkeypatch.setattr(conic, "clarabel_solve", fake_clarabel)
    out = conic.solve_program(q, A, b, soc, gap_tol)
    assert calls == [None, *conic.RETRY_EQUILIBRATION] and out.status == "optimal"
    assert out.dual == 0.5
    errors[0] = 10.0
    assert conic.solve_program(q, A, b, soc, gap_tol).status == "failed"
    errors[None] = 0.1 * conic.TRUSTED_DUAL_ERROR * gap_tol  # trusted at once
    calls.clear()
    assert conic.solve_program(q, A, b, soc, gap_tol).status == "optimal" and calls == [None]


def test_solved_untrusted_conic_programs_are_solved_again_to_a_tighter_feasibility(
        monkeypatch):
    """A conic program "solved" with an untrusted dual error is solved once more with
    Clarabel's feasibility tolerance at TIGHT_FEASIBILITY, then with each setting of
    RETRY_EQUILIBRATION; the first trusted answer counts (an "almost solved" one as
    "optimal"). With none trusted, the answer of the smallest dual error counts, its
    bound lowered by that error (weak duality up to r^T x*). A trusted first answer is
    not solved again."""
    q, A, b, _ = _small_lp()
    soc = [clarabel.SecondOrderConeT(3)]
    gap_tol, calls = 1e-6, []
    retry = conic.RETRY_EQUILIBRATION
    answers = {1e-8: ("optimal", 10.0, 1.4), conic.TIGHT_FEASIBILITY: ("almost", 0.1, 1.2)}
    answers.update({e: ("optimal", 50.0, 1.3) for e in retry})

    def fake_clarabel(q, A, b, cones, gap_tol, P=None, tol_feas=1e-8, equilibration=None):
        key = tol_feas if equilibration is None else equilibration
        calls.append(key)
        status, error, dual = answers[key]
        return conic.ConicSolution(status, np.zeros(2), dual, error * gap_tol)

    monkeypatch.setattr(conic, "clarabel_solve", fake_clarabel)
    out = conic.solve_program(q, A, b, soc, gap_tol)  # the tight answer is trusted
    assert calls == [1e-8, conic.TIGHT_FEASIBILITY]
    assert out.status == "optimal" and out.dual == 1.2
    answers[conic.TIGHT_FEASIBILITY] = ("almost", 5.0, 1.2)  # untrusted, the least error
    calls.clear()
    out = conic.solve_program(q, A, b, soc, gap_tol)
    assert calls == [1e-8, conic.TIGHT_FEASIBILITY, *retry]
    assert out.status == "optimal" and out.dual == pytest.approx(1.2 - 5.0 * gap_tol)
    answers[conic.TIGHT_FEASIBILITY] = ("failed", 0.0, None)  # the first's error is least
    assert conic.solve_program(q, A, b, soc, gap_tol).dual == \
        pytest.approx(1.4 - 10.0 * gap_tol)
    answers[retry[-1]] = ("optimal", 0.1 * conic.TRUSTED_DUAL_ERROR, 1.3)  # trusted
    assert conic.solve_program(q, A, b, soc, gap_tol).dual == 1.3
    answers[1e-8] = ("optimal", 0.1 * conic.TRUSTED_DUAL_ERROR, 1.4)  # trusted at once
    calls.clear()
    assert conic.solve_program(q, A, b, soc, gap_tol).dual == 1.4 and calls == [1e-8]


@pytest.mark.parametrize("program", ["hinge", "symmetric"])
def test_programs_from_sparse_rows_equal_the_dense_ones(program):
    """A reduced program built from a sparse block of X's rows (``row_entries`` keeps its
    stored entries) is the program of the same rows densified: the same constraint
    matrix entry by entry, objective and right-hand side (explicit zeros and empty rows
    included)."""
    from fgsm_cvx.families import Gaussian
    from fgsm_cvx.fast import linear_pieces, working_set

    rng = np.random.default_rng(5)
    dense = rng.standard_normal((9, D)) * (rng.random((9, D)) < 0.4)
    dense[2] = 0.0  # an empty row
    rows = sp.csr_matrix(dense)
    rows.data[0] = 0.0  # an explicit zero
    z = np.where(rng.random(9) < 0.5, -1.0, 1.0)
    w = rng.random(9) / 9
    template = conic.support_template(fc.L2(), D)
    lin = (0.3, rng.standard_normal(D), 0.2, 0.1)

    def build(r):
        if program == "hinge":
            return working_set._program(r, z, w, 0.4, 0.6, lin, template, 0.5, False,
                                        True, None, 0.0)
        return linear_pieces._program(r, 2.0 * z, w, Gaussian(), 0.4, lin, template, 0.5,
                                      0.0, True, None, 0.7)

    sparse, dense = build(rows), build(rows.toarray())
    for a, b in zip(sparse, dense, strict=True):
        if sp.issparse(a):
            np.testing.assert_array_equal(a.toarray(), b.toarray())
        elif isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)
        elif isinstance(a, list):
            assert [(type(c), c.dim) for c in a] == [(type(c), c.dim) for c in b]
        else:
            assert a == b


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_program_rows_keep_sparsity_uncentred(fit_intercept):
    """``Model.program_rows`` on sparse X: the CSR rows s X[idx], uncentred, with the
    centre c (None without an intercept). The program's columns (beta, b) with b = b_c -
    c^T beta give the same predictors as the centred rows with b_c, and its linear part
    (``uncentred``) the same value, for any beta and b_c."""
    from fgsm_cvx.fast.model import Model, centred_intercept, fast_scaling, uncentred

    X = sp.random(40, D, density=0.3, random_state=1, format="csr") * 1e3
    y = np.random.default_rng(2).standard_normal(40)
    prob = fc.AdversarialProblem(X, y, eps=0.1, fit_intercept=fit_intercept)
    model = Model(prob, fast_scaling(prob))
    idx = np.array([3, 0, 17, 17])
    rows, c = model.program_rows(idx)
    assert sp.issparse(rows) and (c is None) == (not fit_intercept)
    np.testing.assert_allclose(rows.toarray(), X[idx].toarray() * model.scale, rtol=1e-15)
    rng = np.random.default_rng(3)
    beta, b_c = rng.standard_normal(D), float(rng.standard_normal())
    b = b_c - (0.0 if c is None else float(c @ beta))  # the program's intercept
    np.testing.assert_allclose(rows @ beta + b, model.rows(idx) @ beta + b_c, rtol=1e-10)
    assert centred_intercept(beta, b, c) == pytest.approx(b_c, rel=1e-12)
    lin = (0.3, rng.standard_normal(D), 0.7, 0.2)
    const, g_beta, g_b, _ = uncentred(lin, c)
    assert const + g_beta @ beta + g_b * b == pytest.approx(
        lin[0] + lin[1] @ beta + lin[2] * b_c, rel=1e-12)
