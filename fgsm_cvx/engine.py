"""Engines: where the n-sized work of the fast path runs.

The first-order solver only ever touches the design matrix X through two products and a
handful of per-sample maps,

.. math:: \\eta = X\\beta, \\qquad g_\\beta = X^\\top g_\\eta, \\qquad
    F = \\sum_i w_i\\, f(y_i, \\eta_i),

so an *engine* holds X and keeps everything of length n (predictors, per-sample
derivatives, y and w) where X lives, while everything of length d (beta, the epigraph
projection, the FISTA momentum) stays a numpy array on the host. One class per kind of
array:

* ``HostEngine``: numpy and scipy.sparse (the historical code path, unchanged);
* ``ArrayAPIEngine``: any array of the Python array API standard (CuPy and torch on a GPU,
  ``array_api_strict``), the per-sample maps written once with the array's namespace
  ``xp = array_api_compat.array_namespace(X)``;
* ``DaskEngine``: dask arrays chunked by rows (local threads, processes or a
  ``dask.distributed`` cluster). Expressions stay lazy; ``fetch`` runs one
  ``dask.compute`` per evaluation (a product with X and the maps on its output fuse into
  one pass over X) and ``keep`` persists the predictor vectors that are reused. Only
  O(d) partial sums X_k^T g_k and scalars leave the workers.

``fetch`` is the only way back to the host: it returns Python floats for scalars and
numpy arrays of length d for the products X^T g, never a vector of length n.
"""

from __future__ import annotations

import contextlib
import warnings

import array_api_compat as aac
import numpy as np
import scipy.sparse as sp

#: The engines whose arrays the cvxpy backend (and the numpy diagnostics) can take.
HOST_ENGINES = ("numpy", "scipy.sparse")


def engine_name(X):
    """The engine that an array belongs to, or None for what numpy must convert first.

    "numpy", "scipy.sparse", "dask", "cupy", "torch", or the array namespace's module
    name for another array of the array API standard (e.g. "array_api_strict"); None
    for lists, DataFrames and other array-likes.
    """
    if sp.issparse(X):
        return "scipy.sparse"
    if isinstance(X, np.ndarray):
        return "numpy"
    if aac.is_dask_array(X):
        return "dask"
    if aac.is_cupy_array(X):
        return "cupy"
    if aac.is_torch_array(X):
        return "torch"
    if aac.is_array_api_obj(X):
        return aac.array_namespace(X).__name__.split(".")[0]
    return None


def is_engine_array(X):
    """True for an array that is kept where it is (dask, GPU, array API), not converted."""
    return engine_name(X) not in (None, *HOST_ENGINES)


def to_numpy(v):
    """A host numpy copy of an array of any engine (computing a dask array)."""
    name = engine_name(v)
    if name in (None, "numpy"):
        return np.asarray(v)
    if name == "scipy.sparse":
        raise TypeError("expected a dense array, got a scipy.sparse matrix")
    if name == "dask":
        return np.asarray(v.compute())
    if name == "cupy":
        return v.get()
    if name == "torch":
        return v.detach().cpu().numpy()
    try:
        return np.asarray(v)
    except (TypeError, ValueError, RuntimeError):  # a device array without __array__
        return np.from_dlpack(aac.to_device(v, "cpu"))


def require_host(X, backend):
    """Raise TypeError unless X is numpy or scipy.sparse, naming the fast backend."""
    name = engine_name(X)
    if name not in (None, *HOST_ENGINES):
        raise TypeError(f"the {backend} backend needs X as a numpy array or a scipy.sparse "
                        f"matrix, got a {name} array; use backend='fast' (or 'auto'), which "
                        f"runs on {name} arrays without gathering X (for the problems it "
                        f"covers: symmetric perturbation sets or norm penalties, no "
                        f"constraints), or convert X to numpy")


