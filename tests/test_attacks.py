"""Attacks on fitted linear models and robust scores (any model exposing coef_/intercept_)."""

import warnings

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Lasso, LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler
from sklearn.svm import LinearSVC

import fgsm_cvx as fc

SETS = {"linf": fc.Linf(), "l2": fc.L2(), "l1": fc.L1(),
        "box": fc.Box([-1.0, -0.5, 0.0, -2.0], [0.5, 1.0, 1.0, 0.0]),
        "group": fc.Group([[0, 1], [2, 3]])}
_LOWER, _UPPER = np.array([-1.0, -0.5, 0.0, -2.0]), np.array([0.5, 1.0, 1.0, 0.0])
# Membership of u in S (radius 1), written out from each set's definition.
_MEMBER = {
    "linf": lambda u: np.max(np.abs(u)) <= 1 + 1e-9,
    "l2": lambda u: np.linalg.norm(u) <= 1 + 1e-9,
    "l1": lambda u: np.abs(u).sum() <= 1 + 1e-9,
    "box": lambda u: np.all(u >= _LOWER - 1e-9) and np.all(u <= _UPPER + 1e-9),
    "group": lambda u: max(np.linalg.norm(u[:2]), np.linalg.norm(u[2:])) <= 1 + 1e-9,
}


@pytest.fixture(scope="module")
def classification():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 4))
    y = np.where(X @ [1.0, -1.0, 0.5, 0.0] + 0.5 * rng.standard_normal(300) > 0, "b", "a")
    return X, y


@pytest.fixture(scope="module")
def regression():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 4))
    return X, X @ [2.0, -1.0, 0.0, 0.5] + 0.3 + 0.5 * rng.standard_normal(200)


