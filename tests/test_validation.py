"""Bad input gets a clear ValueError/TypeError before any solver runs.

Each row: (case id, callable building the bad input, exception type, message fragment).
"""

import numpy as np
import pytest

import fgsm_cvx as fc

rng = np.random.default_rng(0)
X = rng.standard_normal((20, 3))
y_real = rng.standard_normal(20)
y_bin = np.tile([0, 1], 10)
y_count = rng.poisson(2.0, 20).astype(float)
y_count[0] = 1.0


def P(**kw):
    args = {"X": X, "y": y_real, "family": "gaussian"}
    args.update(kw)
    return fc.AdversarialProblem(**args)


def _nan_X():
    Z = X.copy()
    Z[3, 1] = np.nan
    return Z


def _inf_y():
    v = y_real.copy()
    v[2] = np.inf
    return v


CASES = [
    ("nan_X", lambda: P(X=_nan_X()), ValueError, "X contains NaN"),
    ("inf_y", lambda: P(y=_inf_y()), ValueError, "y contains NaN or infinity"),
    ("X_1d", lambda: P(X=X[:, 0]), ValueError, "2-d array"),
    ("X_empty", lambda: P(X=X[:0], y=y_real[:0]), ValueError, "no samples"),
    ("X_object", lambda: P(X=X.astype(object)), TypeError, "X must be numeric"),
    ("X_strings", lambda: P(X=np.full((20, 3), "a")), TypeError, "X must be numeric"),
    ("y_length", lambda: P(y=y_real[:-1]), ValueError, "y has 19 entries but X has 20"),
    ("y_2d", lambda: P(y=np.ones((20, 2))), ValueError, "y must be 1-d"),
    ("y_strings_gaussian", lambda: P(y=np.array(["a"] * 20)), ValueError, "numeric response"),
    ("binomial_three_labels", lambda: P(y=np.arange(20) % 3, family="binomial"), ValueError,
     "exactly two classes"),
    ("binomial_one_label", lambda: P(y=np.zeros(20), family="binomial"), ValueError,
     "exactly two classes"),
    ("hinge_one_label", lambda: P(y=np.ones(20), family="hinge"), ValueError,
     "exactly two classes"),
    ("poisson_negative", lambda: P(y=y_real, family="poisson"), ValueError, "y >= 0"),
    ("poisson_all_zero", lambda: P(y=np.zeros(20), family="poisson"), ValueError,
     "at least one positive count"),
    ("unknown_family", lambda: P(family="gamma"), ValueError, "unknown family 'gamma'"),
    ("family_type", lambda: P(family=3), TypeError, "family must be a Family"),
    ("unknown_perturbation", lambda: P(perturbation="l7"), ValueError,
     "unknown perturbation 'l7'"),
    ("perturbation_type", lambda: P(perturbation=object()), TypeError,
     "perturbation must be a Perturbation"),
    ("eps_negative", lambda: P(eps=-0.1), ValueError, "eps must be in [0.0"),
    ("eps_nan", lambda: P(eps=np.nan), ValueError, "eps must be finite"),
    ("eps_string", lambda: P(eps="big"), TypeError, "eps must be a real number"),
    ("alpha_above_one", lambda: P(alpha=1.5), ValueError, "alpha must be in [0.0, 1.0]"),
    ("alpha_negative", lambda: P(alpha=-0.1), ValueError, "alpha must be in [0.0"),
    ("p_below_one", lambda: fc.Lp(0.5), ValueError, "p must be in [1.0"),
    ("weights_length", lambda: P(sample_weight=np.ones(19)), ValueError,
     "sample_weight has 19 entries"),
    ("weights_negative", lambda: P(sample_weight=-np.ones(20)), ValueError,
     "sample_weight must be nonnegative"),
    ("weights_all_zero", lambda: P(sample_weight=np.zeros(20)), ValueError, "positive sum"),
    ("weights_nan", lambda: P(sample_weight=np.full(20, np.nan)), ValueError,
     "sample_weight contains NaN"),
    ("scales_length", lambda: P(perturbation=fc.WeightedLinf([1.0, 2.0])), ValueError,
     "scales has length 2, but X has 3 features"),
    ("scales_negative", lambda: fc.WeightedLinf([1.0, -2.0, 1.0]), ValueError,
     "scales must be nonnegative"),
    ("groups_out_of_range", lambda: P(perturbation=fc.Group([[0, 1], [2, 5]])), ValueError,
     "Group index 5 out of range"),
    ("groups_overlap", lambda: fc.Group([[0, 1], [1, 2]]), ValueError, "groups overlap"),
    ("group_labels_length", lambda: P(perturbation=fc.Group(np.array([0, 0, 1, 1]))),
     ValueError, "Group labels have length 4"),
    ("ellipsoid_rows", lambda: P(perturbation=fc.Ellipsoid(np.eye(2))), ValueError,
     "Ellipsoid A has 2 rows"),
    ("box_excludes_zero", lambda: fc.Box([0.1, -1, -1], [1, 1, 1]), ValueError,
     "lower <= 0 <= upper"),
    ("box_length", lambda: P(perturbation=fc.Box([-1, -1], [1, 1])), ValueError,
     "Box lower has length 2"),
    ("mask_length", lambda: P(perturbation=fc.Masked("linf", [True, False])), ValueError,
     "mask has length 2"),
    ("mask_base_dims", lambda: P(perturbation=fc.Masked(fc.WeightedLinf([1, 1, 1]), [0, 1])),
     ValueError, "scales has length 3, but X has 2 features"),
    ("custom_not_callable", lambda: fc.CustomSet("box"), TypeError, "needs a callable"),
    ("custom_without_zero", lambda: P(perturbation=fc.CustomSet(lambda d: [d >= 1])),
     ValueError, "must contain 0"),
    ("unknown_penalty", lambda: P(penalty="scad"), ValueError, "unknown penalty 'scad'"),
    ("nonconvex_penalty_cvxpy", lambda: fc.cvx.solve_cvxpy(P(penalty=fc.penalties.Lr(0.5))),
     ValueError, "non-convex"),
    ("constraint_bounds_cross", lambda: P(constraints=(1.0, -1.0)), ValueError,
     "infeasible"),
    ("constraint_unknown", lambda: P(constraints="monotone"), ValueError,
     "unknown constraint 'monotone'"),
    ("constraint_type", lambda: P(constraints=3.0), TypeError, "constraints must be"),
    ("solver_unknown", lambda: fc.solve(P(), solver="MOSEK"), ValueError,
     "solver must be one of"),
    ("backend_unknown", lambda: fc.solve(P(), backend="gpu"), ValueError,
     "backend must be one of"),
    ("solve_not_problem", lambda: fc.solve("problem"), TypeError,
     "prob must be an AdversarialProblem"),
    ("coef_length", lambda: fc.robust_objective(P(), np.ones(2)), ValueError,
     "coef has length 2, expected 3"),
    ("intercept_without_fit", lambda: fc.robust_objective(P(fit_intercept=False), np.ones(3), 1.0),
     ValueError, "intercept must be 0"),
]


