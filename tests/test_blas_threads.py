"""The fast path multiplies a small dense X by one BLAS thread (``engine.blas_threads``),
restores the user's setting afterwards, and leaves large, sparse and non-host X alone."""

import numpy as np
import pytest
import scipy.sparse as sp

import fgsm_cvx as fc
from fgsm_cvx import engine as fc_engine

threadpoolctl = pytest.importorskip("threadpoolctl")


def blas_threads_now():
    """The most threads of the BLAS libraries loaded in this process, as a set (empty
    with none: some are built single-threaded, as SCS's is, so the most counts)."""
    counts = [lib["num_threads"] for lib in threadpoolctl.threadpool_info()
              if lib["user_api"] == "blas"]
    return {max(counts)} if counts else set()


@pytest.fixture
def two_threads():
    if not blas_threads_now():
        pytest.skip("no BLAS library that threadpoolctl can see")
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        if blas_threads_now() != {2}:
            pytest.skip("BLAS cannot be set to two threads here")
        yield


def test_small_dense_X_gets_one_thread_and_the_setting_comes_back(two_threads, monkeypatch):
    small = fc_engine.make_engine(np.ones((100, 5)))
    with fc_engine.blas_threads(small):
        assert blas_threads_now() == {1}
    assert blas_threads_now() == {2}
    monkeypatch.setattr(fc_engine, "SINGLE_THREAD_ENTRIES", 499)  # X has 500 entries
    with fc_engine.blas_threads(small):
        assert blas_threads_now() == {2}


def test_sparse_and_array_api_X_are_left_alone(two_threads):
    xps = pytest.importorskip("array_api_strict")
    for X in (sp.random(100, 5, density=0.3, format="csr", random_state=0),
              xps.asarray(np.ones((100, 5)))):
        with fc_engine.blas_threads(fc_engine.make_engine(X)):
            assert blas_threads_now() == {2}


@pytest.mark.parametrize("penalised", [False, True])
def test_fast_solves_run_with_one_thread_on_small_X(two_threads, monkeypatch, penalised):
    """Seen from inside the products of a fast solve and of the penalised twin's."""
    seen = set()
    matvec = fc_engine.HostEngine.matvec

    def spy(self, beta):
        seen.update(blas_threads_now())
        return matvec(self, beta)

    monkeypatch.setattr(fc_engine.HostEngine, "matvec", spy)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 4))
    y = (X[:, 0] + rng.standard_normal(200) > 0).astype(float)
    if penalised:
        fc.penalized_fit(X, y, "binomial", "l1", lam=0.05, backend="fast")
    else:
        fc.solve(fc.AdversarialProblem(X, y, family="binomial", eps=0.05), backend="fast")
    assert seen == {1}
    assert blas_threads_now() == {2}