class HostEngine:
    """numpy or scipy.sparse X: the products and maps run in numpy on this process."""

    xp = np

    def __init__(self, X):
        if X.dtype != np.float64:  # the one copy of X the fast path may make
            X = X.astype(np.float64)
        self.name = engine_name(X)
        self.X = X
        self.XT = X.T.tocsr() if sp.issparse(X) and X.format == "csc" else X.T
        self.shape = X.shape

    def errstate(self):
        """Silence overflow in e^eta (inf is the honest value, tested by the callers)."""
        return np.errstate(over="ignore", invalid="ignore")

    def put(self, v):
        """A host vector of length n on the engine (here: itself)."""
        return v

    def matvec(self, beta):
        """X beta (length n, on the engine)."""
        return np.asarray(self.X @ beta).ravel()

    def rmatvec(self, g):
        """X^T g (length d; ``fetch`` brings it to the host)."""
        return np.asarray(self.XT @ g).ravel()

    @staticmethod
    def dot(w, v):
        """sum_i w_i v_i (a scalar on the engine)."""
        return w @ v

    def fetch(self, *values):
        """The values on the host: floats for scalars, numpy arrays for the d-vectors."""
        return tuple(_host(v) for v in values)

    def keep(self, eta, *scalars):
        """(eta, *scalars) with eta kept for reuse on the engine and the scalars fetched."""
        return (eta, *self.fetch(*scalars))

    def weighted_row_norms(self, w):
        """sum_i w_i ||x_i||^2 (one pass; for sparse X one O(nnz) temporary)."""
        if sp.issparse(self.X):
            row_sq = np.asarray(self.X.multiply(self.X).sum(axis=1)).ravel()
        else:
            row_sq = np.einsum("ij,ij->i", self.X, self.X)
        return float(w @ row_sq)


def _host(v):
    """A fetched value as a float (0-d) or a numpy array."""
    if isinstance(v, (float, int, np.generic)):
        return float(v)
    v = v if isinstance(v, np.ndarray) else to_numpy(v)
    return float(v) if v.ndim == 0 else v


class ArrayAPIEngine(HostEngine):
    """X of the array API standard (CuPy, torch, array_api_strict): it stays on its device.

    beta travels to the device and X^T g back (d numbers each) per product; the maps use
    ``xp``, the array's own namespace (through array-api-compat).
    """

    def __init__(self, X):
        self.name = engine_name(X)
        self.xp = xp = aac.array_namespace(X)
        if X.dtype != xp.float64:  # the one copy of X the fast path may make
            X = xp.astype(X, xp.float64)
        self.X = X
        self.device = aac.device(X)
        self.shape = tuple(X.shape)

    def errstate(self):
        return contextlib.nullcontext()

    def put(self, v):
        """A host vector on X's device (copied once per host vector of length n)."""
        return _placed(self, v, lambda: self.xp.asarray(np.ascontiguousarray(v),
                                                        device=self.device))

    def matvec(self, beta):
        return self.X @ self.xp.asarray(beta, device=self.device)

    def rmatvec(self, g):
        # (X^T g)_j = sum_i x_ij g_i, as the matrix-vector product g^T X
        return g @ self.X

    def dot(self, w, v):
        return w @ v  # 1-d @ 1-d is the inner product in the array API

    def weighted_row_norms(self, w):
        w, xp = self.put(w), self.xp
        return sum(float(w[rows] @ xp.sum(block * block, axis=1))
                   for rows, block in _row_blocks(self.X))