@pytest.mark.parametrize("build,exc,fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_before_solving(build, exc, fragment, monkeypatch):
    import fgsm_cvx.cvx as cvx_module

    def no_solver(*args, **kwargs):  # any solver call would be a failure of validation
        raise AssertionError("a solver ran before validation")

    monkeypatch.setattr(cvx_module, "formulation", no_solver)
    with pytest.raises(exc) as info:
        build()
    assert fragment in str(info.value)


def test_problem_is_immutable():
    prob = P()
    with pytest.raises(AttributeError, match="immutable"):
        prob.eps = 3.0


def test_labels_are_mapped():
    labels = np.where(y_bin == 1, "spam", "ham")
    prob = fc.AdversarialProblem(X, labels, family="binomial")
    np.testing.assert_array_equal(prob.classes, ["ham", "spam"])
    np.testing.assert_array_equal(prob.y, (labels == "spam").astype(float))
    hinge = fc.AdversarialProblem(X, labels, family="hinge")
    np.testing.assert_array_equal(hinge.y, np.where(labels == "spam", 1.0, -1.0))


def test_sparse_and_pandas_inputs():
    import scipy.sparse as sp

    dense = fc.solve(P(eps=0.05))
    sparse = fc.solve(P(X=sp.csr_matrix(X), eps=0.05))
    np.testing.assert_allclose(sparse.coef, dense.coef, atol=1e-7)
    pd = pytest.importorskip("pandas")
    frame = fc.solve(P(X=pd.DataFrame(X), y=pd.Series(y_real), eps=0.05))
    np.testing.assert_allclose(frame.coef, dense.coef, atol=1e-9)
