"""The fast path on other engines: dask (threads and a distributed cluster), the array API
reference implementation (array_api_strict, which proves the code namespace-generic), and
CuPy / torch on a GPU when one is present.

The reference for every engine is the same problem solved on numpy (the same algorithm:
the objectives agree to rounding, asserted at 1e-8 relative) and, on the small data, the
cvxpy backend (an independent solver: 1e-6 relative, as in test_fast.py).
"""

import json

import numpy as np
import pytest
from conftest import FAMILY_CASES, make_y

import fgsm_cvx as fc
from fgsm_cvx.engine import engine_name

da = pytest.importorskip("dask.array")
xps = pytest.importorskip("array_api_strict")

N, D, CHUNK = 600, 5, 150  # four row chunks


def _data(family_id, n=N, d=D, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = make_y(family_id, X @ np.array([0.8, -0.5, 0.0, 0.3, 0.0][:d]), rng)
    return X, y


def _dask(X, chunk=CHUNK):
    return da.from_array(X, chunks=(chunk, X.shape[1]))


def _gpu_arrays():
    """(name, to_device) for every GPU library importable here with a device present."""
    out = []
    try:
        import torch

        if torch.cuda.is_available():
            out.append(("torch", lambda X: torch.asarray(X, device="cuda")))
    except ImportError:
        pass
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            out.append(("cupy", cupy.asarray))
    except Exception:  # ImportError, or CUDA without a device / driver
        pass
    return out


ENGINES = {
    "dask": _dask,
    "array_api_strict": xps.asarray,
}
GPU = dict(_gpu_arrays())


def _problem(X, y, family_id, **kwargs):
    kwargs.setdefault("eps", 0.05)
    return fc.AdversarialProblem(X, y, family=FAMILY_CASES[family_id](), **kwargs)


@pytest.mark.parametrize("engine", list(ENGINES))
def test_engines_give_the_numpy_solution(family_id, engine):
    """Same objective as numpy to 1e-8 relative, and both within 1e-6 of cvxpy."""
    X, y = _data(family_id)
    ref = fc.solve(_problem(X, y, family_id), backend="fast")
    res = fc.solve(_problem(ENGINES[engine](X), y, family_id), backend="fast")
    assert res.engine == engine and res.certificate.engine == engine
    assert ref.engine == "numpy"
    assert res.objective == pytest.approx(ref.objective, rel=1e-8)
    np.testing.assert_allclose(res.coef, ref.coef, atol=1e-6 * (1 + np.abs(ref.coef).max()))
    exact = fc.solve(_problem(X, y, family_id), backend="cvxpy", solver="CLARABEL", tol=1e-9)
    assert res.objective == pytest.approx(exact.objective, rel=1e-6, abs=1e-10)


@pytest.mark.parametrize("engine", list(ENGINES))
def test_engines_take_an_asymmetric_box(engine):
    """The two-shift form (a Box, and a Masked box) is namespace-generic: the numpy
    solution to 1e-8 relative (every family on array_api_strict; dask, whose iterations
    cost a graph each, a smooth and a kinked family), at alpha = 0 (a weighted l-inf
    ball with the intercept moved) and, for the logistic and Poisson losses, at
    alpha = 0.5 (two shifts: Newton's pass on the box's orthants, four products)."""
    boxes = [fc.Box(-0.3, np.linspace(0.5, 1.5, D)), fc.Masked(fc.Box(0.0, 1.0), [0, 3])]
    families = list(FAMILY_CASES) if engine != "dask" else ["binomial", "huber"]
    for family_id in families:
        X, y = _data(family_id)
        alphas = (0.0, 0.5) if family_id in ("binomial", "poisson") else (0.0,)
        for box in boxes if engine != "dask" else boxes[:1]:
            for alpha in alphas:
                ref = fc.solve(_problem(X, y, family_id, perturbation=box, alpha=alpha),
                               backend="fast")
                res = fc.solve(_problem(ENGINES[engine](X), y, family_id, perturbation=box,
                                        alpha=alpha), backend="fast")
                assert res.engine == engine
                assert res.objective == pytest.approx(ref.objective, rel=1e-8)


@pytest.mark.parametrize("engine", list(GPU) or ["none"])
def test_gpu_engines_give_the_numpy_solution(engine):
    """CuPy / torch on a GPU (skipped without one): same objective to 1e-8 relative."""
    if engine == "none":
        pytest.skip("no GPU array library with a device (torch with CUDA, or cupy)")
    for family_id in ("binomial", "gaussian", "poisson"):
        X, y = _data(family_id)
        ref = fc.solve(_problem(X, y, family_id), backend="fast")
        res = fc.solve(_problem(GPU[engine](X), y, family_id), backend="auto")
        assert res.backend == "fast" and res.engine == engine
        assert res.objective == pytest.approx(ref.objective, rel=1e-8)


def test_dask_options_weights_alpha_penalty_no_intercept():
    """Weights, the clean mix, a norm penalty (an L2 set) and no intercept on dask."""
    X, y = _data("huber")
    w = np.random.default_rng(1).uniform(0.2, 2.0, N)
    kwargs = {"sample_weight": w, "alpha": 0.3, "fit_intercept": False,
              "perturbation": "l2"}
    ref = fc.solve(_problem(X, y, "huber", **kwargs), backend="fast")
    res = fc.solve(_problem(_dask(X), y, "huber", **kwargs), backend="fast")
    assert res.objective == pytest.approx(ref.objective, rel=1e-8)
    assert res.intercept == 0.0


def test_non_convex_penalty_by_lla_on_dask():
    """SCAD through the local linear approximation: each step a weighted-FGSM problem on
    the same engine (auto picks the fast path for the dask steps)."""
    from fgsm_cvx.penalties import SCAD

    X, y = _data("gaussian")
    ref = fc.solve(_problem(X, y, "gaussian", penalty=SCAD()), backend="fast")
    res = fc.solve(_problem(_dask(X), y, "gaussian", penalty=SCAD()))
    assert res.engine == "dask" and res.n_lla_steps == ref.n_lla_steps
    assert res.objective == pytest.approx(ref.objective, rel=1e-8)


def test_badly_scaled_float32_dask_matches_numpy():
    """x_scale comes from the validation's reduction; float32 chunks are converted as read."""
    X, y = _data("binomial")
    X = (X * 1e4).astype(np.float32)
    ref_prob = _problem(X, y, "binomial", eps=5e-6)
    prob = _problem(_dask(X), y, "binomial", eps=5e-6)
    assert prob.x_scale == ref_prob.x_scale != 1.0
    ref, res = fc.solve(ref_prob, backend="fast"), fc.solve(prob, backend="fast")
    assert res.objective == pytest.approx(ref.objective, rel=1e-8)


def test_objectives_and_eps_max_are_evaluated_on_the_engine():
    X, y = _data("poisson")
    ref, prob = _problem(X, y, "poisson", alpha=0.2), _problem(_dask(X), y, "poisson", alpha=0.2)
    coef = np.array([0.1, -0.2, 0.0, 0.3, 0.05])
    assert fc.robust_objective(prob, coef, 0.1) == pytest.approx(
        fc.robust_objective(ref, coef, 0.1), rel=1e-12)
    assert fc.fgsm_objective(prob, coef, 0.1) == pytest.approx(
        fc.fgsm_objective(ref, coef, 0.1), rel=1e-12)
    assert fc.eps_max(prob) == pytest.approx(fc.eps_max(ref), rel=1e-12)


def test_result_records_the_engine_and_round_trips():
    X, y = _data("gaussian")
    res = fc.solve(_problem(_dask(X), y, "gaussian"), backend="fast")
    assert "on dask" in str(res.certificate)
    back = fc.Result.from_dict(json.loads(json.dumps(res.to_dict())))
    assert back.engine == "dask" and back.certificate.engine == "dask"
    old = res.to_dict()  # a dictionary written before engines existed
    del old["engine"], old["certificate"]["engine"]
    assert fc.Result.from_dict(old).engine == "numpy"
    assert fc.solve(_problem(X, y, "gaussian"), backend="cvxpy").engine == "numpy"


@pytest.mark.parametrize("engine", list(ENGINES))
def test_cvxpy_refuses_engine_arrays_and_auto_picks_fast(engine):
    """The DCP program would gather X: cvxpy refuses, naming the fast backend; "auto"
    sends such X to the fast path even when it is small (n d < AUTO_FAST_SIZE)."""
    X, y = _data("gaussian")
    prob = _problem(ENGINES[engine](X), y, "gaussian")
    with pytest.raises(TypeError, match=r"cvxpy backend needs X as a numpy.*backend='fast'"):
        fc.solve(prob, backend="cvxpy")
    assert fc.solve(prob, backend="auto").backend == "fast"


def test_validation_of_dask_input():
    X, y = _data("gaussian")
    bad = X.copy()
    bad[N - 1, 0] = np.nan  # in the last chunk: found by the one reduction over X
    with pytest.raises(ValueError, match="NaN or infinity"):
        _problem(_dask(bad), y, "gaussian")
    with pytest.raises(TypeError, match="real"):
        _problem(_dask(X.astype(np.complex128)), y, "gaussian")
    with pytest.raises(ValueError, match="2-d"):
        _problem(da.from_array(X[:, 0]), y, "gaussian")
    with pytest.raises(ValueError, match="entries but X has"):
        _problem(_dask(X), y[:-1], "gaussian")
    # y given as a dask array is computed to the host (n numbers)
    res = fc.solve(_problem(_dask(X), da.from_array(y, chunks=CHUNK), "gaussian"),
                   backend="fast")
    assert res.engine == "dask"


def test_separable_classes_are_detected_on_dask():
    """The no-minimiser proof (every robust margin positive) runs as one reduction."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((N, 2))
    y = (X[:, 0] > 0).astype(float)
    X[:, 0] += np.where(y > 0, 1.0, -1.0)  # a gap of 2 in the first feature
    with pytest.raises(fc.SolverError, match="separable"):
        fc.solve(fc.AdversarialProblem(_dask(X), y, family="binomial", eps=0.01),
                 backend="fast", max_iter=500)


def test_estimators_fit_and_predict_on_dask():
    X, y = _data("binomial")
    ref = fc.AdversarialClassifier(eps=0.05, backend="fast").fit(X, y)
    clf = fc.AdversarialClassifier(eps=0.05).fit(_dask(X), y)  # auto: fast on dask
    assert clf.result_.engine == "dask" and clf.n_features_in_ == D
    assert clf.result_.objective == pytest.approx(ref.result_.objective, rel=1e-8)
    np.testing.assert_array_equal(clf.predict(_dask(X)), ref.predict(X))
    assert clf.score(_dask(X), y) == pytest.approx(ref.score(X, y))
    Xr, yr = _data("poisson")
    reg = fc.AdversarialRegressor(family="poisson", eps=0.05).fit(_dask(Xr), yr)
    ref = fc.AdversarialRegressor(family="poisson", eps=0.05, backend="fast").fit(Xr, yr)
    assert reg.result_.objective == pytest.approx(ref.result_.objective, rel=1e-8)
    np.testing.assert_allclose(reg.predict(_dask(Xr)), ref.predict(Xr), rtol=1e-6)
    with pytest.raises(ValueError, match="features"):
        reg.predict(_dask(Xr[:, :3]))
    # a column-vector y: scikit-learn's warning, as on numpy X, and the same fit
    from sklearn.exceptions import DataConversionWarning

    with pytest.warns(DataConversionWarning, match="column-vector y"):
        column = fc.AdversarialRegressor(family="poisson", eps=0.05).fit(_dask(Xr), yr[:, None])
    assert column.result_.objective == pytest.approx(reg.result_.objective, rel=1e-12)


def test_penalized_twin_on_dask():
    """The penalised likelihood shares the FISTA core: it runs on dask too."""
    X, y = _data("binomial")
    ref = fc.penalized_fit(X, y, family="binomial", penalty="l1", lam=0.02, backend="fast")
    res = fc.penalized_fit(_dask(X), y, family="binomial", penalty="l1", lam=0.02)
    assert res.backend == "fast" and res.engine == "dask"
    assert res.objective == pytest.approx(ref.objective, rel=1e-8)


def test_dask_distributed_cluster_gives_the_same_solution():
    """Two workers (in this process, to keep the test quick; the functions that travel to
    worker processes pickle, see below): X's chunks and the persisted predictors live on
    the workers, only beta, the d-sized partial sums of X^T g and scalars travel."""
    distributed = pytest.importorskip("dask.distributed")
    X, y = _data("binomial")
    ref = fc.solve(_problem(X, y, "binomial"), backend="fast")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        Xd = _dask(X).persist()  # the chunks are scattered to the workers
        res = fc.solve(_problem(Xd, y, "binomial"), backend="fast")
    assert res.engine == "dask"
    assert res.objective == pytest.approx(ref.objective, rel=1e-8)
    np.testing.assert_allclose(res.coef, ref.coef, atol=1e-8)


def test_per_sample_work_travels_to_workers():
    """What a dask task carries to a worker pickles: the per-sample function (the family
    and four numbers) and the block functions, not the problem or X."""
    import pickle

    from fgsm_cvx.fast.model import Model

    X, y = _data("huber")
    prob = _problem(_dask(X), y, "huber", alpha=0.2)
    fn = Model(prob, prob.scaling)._fn(0.1, 0.2, 1e-3, True, True)
    assert len(pickle.dumps(fn)) < 2000
    sums, g = pickle.loads(pickle.dumps(fn))(np, X[:10] @ np.ones(D), y[:10], np.ones(10))
    assert len(sums) == 3 and g.shape == (10,)


def test_engine_names():
    import scipy.sparse as sp

    X = np.ones((2, 2))
    assert [engine_name(v) for v in (X, sp.csr_matrix(X), _dask(X), xps.asarray(X))] == \
        ["numpy", "scipy.sparse", "dask", "array_api_strict"]
    assert engine_name([[1.0]]) is None


@pytest.mark.parametrize("engine", ["dask", "array_api_strict"])
def test_cv_estimator_on_another_engine_matches_numpy(engine):
    """K-fold CV over the warm-started path on a dask or array API X (folds are row
    subsets of it: ``xp.take`` for the array API, whose standard has no integer-array
    indexing, which array_api_strict refused) picks the same eps_ and refits the same
    coefficients as on numpy with the fast backend; the regressor too."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 4))
    y = (X @ [1.0, -1.0, 0.0, 0.5] + rng.logistic(size=600) > 0).astype(int)
    on_engine = fc.AdversarialClassifierCV(n_eps=4, cv=3).fit(ENGINES[engine](X), y)
    on_numpy = fc.AdversarialClassifierCV(n_eps=4, cv=3, backend="fast").fit(X, y)
    assert on_engine.eps_ == pytest.approx(on_numpy.eps_, rel=1e-12)
    np.testing.assert_allclose(on_engine.coef_, on_numpy.coef_, rtol=1e-8, atol=1e-10)
    t = X @ [1.0, 0.0, -0.5, 0.0] + rng.standard_normal(600)
    on_engine = fc.AdversarialRegressorCV(n_eps=3, cv=2).fit(ENGINES[engine](X), t)
    on_numpy = fc.AdversarialRegressorCV(n_eps=3, cv=2, backend="fast").fit(X, t)
    assert on_engine.eps_ == pytest.approx(on_numpy.eps_, rel=1e-12)
    np.testing.assert_allclose(on_engine.coef_, on_numpy.coef_, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("engine", list(ENGINES))
@pytest.mark.parametrize("family", ["gaussian", "poisson"])
def test_pinned_step_on_other_engines(engine, family, monkeypatch):
    """The pinned step (fast/kinks.py: rows fetched from the engine, the reference signs
    placed on it) certifies the same solution on dask and array API arrays as on
    numpy; tried after every stage here."""
    import fgsm_cvx.fast.kinks as kinks
    import fgsm_cvx.fast.solver as fast_solver

    monkeypatch.setattr(fast_solver, "PINNED_MIN_WORK", 0)
    calls, original = [], kinks.pinned_newton

    def recorded(*args, **kwargs):
        out = original(*args, **kwargs)
        calls.append(out[4])
        return out

    monkeypatch.setattr(kinks, "pinned_newton", recorded)
    X, y = _data(family)
    ref = fc.solve(_problem(X, y, family, eps=0.2), backend="fast")
    assert calls and calls[-1]
    calls.clear()
    res = fc.solve(_problem(ENGINES[engine](X), y, family, eps=0.2), backend="fast")
    assert calls and calls[-1] and res.engine == engine
    assert res.objective == pytest.approx(ref.objective, rel=1e-10)
    np.testing.assert_allclose(res.coef, ref.coef, atol=1e-9 * (1 + np.abs(ref.coef).max()))


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_newton_pass_on_sparse_x_is_one_block(fmt, monkeypatch):
    """A sparse X is read as one block by the Newton pass: blocks sized for dense X (2^17
    entries: 6 rows at d = 20000) made a pass on a TF-IDF matrix cost ~10^4 X^T (X v)
    passes (each block's d x 3 product and length-3d sums; O(nnz) row slices of CSC).
    The pass equals the dense one."""
    import scipy.sparse as sp

    from fgsm_cvx import engine as E

    calls = []
    block = E._block_second_order
    monkeypatch.setattr(E, "_block_second_order",
                        lambda *a, **k: calls.append(1) or block(*a, **k))
    # (a Generator: with an integer seed scipy draws the positions by the legacy
    # RandomState's choice, 12 s at this size against 0.05)
    X = sp.random(3000, 20000, density=0.002, format=fmt,
                  random_state=np.random.default_rng(0))

    def fn(xp, eta, w):  # sums, G = (w eta, w, w), Gram weights w
        return [xp.sum(w * eta)], [w * eta, w, w], w

    w = np.random.default_rng(0).uniform(0.5, 1.5, 3000)
    beta = np.random.default_rng(1).standard_normal(20000)
    cols = np.arange(0, 20000, 400)
    sparse = E.HostEngine(X).second_order(fn, beta, w, cols=cols, n_sums=1)
    assert len(calls) == 1
    dense = E.HostEngine(X.toarray()).second_order(fn, beta, w, cols=cols, n_sums=1)
    for a, b in zip(sparse, dense, strict=True):
        np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                                   rtol=1e-10, atol=1e-12)


def test_gaussian_on_wide_sparse_x_caches_no_d_by_d_gram():
    """The gaussian loss's Newton pass reads X^T W X from a cache of d^2 entries; for a
    sparse X of 20000 x 5000 with 1.5e5 nonzeros that was 200 MB (and KKT solves on
    working sets of ~1500: 8 s, 0.9 GB). Such X now forms the Gram matrix of the working
    set each pass: the solve allocates a few MB; a smaller such problem agrees with
    Clarabel."""
    import tracemalloc

    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    # (a Generator: with an integer seed scipy draws the positions by the legacy
    # RandomState's choice, 12 s at this size against 0.05)
    X = sp.random(20000, 5000, density=0.0015, format="csr", random_state=rng)
    beta = np.zeros(5000)
    beta[:20] = rng.normal(0, 3, 20)
    y = np.asarray(X @ beta).ravel() + 0.3 * rng.standard_normal(20000)
    p0 = fc.AdversarialProblem(X, y, perturbation="linf")
    prob = p0.with_params(eps=0.1 * fc.eps_max(p0))
    tracemalloc.start()
    try:
        fc.solve(prob, backend="fast")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20
    small = fc.AdversarialProblem(X[:2000, :300], y[:2000], perturbation="linf")
    small = small.with_params(eps=0.1 * fc.eps_max(small))
    ref = fc.solve(small, backend="cvxpy", solver="CLARABEL", tol=1e-10)
    assert fc.solve(small, backend="fast").objective == pytest.approx(ref.objective, rel=1e-6)


def test_float32_x_is_copied_to_float64_once():
    """Float32 X: the engine's float64 copy is the one copy; the certificate's objective
    (X coef) upcast the whole of X again (a second float64 copy at the peak), as does
    linear_predictor on a problem the fast path never saw (now a block of rows at a
    time). The predictors are the float64 product's."""
    import tracemalloc

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40000, 25))
    y = (X @ rng.standard_normal(25) + rng.standard_normal(40000) > 0).astype(float)
    X32 = X.astype(np.float32)
    coef = rng.standard_normal(25)
    fresh = fc.AdversarialProblem(X32, y, family="binomial", eps=0.05)
    prob = fc.AdversarialProblem(X32, y, family="binomial", eps=0.05)
    assert prob.engine.X.dtype == np.float64  # (the one float64 copy, made first)
    tracemalloc.start()
    try:
        eta = fresh.linear_predictor(coef, 0.5)
        lone = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        fc.solve(prob, backend="fast")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    copy = X.nbytes  # one float64 X
    assert lone < 0.2 * copy and peak < 0.8 * copy, (lone / copy, peak / copy)
    np.testing.assert_allclose(eta, X32.astype(np.float64) @ coef + 0.5, rtol=1e-12)


