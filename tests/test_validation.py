"""Bad input gets a clear ValueError/TypeError before any solver runs.

Each row: (case id, callable building the bad input, exception type, message fragment).
"""

import numpy as np
import pytest
import scipy.sparse as sp

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


def _sparse_nan():
    Z = sp.csr_matrix(X)
    Z.data[0] = np.nan
    return Z


def _inf_y():
    v = y_real.copy()
    v[2] = np.inf
    return v


CASES = [
    ("nan_X", lambda: P(X=_nan_X()), ValueError, "X contains NaN"),
    ("inf_y", lambda: P(y=_inf_y()), ValueError, "y contains NaN or infinity"),
    ("X_1d", lambda: P(X=X[:, 0]), ValueError, "2-d array"),
    # (sums of squares overflow / underflow: a hang, and wrong answers called optimal)
    ("X_huge", lambda: P(X=X * 1e155), ValueError, "largest entry is"),
    ("X_tiny", lambda: P(X=X * 1e-165), ValueError, "rescale X"),
    ("X_huge_sparse", lambda: P(X=sp.csr_matrix(X) * 1e120), ValueError, "largest entry"),
    ("X_empty", lambda: P(X=X[:0], y=y_real[:0]), ValueError, "no samples"),
    ("X_object", lambda: P(X=X.astype(object)), TypeError, "X must be numeric"),
    ("X_strings", lambda: P(X=np.full((20, 3), "a")), TypeError, "X must be numeric"),
    ("X_timedelta", lambda: P(X=X.astype("m8[s]")), TypeError, "X must be numeric"),
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
    ("custom_build_returns_none", lambda: P(perturbation=fc.CustomSet(lambda d: None)),
     TypeError, "must return a cvxpy constraint or a non-empty list"),
    ("custom_build_returns_number", lambda: P(perturbation=fc.CustomSet(lambda d: [d <= 1, 3])),
     TypeError, "must return a cvxpy constraint or a non-empty list"),
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
    # --- issue 8: the remaining gaps of the core API -----------------------------------
    ("inf_X", lambda: P(X=np.where(np.arange(3) == 1, np.inf, X)), ValueError,
     "X contains NaN or infinity"),
    ("X_no_features", lambda: P(X=X[:, :0]), ValueError, "no features"),
    ("X_3d", lambda: P(X=X.reshape(20, 3, 1)), ValueError, "2-d array"),
    ("X_ragged", lambda: P(X=[[1.0, 2.0], [3.0]], y=[1.0, 2.0]), ValueError,
     "rows of equal length"),
    ("X_complex", lambda: P(X=X + 1j), TypeError, "X must be real"),
    ("X_datetime", lambda: P(X=np.zeros((20, 3), dtype="datetime64[s]")), TypeError,
     "X must be numeric"),
    ("X_sparse_nan", lambda: P(X=_sparse_nan()), ValueError, "X contains NaN"),
    ("X_sparse_empty", lambda: P(X=sp.csr_matrix((0, 3)), y=y_real[:0]), ValueError,
     "no samples"),
    ("y_nan", lambda: P(y=np.where(y_real > 1, np.nan, y_real)), ValueError, "y contains NaN"),
    ("y_complex", lambda: P(y=y_real + 1j), TypeError, "y must be real"),
    ("y_object_numbers", lambda: P(y=y_real.astype(object)), ValueError, "numeric response"),
    ("y_labels_with_none", lambda: P(y=np.array(["a", None] * 10, dtype=object),
                                     family="binomial"), ValueError, "missing values"),
    ("y_scalar", lambda: P(y=1.0), ValueError, "y must be 1-d"),
    ("binomial_one_class_with_weight", lambda: P(y=y_bin, family="binomial",
                                                 sample_weight=y_bin.astype(float)),
     ValueError, "both classes among the samples with positive sample_weight"),
    ("poisson_positive_counts_zero_weight", lambda: P(y=np.where(y_bin == 1, y_count, 0.0),
                                                      family="poisson",
                                                      sample_weight=1.0 - y_bin),
     ValueError, "positive count y among the samples with positive sample_weight"),
    ("hinge_non_numeric_three", lambda: P(y=np.array(list("abc") * 7)[:20], family="hinge"),
     ValueError, "exactly two classes"),
    ("weights_2d", lambda: P(sample_weight=np.ones((4, 5))), ValueError,
     "sample_weight must be 1-d"),
    ("weights_strings", lambda: P(sample_weight=np.array(["1"] * 20)), TypeError,
     "sample_weight must be numeric"),
    ("weights_inf", lambda: P(sample_weight=np.full(20, np.inf)), ValueError,
     "sample_weight contains NaN or infinity"),
    ("eps_inf", lambda: P(eps=np.inf), ValueError, "eps must be finite"),
    ("eps_bool", lambda: P(eps=True), TypeError, "eps must be a real number"),
    ("alpha_nan", lambda: P(alpha=np.nan), ValueError, "alpha must be finite"),
    ("with_params_eps", lambda: P().with_params(eps=-1.0), ValueError, "eps must be in [0.0"),
    ("fit_intercept_string", lambda: P(fit_intercept="no"), TypeError,
     "fit_intercept must be True or False"),
    ("p_minus_inf", lambda: fc.Lp(-np.inf), ValueError, "p must be"),
    ("p_nan", lambda: fc.Lp(np.nan), ValueError, "p must be finite"),
    ("p_string", lambda: fc.Lp("two"), TypeError, "p must be a real number"),
    ("group_p_below_one", lambda: fc.Group([[0, 1]], p=0.5), ValueError, "p must be in [1.0"),
    ("p_beyond_double_precision", lambda: fc.Lp(1e4), ValueError,
     "p must be 1, inf or in [1.004, 250], got 10000"),
    ("p_next_to_one", lambda: fc.Lp(1.0001), ValueError, "use p=1 "),
    ("group_labels_all_negative", lambda: fc.Group(np.array([-1, -1, -1])), ValueError,
     "groups must contain at least one group"),
    ("group_p_beyond", lambda: fc.Group([[0, 1]], p=2000.0), ValueError, "use p=inf "),
    ("q_beyond", lambda: fc.penalties.Lq(1e4), ValueError, "q must be 1, inf or in"),
    ("q_below_one", lambda: fc.penalties.Lq(0.9), ValueError, "q must be in [1.0"),
    ("r_zero", lambda: fc.penalties.Lr(0.0), ValueError, "r must be in (0.0"),
    ("huber_threshold", lambda: fc.Huber(threshold=0.0), ValueError, "threshold must be in (0"),
    ("scales_2d", lambda: fc.WeightedLinf(np.ones((3, 1))), ValueError, "scales must be 1-d"),
    ("scales_nan", lambda: fc.WeightedLinf([1.0, np.nan, 1.0]), ValueError,
     "scales contains NaN"),
    ("box_strings", lambda: fc.Box(["a"], [1.0]), ValueError, "Box lower and upper must be"),
    ("box_nan", lambda: fc.Box([-1.0, np.nan, -1.0], 1.0), ValueError,
     "Box lower must be a finite"),
    ("ellipsoid_1d", lambda: fc.Ellipsoid(np.ones(3)), ValueError, "Ellipsoid A must be"),
    ("ellipsoid_strings", lambda: fc.Ellipsoid([["a"]]), ValueError, "Ellipsoid A must be"),
    ("group_labels_float", lambda: fc.Group(np.array([0.0, 1.0, 1.0])), ValueError,
     "integer label array"),
    ("group_empty", lambda: fc.Group([]), ValueError, "at least one group"),
    ("mask_float", lambda: fc.Masked("linf", np.array([0.5, 1.0])), ValueError,
     "mask must be a boolean array"),
    # (the base's scales would follow the sorted order, [0, 3], silently)
    ("mask_unsorted", lambda: fc.Masked(fc.WeightedLinf([1.0, 2.0]), [3, 0]), ValueError,
     "got [3, 0]; pass [0, 3] with the parameters in that order"),
    ("mask_repeated", lambda: fc.Masked("linf", [0, 2, 2]), ValueError,
     "must be increasing, without repeats"),
    ("penalty_dims", lambda: P(penalty=fc.penalties.WeightedL1([1.0, 1.0])), ValueError,
     "scales has length 2, but X has 3 features"),
    ("penalty_type", lambda: P(penalty=3), TypeError, "penalty must be a Penalty"),
    ("constraint_bounds_length", lambda: P(constraints=(np.zeros(2), None)), ValueError,
     "array of length n_features=3"),
    ("constraint_callable_returns_bool", lambda: P(constraints=lambda b, c: True), TypeError,
     "must return a cvxpy constraint"),
    ("solver_not_supported", lambda: fc.solve(P(), solver="GUROBI"), ValueError,
     "solver must be one of ECOS, CLARABEL, SCS"),
    ("solver_not_string", lambda: fc.solve(P(), solver=None), ValueError,
     "solver must be one of"),
    ("solver_name_on_fast_backend", lambda: fc.solve(P(), backend="fast", solver="ecos2"),
     ValueError, "solver must be one of"),
    ("backend_not_string", lambda: fc.solve(P(), backend=None), ValueError,
     "backend must be one of"),
    ("tol_zero", lambda: fc.solve(P(), tol=0.0), ValueError, "tol must be in (0.0, 1.0)"),
    ("tol_nan", lambda: fc.solve(P(), tol=np.nan), ValueError, "tol must be finite"),
    ("tol_string", lambda: fc.solve(P(), tol="1e-8"), TypeError, "tol must be a real number"),
    ("max_iter_zero", lambda: fc.solve(P(), max_iter=0), ValueError,
     "max_iter must be a positive integer"),
    ("max_iter_float", lambda: fc.solve(P(), max_iter=2.5), TypeError,
     "max_iter must be a positive integer"),
    ("max_iter_fast_negative", lambda: fc.solve(P(), backend="fast", max_iter=-5), ValueError,
     "max_iter must be a positive integer"),
    ("warm_start_length", lambda: fc.solve(P(), backend="fast", warm_start=(np.ones(2), 0.0)),
     ValueError, "warm_start coef must be a finite vector of length n_features=3"),
    # (a bare array or a 1-tuple: "too many values to unpack"; a NaN intercept: taken as 0)
    ("warm_start_array", lambda: fc.solve(P(), backend="fast", warm_start=np.ones(3)),
     ValueError, "warm_start must be a Result or a pair (coef, intercept)"),
    ("warm_start_nan_intercept", lambda: fc.solve(P(), backend="fast",
                                                  warm_start=(np.ones(3), np.nan)),
     ValueError, "warm_start intercept must be finite"),
    ("coef_nan", lambda: fc.robust_objective(P(), np.array([1.0, np.nan, 0.0])), ValueError,
     "coef contains NaN"),
    ("coef_2d", lambda: fc.fgsm_objective(P(), np.ones((3, 1))), ValueError, "coef must be 1-d"),
    ("intercept_nan", lambda: fc.robust_objective(P(), np.ones(3), np.nan), ValueError,
     "intercept must be finite"),
    ("worst_case_not_problem", lambda: fc.worst_case_perturbation(X, np.ones(3)), TypeError,
     "prob must be an AdversarialProblem"),
    ("fgsm_perturbation_coef", lambda: fc.fgsm_perturbation(P(), np.ones(4)), ValueError,
     "coef has length 4, expected 3"),
    ("eps_max_not_problem", lambda: fc.eps_max({"X": X}), TypeError,
     "prob must be an AdversarialProblem"),
    ("robust_objective_not_problem", lambda: fc.robust_objective(None, np.ones(3)), TypeError,
     "prob must be an AdversarialProblem"),
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


def test_pandas_nullable_numeric_columns_are_numeric():
    """DataFrames of pandas' nullable dtypes (``Float64``, ``Int64``: what
    ``convert_dtypes()`` gives; ``to_numpy`` makes them object arrays) are taken as
    float64 by the problem, the attacks and the estimators alike (they were refused as
    "not numeric" outside the estimators); a missing value (<NA>) is refused as NaN is,
    and a text column stays refused."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    X = np.round(rng.standard_normal((60, 3)) * 4)
    y = X @ [1.0, -1.0, 0.5] + rng.standard_normal(60)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    want = fc.solve(fc.AdversarialProblem(frame, y, eps=0.1), backend="cvxpy").coef
    for nullable in (frame.astype("Float64"), frame.astype("Int64"), frame.convert_dtypes()):
        prob = fc.AdversarialProblem(nullable, y, eps=0.1)
        assert prob.X.dtype == np.float64
        np.testing.assert_allclose(fc.solve(prob, backend="cvxpy").coef, want, atol=1e-8)
        model = fc.AdversarialRegressor(eps=0.1).fit(nullable, y)
        np.testing.assert_allclose(model.coef_, want, atol=1e-6)
        assert fc.robust_score(model, nullable, y, 0.1) == pytest.approx(
            fc.robust_score(model, frame, y, 0.1))
    missing = frame.astype("Float64")
    missing.iloc[3, 1] = pd.NA
    with pytest.raises(ValueError, match="NaN"):
        fc.AdversarialProblem(missing, y)
    text = frame.assign(c=["x"] * 60)
    with pytest.raises(TypeError, match="numeric"):
        fc.AdversarialProblem(text, y)
    # <NA> in y of the nullable dtypes (boolean, string) or in an object Series: refused
    # as missing (it was taken for a label: "boolean value of NA is ambiguous")
    labels = np.where(y > 0, "a", "b")
    for dtype in ("string", "boolean", object):
        values = labels == "a" if dtype == "boolean" else labels
        series = pd.Series(values, dtype=dtype)
        series[2] = pd.NA
        with pytest.raises(ValueError, match="missing values"):
            fc.AdversarialProblem(frame, series, family="binomial")
        with pytest.raises(ValueError, match="missing values"):
            fc.AdversarialClassifier().fit(frame, series)
    with pytest.raises(ValueError, match="missing values"):
        fc.AdversarialClassifier().fit(frame, np.array(list(labels[:-1]) + [pd.NA], object))


@pytest.mark.parametrize("backend", ["cvxpy", "fast"])
def test_x_scaled_within_the_accepted_range_solves_the_same(backend):
    """X times 1e90 or 1e-90 (inside [1e-100, 1e100]) is the same least-squares problem
    at eps = 0 in rescaled coefficients (coef / 1e90, or times): each backend's answer
    is its answer on X, rescaled."""
    rng = np.random.default_rng(3)
    Z = rng.standard_normal((60, 3))
    v = Z @ [1.0, -2.0, 0.5] + 0.3 * rng.standard_normal(60)
    ref = fc.solve(fc.AdversarialProblem(Z, v, eps=0.0), backend=backend, tol=1e-10)
    for k in (1e90, 1e-90):
        res = fc.solve(fc.AdversarialProblem(Z * k, v, eps=0.0), backend=backend, tol=1e-10)
        np.testing.assert_allclose(res.coef * k, ref.coef, rtol=1e-6)
        assert res.objective == pytest.approx(ref.objective, rel=1e-8)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("layout", ["float64", "float32", "fortran", "csr", "csc"])
def test_each_non_finite_entry_is_refused(value, layout):
    """One NaN, +inf or -inf anywhere in X, dense (either dtype, either order) or sparse,
    is refused: the check reads it from X's maximum and minimum (NaN propagates through
    both; +inf shows in the maximum only, -inf in the minimum only), not from a separate
    pass; a finite X of the same layout is accepted."""
    A = rng.standard_normal((30, 4))
    A[A < 0.5] = 0.0  # (stored entries for the sparse layouts)
    convert = {"float64": np.asarray, "float32": lambda M: M.astype(np.float32),
               "fortran": np.asfortranarray, "csr": sp.csr_matrix, "csc": sp.csc_matrix}
    y = rng.standard_normal(30)
    fc.AdversarialProblem(convert[layout](A), y)  # finite: accepted
    i, j = np.argwhere(A != 0.0)[7]
    A[i, j] = value
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        fc.AdversarialProblem(convert[layout](A), y)