def _classifiers(X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # (Pipelines of affine scalers: the attack acts on their inputs)
        return [LogisticRegression().fit(X, y), LinearSVC().fit(X, y),
                fc.AdversarialClassifier(eps=0.1).fit(X, y),
                make_pipeline(MinMaxScaler(), "passthrough", LogisticRegression()).fit(X, y),
                make_pipeline(StandardScaler(), fc.AdversarialClassifier(eps=0.1)).fit(X, y)]


def _regressors(X, y):
    return [Lasso(alpha=0.05).fit(X, y), Ridge().fit(X, y),
            fc.AdversarialRegressor(eps=0.1).fit(X, y),
            make_pipeline(RobustScaler(), MaxAbsScaler(), Ridge()).fit(X, y),
            make_pipeline(StandardScaler(with_mean=False), fc.AdversarialRegressor(
                family="poisson", eps=0.05)).fit(X, np.exp(0.3 * X[:, 0]))]


def _random_ball_points(name, eps, d, rng, k):
    """Random points of eps*S (projections of random vectors, many on the boundary)."""
    out = []
    for _ in range(k):
        u = SETS[name].project(rng.standard_normal(d) * rng.uniform(0, 3))
        assert _MEMBER[name](u)
        out.append(eps * u)
    return np.array(out)


@pytest.mark.parametrize("name", list(SETS))
def test_robust_accuracy_equals_accuracy_on_returned_examples(classification, name):
    X, y = classification
    pert, eps = SETS[name], 0.3
    for model in _classifiers(X, y):
        X_adv = fc.perturb(model, X, y, eps, pert)
        delta = X_adv - X
        assert all(_MEMBER[name](row / eps) for row in delta)
        score = fc.robust_score(model, X, y, eps, pert)
        assert score == pytest.approx(accuracy_score(y, model.predict(X_adv)), abs=1e-12)
        assert score < model.score(X, y)


@pytest.mark.parametrize("name", list(SETS))
def test_no_random_perturbation_does_worse(classification, regression, name):
    rng = np.random.default_rng(5)
    pert, eps = SETS[name], 0.3
    X, y = classification
    for model in _classifiers(X, y):
        worst = fc.robust_score(model, X, y, eps, pert)
        for delta in _random_ball_points(name, eps, 4, rng, 30):
            assert model.score(X + delta, y) >= worst - 1e-12
        # per-sample brute force: a sample counted robust survives every sampled move
        robust = fc.perturb(model, X, y, eps, pert)
        ok = model.predict(robust) == y
        for delta in _random_ball_points(name, eps, 4, rng, 30):
            assert np.all(model.predict(X[ok] + delta) == y[ok])
    X, y = regression
    for model in _regressors(X, y):
        worst = fc.robust_score(model, X, y, eps, pert)
        X_adv = fc.perturb(model, X, y, eps, pert)
        assert worst == pytest.approx(r2_score(y, model.predict(X_adv)), abs=1e-12)
        for delta in _random_ball_points(name, eps, 4, rng, 30):
            assert r2_score(y, model.predict(X + delta)) >= worst - 1e-12


def test_robust_accuracy_closed_form_margin(classification):
    X, y = classification
    model = LogisticRegression().fit(X, y)
    beta, b = model.coef_[0], model.intercept_[0]
    z = np.where(y == "b", 1.0, -1.0)
    eps = 0.2
    # min over the Linf ball of z (x + delta)^T beta + b = z eta - eps ||beta||_1
    margin = z * (X @ beta + b) - eps * np.abs(beta).sum()
    expected = np.mean(np.where(z > 0, margin > 0, margin >= 0))
    assert fc.robust_score(model, X, y, eps) == pytest.approx(expected)


def test_robust_loss_against_per_sample_brute_force(classification):
    X, y = classification
    model = LogisticRegression().fit(X, y)
    rng = np.random.default_rng(6)
    eps = 0.25
    beta, b = model.coef_[0], model.intercept_[0]
    z = np.where(y == "b", 1.0, -1.0)
    moves = np.vstack([_random_ball_points("l2", eps, 4, rng, 200),
                       eps * beta / np.linalg.norm(beta), -eps * beta / np.linalg.norm(beta)])
    sampled = np.max(np.logaddexp(0.0, -z[:, None] * ((X @ beta + b)[:, None]
                                                    + (moves @ beta)[None, :])), axis=1)
    value = fc.robust_score(model, X, y, eps, "l2", metric="loss")
    assert value >= sampled.mean() - 1e-12
    assert value == pytest.approx(sampled.mean(), rel=1e-9)  # the +-beta/|beta| moves attain it


def test_fgsm_method(classification, regression):
    X, y = classification
    logit = LogisticRegression().fit(X, y)
    # FGSM is the exact worst case for logistic loss (l' never changes sign in the ball)
    np.testing.assert_array_equal(fc.perturb(logit, X, y, 0.2, method="fgsm"),
                                  fc.perturb(logit, X, y, 0.2))
    svm = fc.AdversarialClassifier(family="hinge", eps=0.0).fit(X, y)
    fgsm = fc.perturb(svm, X, y, 0.2, method="fgsm")
    margin = np.where(y == "b", 1, -1) * svm.decision_function(X)
    # hinge: sign(l') = 0 beyond the margin, so FGSM leaves those points where they are
    np.testing.assert_array_equal(fgsm[margin > 1], X[margin > 1])
    assert np.all(np.abs(fgsm[margin < 1] - X[margin < 1]).max(axis=1) == pytest.approx(0.2))
    X, y = regression
    ridge = Ridge().fit(X, y)
    exact = fc.perturb(ridge, X, y, 0.2)
    np.testing.assert_allclose(fc.perturb(ridge, X, y, 0.2, method="fgsm"), exact)


def test_sample_weights_and_loss_metric_for_regressors(regression):
    X, y = regression
    model = fc.AdversarialRegressor(eps=0.1).fit(X, y)
    w = np.random.default_rng(7).uniform(0, 2, X.shape[0])
    X_adv = fc.perturb(model, X, y, 0.1)
    assert fc.robust_score(model, X, y, 0.1, sample_weight=w) == pytest.approx(
        r2_score(y, model.predict(X_adv), sample_weight=w))
    prob = fc.AdversarialProblem(X, y, eps=0.1, sample_weight=w)
    assert fc.robust_score(model, X, y, 0.1, metric="loss", sample_weight=w) == pytest.approx(
        fc.robust_objective(prob, model.coef_, model.intercept_), rel=1e-12)


def test_scorer_in_grid_search(classification):
    X, y = classification
    scorer = fc.robust_scorer(0.3)
    search = GridSearchCV(fc.AdversarialClassifier(), {"eps": [0.0, 0.3]}, cv=3,
                          scoring=scorer).fit(X, y)
    assert search.best_params_ == {"eps": 0.3}
    model = search.best_estimator_
    assert scorer(model, X, y) == pytest.approx(fc.robust_score(model, X, y, 0.3))
    # a Pipeline (scaler, then the estimator), its inputs attacked
    pipe = GridSearchCV(make_pipeline(StandardScaler(), fc.AdversarialClassifier()),
                        {"adversarialclassifier__eps": [0.0, 0.3]}, cv=3,
                        scoring=scorer).fit(X, y)
    assert pipe.best_params_ == {"adversarialclassifier__eps": 0.3}
    loss = fc.robust_scorer(0.3, metric="loss")
    assert loss(model, X, y) == pytest.approx(-fc.robust_score(model, X, y, 0.3, metric="loss"))


@pytest.mark.parametrize("call, error, message", [
    (lambda m, X, y: fc.robust_score(object(), X, y, 0.1), TypeError, "exposing coef_"),
    (lambda m, X, y: fc.robust_score(LogisticRegression(), X, y, 0.1), NotFittedError,
     "not fitted yet"),
    (lambda m, X, y: fc.robust_score(make_pipeline(PCA(2), LogisticRegression()).fit(X, y),
                                     X, y, 0.1), TypeError, "step 'pca' is PCA"),
    (lambda m, X, y: fc.robust_score(make_pipeline(MinMaxScaler(clip=True), m).fit(X, y),
                                     X, y, 0.1), TypeError, "not clipping"),
    (lambda m, X, y: fc.robust_score(m, X[:, :3], y, 0.1), ValueError, "has 3 features"),
    (lambda m, X, y: fc.robust_score(m, X, y, -0.1), ValueError, "eps must be in"),
    (lambda m, X, y: fc.robust_score(m, X, y, 0.1, metric="auc"), ValueError, "metric must"),
    (lambda m, X, y: fc.robust_score(m, X, y, 0.1, metric="r2"), ValueError, "needs a regr"),
    (lambda m, X, y: fc.robust_score(m, X, np.where(y == "a", "c", y), 0.1), ValueError,
     "labels the model does not know"),
    (lambda m, X, y: fc.robust_score(m, X, y, 0.1, fc.WeightedLinf([1, 2])), ValueError,
     "scales"),
    (lambda m, X, y: fc.perturb(m, X, y, 0.1, method="pgd"), ValueError, "method must"),
    (lambda m, X, y: fc.robust_score(m, X, y, 0.1, metric="loss", family="poisson"),
     ValueError, "not a classification loss"),
])
def test_bad_arguments(classification, call, error, message):
    X, y = classification
    model = LogisticRegression().fit(X, y)
    with pytest.raises(error, match=message):
        call(model, X, y)


def test_multiclass_models_are_refused():
    rng = np.random.default_rng(8)
    X = rng.standard_normal((60, 3))
    y = rng.integers(0, 3, 60)
    with pytest.raises(ValueError, match="one linear predictor"):
        fc.robust_score(LogisticRegression().fit(X, y), X, y, 0.1)


def test_robust_score_keeps_sparse_inputs_sparse():
    """robust_score on a 20000 x 5000 CSR matrix (0.2% dense; 763 MB as a dense array)
    forms the moved inputs a block of rows at a time: the peak of what it allocates is a
    small fraction of the dense size (it was all of it: X.toarray()), and its scores
    equal those of the same rows as a dense array."""
    import tracemalloc

    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    # (a Generator: with an integer seed scipy draws the positions by the legacy
    # RandomState's choice, 12 s at this size against 0.05)
    X = sp.random(20000, 5000, density=0.002, format="csr", random_state=rng)
    y = np.asarray(X @ rng.standard_normal(5000)).ravel() + 0.1 * rng.standard_normal(20000)
    model = Ridge(alpha=1.0, solver="sparse_cg", max_iter=50).fit(X, y)
    tracemalloc.start()
    try:
        fc.robust_score(model, X, y, 0.01)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 0.2 * X.shape[0] * X.shape[1] * 8
    rows = slice(0, 3000)
    assert fc.robust_score(model, X[rows], y[rows], 0.01) == \
        pytest.approx(fc.robust_score(model, X[rows].toarray(), y[rows], 0.01), rel=1e-12)
    clf = LogisticRegression().fit(X[rows], y[rows] > 0)
    for metric in ("accuracy", "loss"):
        assert fc.robust_score(clf, X[rows], y[rows] > 0, 0.01, metric=metric) == \
            pytest.approx(fc.robust_score(clf, X[rows].toarray(), y[rows] > 0, 0.01,
                                          metric=metric), rel=1e-12)



def test_attacks_check_feature_names_as_scikit_learn_does():
    """A DataFrame's columns are checked against the model's ``feature_names_in_``: in
    another order the attack moved and scored the wrong columns (0.525 against 0.75 for
    a LogisticRegression, silently); in the fitted order no warning (the regressor's
    scores predicted on unnamed arrays: three warnings a call); unnamed X, one warning."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 3))
    y = X @ np.array([1.0, 2.0, 3.0]) + rng.standard_normal(80)
    yc = (X[:, 0] + rng.standard_normal(80) > 0).astype(int)
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    for model, target in ((LogisticRegression().fit(df, yc), yc),
                          (fc.AdversarialRegressor(eps=0.1).fit(df, y), y)):
        with pytest.raises(ValueError, match="feature names"):
            fc.robust_score(model, df[["c", "b", "a"]], target, 0.1)
        with pytest.raises(ValueError, match="feature names"):
            fc.perturb(model, df[["c", "b", "a"]], target, 0.1)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            named = fc.robust_score(model, df, target, 0.1)
            moved = fc.perturb(model, df, target, 0.1)
        with pytest.warns(UserWarning, match="valid feature names"):
            assert fc.robust_score(model, X, target, 0.1) == named
        with pytest.warns(UserWarning, match="valid feature names"):
            np.testing.assert_array_equal(fc.perturb(model, X, target, 0.1), moved)


def test_sparse_coef_of_a_sparsified_model(classification):
    """scikit-learn's ``sparsify()`` makes coef_ a scipy.sparse matrix: attacked as the
    dense model (it raised 'setting an array element with a sequence')."""
    X, y = classification
    dense = LogisticRegression().fit(X, y)
    sparse_model = LogisticRegression().fit(X, y).sparsify()
    assert fc.robust_score(sparse_model, X, y, 0.1) == fc.robust_score(dense, X, y, 0.1)
    np.testing.assert_array_equal(fc.perturb(sparse_model, X, y, 0.1),
                                  fc.perturb(dense, X, y, 0.1))