@pytest.mark.parametrize("engine", list(ENGINES))
def test_hinge_eps_max_on_another_engine(engine):
    """Hinge's eps_max with equal class weights (or no intercept) is the norm of one
    X^T v: the same on dask and array API X as on numpy. With unequal classes it is a
    program over the heavier class's rows, which needs X in memory: a TypeError that
    says to pass the radii (it advised backend='fast', which eps_max does not take and
    the path's caller had already chosen)."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((200, 4))
    y = np.r_[np.ones(100), -np.ones(100)]
    for kw in ({}, {"fit_intercept": False}):
        on_host = fc.eps_max(fc.AdversarialProblem(X, y, family="hinge", **kw))
        elsewhere = fc.eps_max(fc.AdversarialProblem(ENGINES[engine](X), y, family="hinge",
                                                     **kw))
        assert elsewhere == pytest.approx(on_host, rel=1e-12)
    unequal = np.r_[np.ones(120), -np.ones(80)]
    prob = fc.AdversarialProblem(ENGINES[engine](X), unequal, family="hinge")
    with pytest.raises(TypeError, match=r"pass the radii") as err:
        fc.eps_max(prob)
    assert "backend='fast'" not in str(err.value)
    path = fc.adversarial_path(prob, eps=[0.2, 0.05], backend="fast", verbose=False)
    assert path.coefs.shape == (2, 4)