class DaskEngine(HostEngine):
    """A dask array chunked by rows; everything of length n stays lazy or on the workers.

    Per FISTA iteration the solver asks for two evaluations, each one ``dask.compute``
    (or ``dask.persist``) over X: the gradient (X^T g with g built from the persisted
    predictors) and the candidate point (X beta, persisted, fused with the objective
    there). What crosses between the workers and the client is beta (in the task graph)
    and the per-chunk partial sums of X^T g and of the objective.
    """

    def __init__(self, X):
        import dask.array as da

        if X.ndim != 2:
            raise ValueError(f"X must be 2-d, got {X.ndim}-d")
        if len(X.chunks[1]) > 1:  # whole rows per chunk: the products then stay per block
            X = X.rechunk({1: -1})
        if X.dtype != np.float64:  # converted per chunk as it is read: no copy of X
            X = X.astype(np.float64)
        self.name = "dask"
        self.xp = aac.array_namespace(X)
        self.X = X
        self.shape = X.shape
        self._da = da

    @contextlib.contextmanager
    def errstate(self):
        # the maps run in the scheduler's threads (np.errstate does not reach them): e^eta
        # = inf is the honest value, tested by the callers
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", r"(overflow|invalid value) encountered",
                                    RuntimeWarning)
            yield

    def put(self, v):
        """v as a dask array chunked like X's rows, persisted once per host vector."""
        return _placed(self, v, lambda: self._da.from_array(
            np.asarray(v), chunks=(self.X.chunks[0],)).persist())

    def matvec(self, beta):
        return self.X @ beta

    def rmatvec(self, g):
        # (X^T g)_j = sum over row chunks k of (X_k^T g_k)_j: a tree of d-vectors
        return self.X.T @ g

    @staticmethod
    def dot(w, v):
        return (w * v).sum()

    def fetch(self, *values):
        import dask

        with self.errstate():
            out = dask.compute(*values)
        return tuple(_host(v) for v in out)

    def keep(self, eta, *scalars):
        import dask

        with self.errstate():
            eta, *scalars = dask.persist(eta, *scalars)  # one pass: X beta shared
        return (eta, *self.fetch(*scalars))

    def weighted_row_norms(self, w):
        X = self.X
        return self.fetch(self.dot(self.put(w), (X * X).sum(axis=1)))[0]


def _placed(engine, v, make):
    """``make()`` (v placed on the engine), made once per host array v and cached."""
    cache = engine.__dict__.setdefault("_placed", {})
    hit = cache.get(id(v))
    if hit is not None and hit[0] is v:
        return hit[1]
    out = make()
    cache[id(v)] = (v, out)  # holding v keeps its id from being reused
    return out


def _row_blocks(X, size=2**22):
    """(row slice, X[rows]) in blocks of about ``size`` entries (no n x d temporaries)."""
    n, d = X.shape
    step = max(1, size // max(d, 1))
    for start in range(0, n, step):
        rows = slice(start, min(start + step, n))
        yield rows, X[rows, :]


def make_engine(X):
    """The engine for X (numpy, scipy.sparse, dask, or an array API array)."""
    name = engine_name(X)
    if name in HOST_ENGINES:
        return HostEngine(X)
    if name == "dask":
        return DaskEngine(X)
    if name is not None:
        return ArrayAPIEngine(X)
    raise TypeError(f"X must be a numpy array, scipy.sparse matrix, dask array or an array "
                    f"of the array API standard, got {type(X).__name__}")


def summarise(X):
    """(all entries finite, number of nonzeros, sum of squares) of an engine array, in one
    pass over X (one dask reduction for a dask array)."""
    name = engine_name(X)
    if name == "dask":
        import dask
        import dask.array as da

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "overflow encountered", RuntimeWarning)
            finite, nnz, sum_sq = dask.compute(da.isfinite(X).all(), da.count_nonzero(X),
                                               da.sum(da.square(X.astype(np.float64))))
        return bool(finite), int(nnz), float(sum_sq)
    xp = aac.array_namespace(X)
    finite, nnz, sum_sq = True, 0, 0.0
    for _, block in _row_blocks(X):
        block = xp.astype(block, xp.float64)
        finite = finite and bool(xp.all(xp.isfinite(block)))
        nnz += int(xp.count_nonzero(block))
        sum_sq += float(xp.sum(block * block))
    return finite, nnz, sum_sq
