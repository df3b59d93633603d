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
  ``dask.distributed`` cluster). The solver's per-sample work runs block by block
  (``map_reduce``: each row block k returns its partial sums and X_k^T g_k, d + a few
  numbers, summed over the blocks), one ``dask.compute`` per evaluation; the predictors
  X beta that are reused are persisted (``matvec_reduce``). Each evaluation is one pass
  over X, and only O(d) numbers per block leave the workers.

The solver sees two operations, the same on every engine:

* ``map_reduce(fn, eta, *vectors, n_sums, rmatvec)``: fn(xp, eta, *vectors) on the
  samples (on each block for dask) returns ``n_sums`` sums over the samples and, with
  ``rmatvec``, a per-sample vector g; the engine returns the sums as floats and X^T g
  as a numpy array;
* ``matvec_reduce(beta, fn, *vectors, n_sums)``: eta = X beta, kept on the engine, and
  the sums of fn at eta, in one pass.

``fetch`` is the only other way back to the host: it returns Python floats for scalars
and numpy arrays of length d, never a vector of length n.
"""

from __future__ import annotations

import contextlib
import warnings
from collections import OrderedDict

import array_api_compat as aac
import numpy as np
import scipy.sparse as sp

#: The engines whose arrays the cvxpy backend (and the numpy diagnostics) can take.
HOST_ENGINES = ("numpy", "scipy.sparse")

#: Dense host X with at most this many entries (32 MB of float64) is multiplied by one
#: BLAS thread during a fast solve (``blas_threads``); 0 leaves BLAS as configured always.
SINGLE_THREAD_ENTRIES = 2**22


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
                        f"covers: symmetric perturbation sets, boxes or norm "
                        f"penalties, no constraints), or convert X to numpy")


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
        _heap_vectors(X.shape[0])

    def errstate(self):
        """Silence overflow in e^eta (inf is the honest value, tested by the callers)."""
        return np.errstate(over="ignore", invalid="ignore")

    def row_sample(self, step):
        """An engine on every ``step``-th row of X (a strided view of dense X; for sparse
        X a copy of those rows), for statistics that a sample estimates well enough."""
        return self if step <= 1 else type(self)(self.X[::step, :])

    def put(self, v):
        """A host vector of length n on the engine (here: itself)."""
        return v

    def matvec(self, beta):
        """X beta (length n, on the engine). X 0 = 0 takes no pass over X (a cold start's
        beta = 0: its first objective, and the null objective of a warm start)."""
        if not np.count_nonzero(beta):  # (np.any's reduction costs ~4 us more a call)
            return np.zeros(self.shape[0])
        return np.asarray(self.X @ beta).ravel()

    def rmatvec(self, g):
        """X^T g (length d; ``fetch`` brings it to the host)."""
        return np.asarray(self.XT @ g).ravel()

    def rmatvecs(self, *gs):
        """X^T g for each of the length-n vectors ``gs`` in one read of X: the (k, d)
        host array G X, G = (g_1; ...; g_k) of shape (k, n). For dense C-ordered X, X^T g
        is OpenBLAS's gemv on rows of d entries, which does not stream X in parallel
        (2.3 ms at n = 1e5, d = 50 against 1.1 ms for X beta); G X is one gemm over the
        rows: two vectors in 1.3-1.4x the time of one (``model._gaussian_second_order``)."""
        G = np.stack(gs)
        return np.asarray(self.XT @ G.T).T if sp.issparse(self.X) else G @ self.X

    @staticmethod
    def dot(w, v):
        """sum_i w_i v_i (a scalar on the engine)."""
        return w @ v

    def fetch(self, *values):
        """The values on the host: floats for scalars, numpy arrays for the d-vectors."""
        return tuple(_host(v) for v in values)

    def rows(self, idx):
        """The rows X[idx] as a dense host float64 array (a few rows: the pinned step)."""
        out = self.X[np.asarray(idx, dtype=np.intp), :]
        return np.asarray(out.toarray() if sp.issparse(out) else out, dtype=np.float64)

    def map_reduce(self, fn, eta, *vectors, n_sums, rmatvec=False):
        """(the n_sums sums of fn(xp, eta, *vectors) as floats, X^T g or None).

        fn returns (sums, g): a sequence of ``n_sums`` sums over the samples (scalars of
        the namespace, or floats) and the per-sample vector g (None unless ``rmatvec``).
        """
        with self.errstate():
            sums, g = fn(self.xp, eta, *vectors)
            if self.xp is np:
                # numpy's sums are floats on the host already: no fetch (its conversions
                # cost ~10 us of a FISTA evaluation's ~60 at n = 2000, d = 20)
                return [float(v) for v in sums[:n_sums]], \
                    (self.rmatvec(g) if rmatvec else None)
            out = self.fetch(*sums, *((self.rmatvec(g),) if rmatvec else ()))
        return list(out[:n_sums]), (out[n_sums] if rmatvec else None)

    def matvec_reduce(self, beta, fn, *vectors, n_sums):
        """(eta = X beta kept on the engine, the n_sums sums of fn at eta)."""
        eta = self.matvec(beta)
        return eta, self.map_reduce(fn, eta, *vectors, n_sums=n_sums)[0]

    def second_order(self, fn, beta, *vectors, cols, n_sums, n_vectors=None):
        """(X beta, sums, X^T G, X_W^T diag(D) X_W) for the Newton step: one pass over X.

        fn(xp, eta, *vectors) returns (sums, G, D): ``n_sums`` sums over the samples, a
        list of ``n_vectors`` (default ``SECOND_ORDER_VECTORS``; a box's pass has four)
        per-sample vectors G and per-sample weights
        D >= 0; W = ``cols`` (an index array, or None for all columns). Returns the
        predictors X beta (on the engine), the sums as floats, X^T G as a host (d, k)
        array and the weighted Gram matrix of the columns W as a host (|W|, |W|) array.
        Each block of rows is read once and used while in cache: X_k beta, the maps,
        X_k^T G_k and the Gram update (blocks: ``GRAM_BLOCK_ROWS``).
        """
        xp = self.xp
        beta_x = xp.asarray(beta, device=self.device) if self.xp is not np else beta
        etas, total = [], 0
        d = self.shape[1]
        cap = MAX_BLOCK_ENTRIES if cols is None or 2 * len(cols) >= d else \
            PARTIAL_BLOCK_ENTRIES
        size = min(max(GRAM_BLOCK_ENTRIES, GRAM_BLOCK_ROWS * d), cap)
        for rows, block in _row_blocks(self.X, size=size):
            eta = block @ beta_x
            eta = np.asarray(eta).ravel() if sp.issparse(block) else eta
            etas.append(eta)
            total = total + _block_second_order(block, eta, *(v[rows] for v in vectors),
                                                fn=fn, cols=cols, n_sums=n_sums)
        concat = np.concatenate if xp is np else xp.concat
        return (concat(etas), *_split_second_order(_host(total), n_sums, self.shape[1],
                                                   cols))

    def weighted_gram(self, w):
        """X^T diag(w) X (w >= 0) of dense X, blocks of rows at a time; None for sparse X
        (the caller takes ``second_order``'s matrix).

        Where w is constant on a block (uniform sample weights: the gaussian loss's
        constant Gram matrix) the block's own rank-k update, of a view of X, in blocks of
        ``WHOLE_GRAM_BLOCK_ENTRIES``; else that of sqrt(w) X_k, a copy, in blocks of
        ``MAX_BLOCK_ENTRIES``. Without the per-sample maps and the products X_k^T G of
        ``second_order``'s blocks: at n = 1e5, d = 1000 1.38-1.45 s against 1.72-1.79 s.
        """
        X = self.X
        if sp.issparse(X):
            return None
        n, d = X.shape
        uniform = _uniform(w)
        rows = max(1, (WHOLE_GRAM_BLOCK_ENTRIES if uniform else MAX_BLOCK_ENTRIES) // max(d, 1))
        G = np.zeros((d, d))
        for start in range(0, n, rows):
            block = X[start:start + rows]
            if not uniform:
                block = block * np.sqrt(w[start:start + rows])[:, None]
            G += block.T @ block  # numpy: A^T A of one buffer is a symmetric rank-k update
        return G * w[0] if uniform else G

    def weighted_row_norms(self, w):
        """sum_i w_i ||x_i||^2 (one pass; for sparse X one O(nnz) temporary).

        With uniform weights, of contiguous dense X, w_0 ||X||_F^2 by one dot product of
        its entries (BLAS, threaded: 22 ms against einsum's 57 ms at n = 1e5,
        d = 1000)."""
        X = self.X
        if sp.issparse(X):
            row_sq = np.asarray(X.multiply(X).sum(axis=1)).ravel()
        elif (X.flags.c_contiguous or X.flags.f_contiguous) and _uniform(w):
            entries = X.ravel(order="K")  # (a view: X is contiguous)
            return float(w[0] * (entries @ entries))
        else:
            row_sq = np.einsum("ij,ij->i", X, X)
        return float(w @ row_sq)


def _uniform(w):
    """Whether the host weights w are all equal (and there is one at least)."""
    return w.shape[0] > 0 and bool(np.all(w == w[0]))


HEAP_VECTORS = 8


def _heap_vectors(n):
    """Have glibc's malloc serve the per-sample maps' n-vector temporaries from its heap.

    Its allocations above the mmap threshold (128 kB at first) are mapped afresh and
    unmapped when freed, so that each such temporary costs a page fault per 4 kB at
    first touch; freeing a mapped block raises the threshold to that block's size (up
    to 32 MB), and the heap's trim threshold to twice it, after which blocks below it
    are reused from the heap. One block of ``HEAP_VECTORS`` n-vectors (at most 32 MB),
    allocated (untouched) and freed here, raises both above the maps' live
    temporaries (with 2 n-vectors, the heap's top was trimmed between iterations and
    the maps were as slow as before).
    Measured at n = 1e5, d = 50: a gaussian ``L2`` solve (FISTA, two maps an iteration)
    0.17 s against 0.11 s once the threshold had risen; before, the validation's
    n x d boolean temporary (``np.isfinite(X)``) had raised it by the way. A no-op
    where the allocator is another or the threshold is already higher; the threshold
    stops at 32 MB, so n-vectors above n = 4e6 are mapped whatever is done."""
    np.empty(min(HEAP_VECTORS * n, 2**22 - 1024))  # (freed at once: never touched)


def _each_rmatvec(engine, gs):
    """``HostEngine.rmatvecs`` on an engine whose X stays where it is: one X^T g each,
    fetched, stacked on the host as (k, d)."""
    return np.stack([np.asarray(engine.fetch(engine.rmatvec(g))[0], dtype=np.float64)
                     for g in gs])


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

    def rmatvecs(self, *gs):
        return _each_rmatvec(self, gs)

    def rows(self, idx):
        idx = self.xp.asarray(np.asarray(idx, dtype=np.int64), device=self.device)
        return np.asarray(_host(self.xp.take(self.X, idx, axis=0)), dtype=np.float64)

    def weighted_row_norms(self, w):
        w, xp = self.put(w), self.xp
        return sum(float(w[rows] @ xp.sum(block * block, axis=1))
                   for rows, block in _row_blocks(self.X))


class DaskEngine(HostEngine):
    """A dask array chunked by rows; everything of length n stays lazy or on the workers.

    Per FISTA iteration the solver asks for two evaluations, each one ``dask.compute``
    (or ``dask.persist``) and one pass over X: the gradient (``map_reduce``: per row
    block, the per-sample maps at the block's predictors and X_k^T g_k) and the
    candidate point (``matvec_reduce``: X_k beta, persisted, and the objective's partial
    sums there). Between the workers and the client travel beta (in the task graph) and
    d + 3 numbers per block. The per-sample maps run on each block with the block's own
    namespace (numpy, or CuPy for a dask array of CuPy chunks), in a single task per
    block: no graph of elementwise operations is built per iteration.
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
        # elementwise dask expressions run in the scheduler's threads, which np.errstate
        # does not reach: e^eta = inf is the honest value, tested by the callers
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", r"(overflow|invalid value) encountered",
                                    RuntimeWarning)
            yield

    def put(self, v):
        """v as a dask array chunked like X's rows, persisted once per host vector."""
        return _placed(self, v, lambda: self._da.from_array(
            np.asarray(v), chunks=(self.X.chunks[0],)).persist())

    def matvec(self, beta):
        return self.X.map_blocks(_block_matvec, beta=np.asarray(beta), drop_axis=1,
                                 dtype=np.float64, meta=self.X._meta.sum(axis=1))

    def rmatvec(self, g):
        # (X^T g)_j = sum over row blocks k of (X_k^T g_k)_j: a tree of d-vectors
        return self.X.T @ g

    def rmatvecs(self, *gs):
        return _each_rmatvec(self, gs)

    @staticmethod
    def dot(w, v):
        return (w * v).sum()

    def fetch(self, *values):
        import dask

        with self.errstate():
            out = dask.compute(*values)
        return tuple(_host(v) for v in out)

    def _partial_sums(self, fn, eta, vectors, n_sums, rmatvec):
        """The lazy vector (sums, X^T g): one task per row block, then a sum over blocks."""
        X = self.X
        width = n_sums + (X.shape[1] if rmatvec else 0)
        columns = [v[:, None] for v in (eta, *vectors)]  # blocks aligned with X's rows
        parts = self._da.map_blocks(
            _block_sums, *((X,) if rmatvec else ()), *columns, fn=fn, n_sums=n_sums,
            rmatvec=rmatvec, chunks=((1,) * X.numblocks[0], (width,)), dtype=np.float64,
            meta=X._meta)
        return parts.sum(axis=0)

    def map_reduce(self, fn, eta, *vectors, n_sums, rmatvec=False):
        (out,) = self.fetch(self._partial_sums(fn, eta, vectors, n_sums, rmatvec))
        return [float(v) for v in out[:n_sums]], (out[n_sums:] if rmatvec else None)

    def matvec_reduce(self, beta, fn, *vectors, n_sums):
        import dask

        eta = self.matvec(beta)
        # one pass: the blocks of X beta are computed once, kept, and summed over
        eta, sums = dask.persist(eta, self._partial_sums(fn, eta, vectors, n_sums, False))
        (out,) = self.fetch(sums)
        return eta, [float(v) for v in out]

    def weighted_row_norms(self, w):
        X = self.X
        return self.fetch(self.dot(self.put(w), (X * X).sum(axis=1)))[0]

    def rows(self, idx):
        (out,) = self.fetch(self.X[np.asarray(idx, dtype=np.intp), :])
        return np.atleast_2d(np.asarray(out, dtype=np.float64))

    def second_order(self, fn, beta, *vectors, cols, n_sums, n_vectors=None):
        """As ``HostEngine.second_order``: X beta persisted, then one task per row block."""
        import dask

        X = self.X
        eta = dask.persist(self.matvec(beta))[0]
        d = X.shape[1]
        m = d if cols is None else len(cols)
        width = n_sums + d * (n_vectors or SECOND_ORDER_VECTORS) + m * m
        parts = self._da.map_blocks(
            _block_second_order_row, X, *(v[:, None] for v in (eta, *vectors)), fn=fn,
            cols=cols, n_sums=n_sums, chunks=((1,) * X.numblocks[0], (width,)),
            dtype=np.float64, meta=X._meta)
        (flat,) = self.fetch(parts.sum(axis=0))
        return (eta, *_split_second_order(flat, n_sums, d, cols))



def namespace(x):
    """numpy itself for a numpy array (its functions are the fastest), else the array
    API namespace of x (through array-api-compat)."""
    return np if isinstance(x, np.ndarray) else aac.array_namespace(x)


def _block_matvec(X_k, beta):
    """X_k beta for one row block (beta moved to the block's namespace / device)."""
    return X_k @ (beta if isinstance(X_k, np.ndarray) else namespace(X_k).asarray(beta))


def _block_sums(*blocks, fn, n_sums, rmatvec):
    """[sums of fn on this block, X_k^T g_k] as a (1, n_sums (+ d)) array."""
    X_k = blocks[0] if rmatvec else None
    eta, *vectors = (b[:, 0] for b in blocks[1 if rmatvec else 0:])
    xp = namespace(eta)
    with np.errstate(over="ignore", invalid="ignore"):  # here in the worker's thread
        sums, g = fn(xp, eta, *vectors)
        parts = [xp.reshape(xp.asarray(s, dtype=xp.float64), (1,)) for s in sums]
        if rmatvec:
            parts.append(g @ X_k)  # (X_k^T g_k)_j = sum_i g_i x_ij
    concat = np.concatenate if xp is np else xp.concat
    return xp.reshape(concat(parts), (1, -1))


# The Newton pass's row blocks (``HostEngine.second_order``): GRAM_BLOCK_ROWS rows, at
# least GRAM_BLOCK_ENTRIES entries and at most MAX_BLOCK_ENTRIES (32 MB). Each block's
# Gram update is a rank-k update with k its rows, whose BLAS-3 speed falls for small k,
# and the d^2 sum and the maps' fixed cost per block add to it; blocks past the caches
# cost more again. Measured on the project's 2-core machine (binomial pass, columns of
# a solution's working set, 2-core BLAS): n = 1e5, d = 50 18 ms in blocks of 2621 rows
# (2^17 entries, the rule before), 14 ms in blocks of 5242-8192, 33 ms of 41943; n = 2e4,
# d = 50 3.4 -> 2.7 ms; n = 2e4, d = 20 the same 1.9-2.0 ms from 5120 to 8192 rows and
# 3.4 ms at 52428; n = 1e5, d = 1000 (all columns) 2.7 s in blocks of 131 rows, 1.6 s of
# 2097. Where the Gram matrix takes under half the columns the pass is bound by reading
# X (its block read by X_k beta, X_k^T G and the columns' copy), and a block of at most
# PARTIAL_BLOCK_ENTRIES (4 MB) stays in cache between them: n = 1e5, d = 1000, |W| =
# 100 took 268 ms in blocks of 4096 rows, 136-144 ms in blocks of 512-768 (with
# np.take for the columns: their fancy-index copy took 1.9 ms of a 4096-row block's
# 6 ms, np.take 0.75)
GRAM_BLOCK_ROWS = 6144
GRAM_BLOCK_ENTRIES = 2**17
MAX_BLOCK_ENTRIES = 2**22
PARTIAL_BLOCK_ENTRIES = 2**19
# ``HostEngine.weighted_gram``'s blocks of a view of X (no copy): 16384 rows at d = 1000
# (1.36 s against 1.50 s in blocks of 4096 rows, 1.38 s for the whole X at once)
WHOLE_GRAM_BLOCK_ENTRIES = 2**24
# the number of per-sample vectors G of the Newton step's pass (``second_order``)
SECOND_ORDER_VECTORS = 3


def _block_second_order(X_k, eta, *vectors, fn, cols, n_sums):
    """[sums, X_k^T G (d x k, row-major), X_kW^T diag(D) X_kW] of one row block, flat.

    The Gram matrix is (sqrt(D) X_kW)^T (sqrt(D) X_kW) (D >= 0): one symmetric rank-k
    update; with one weight D_0 for the whole block (uniform sample weights: the gaussian
    loss's constant Gram matrix) D_0 X_kW^T X_kW, the update of the block itself, without
    the weighted copy (that copy cost 0.3 s of the 1.6 s Gram matrix at n = 1e5,
    d = 1000). Sparse blocks stay sparse until the small |W| x |W| product.
    """
    xp = namespace(eta)
    with np.errstate(over="ignore", invalid="ignore"):
        sums, G, D = fn(xp, eta, *vectors)
    one = D.shape[0] > 0 and bool(xp.all(D == D[0]))  # one weight for the block
    if sp.issparse(X_k):
        XtG = np.asarray(X_k.T @ np.stack(G, axis=1))
        XW = X_k if cols is None else X_k[:, cols]
        XW = XW.tocsr() if one else XW.multiply(xp.sqrt(D)[:, None]).tocsr()
        gram = np.asarray((XW.T @ XW).todense())
    else:
        XtG = (xp.stack(G, axis=0) @ X_k).T  # (G^T X_k)^T: one product with X_k
        if cols is not None:
            X_k = np.take(X_k, cols, axis=1) if xp is np else \
                xp.take(X_k, xp.asarray(cols, device=aac.device(X_k)), axis=1)
        XW = X_k if one else X_k * xp.sqrt(D)[:, None]
        gram = XW.T @ XW  # numpy: A^T A of one buffer is a symmetric rank-k update
    if one:
        gram = gram * D[0]
    parts = [xp.reshape(xp.asarray(s_, dtype=xp.float64), (1,)) for s_ in sums]
    concat = np.concatenate if xp is np else xp.concat
    return concat(parts + [xp.reshape(xp.asarray(XtG), (-1,)), xp.reshape(gram, (-1,))])


def _block_second_order_row(X_k, *columns, fn, cols, n_sums):
    """``_block_second_order`` of a dask block (its vectors arrive as (n_k, 1) columns)."""
    out = _block_second_order(X_k, *(c[:, 0] for c in columns), fn=fn, cols=cols,
                              n_sums=n_sums)
    return namespace(out).reshape(out, (1, -1))


def _split_second_order(flat, n_sums, d, cols):
    """(sums, X^T G (d, k), Gram (m, m)) from the flat vector of ``_block_second_order``."""
    flat = np.asarray(flat, dtype=np.float64)
    m = d if cols is None else len(cols)
    k = (flat.shape[0] - n_sums - m * m) // d
    sums = [float(v) for v in flat[:n_sums]]
    XtG = flat[n_sums:n_sums + d * k].reshape(d, k)
    return sums, XtG, flat[n_sums + d * k:].reshape(m, m)


def _placed(engine, v, make, size=4):
    """``make()`` (v placed on the engine), cached for the ``size`` host arrays placed last
    (y, the weights and the scaled y are placed again and again; masks once)."""
    cache = engine.__dict__.setdefault("_placed", OrderedDict())
    hit = cache.get(id(v))
    if hit is not None and hit[0] is v:
        cache.move_to_end(id(v))
        return hit[1]
    out = make()
    cache[id(v)] = (v, out)  # holding v keeps its id from being reused
    while len(cache) > size:
        cache.popitem(last=False)
    return out


def _row_blocks(X, size=MAX_BLOCK_ENTRIES):
    """(row slice, X[rows]) in blocks of about ``size`` entries (no n x d temporaries).

    A sparse X is one block, itself: its products make no n x d temporaries, and blocks
    sized for dense X (6 rows at d = 20000) made a Newton pass on a TF-IDF matrix cost
    10^4 X^T (X v) passes (each block's d x 3 product and flat sums of length 3 d; a CSC
    matrix's row slices cost O(nnz) each on top)."""
    n, d = X.shape
    if sp.issparse(X):
        yield slice(0, n), X
        return
    step = max(1, size // max(d, 1))
    for start in range(0, n, step):
        rows = slice(start, min(start + step, n))
        yield rows, X[rows, :]


_CONTROLLER = None


def blas_threads(engine):
    """A context for a fast solve on ``engine``: one BLAS thread for dense host X of at
    most ``SINGLE_THREAD_ENTRIES`` entries, BLAS as configured otherwise.

    The fast path multiplies by X hundreds of times per solve, each product from
    microseconds to a few milliseconds. When another process keeps a core busy, a
    multi-threaded BLAS waits for its other threads' time slices on every call:
    ``benchmarks/bench_threads.py --load 1`` on 2 cores measured fast solves 13x-23x
    slower with BLAS's default 2 threads than with one at n = 1e4, d = 50 and n = 2e4,
    d = 20, 3.6x-4x at n = 1e5, d = 50 and 1.6x-1.8x at n = 4e5, d = 50 (a hinge solve
    at n = 1e4, d = 50: 617 ms instead of 28 ms). On the idle machine one thread was as
    fast up to n = 1e5, d = 50 (0.93x-1.02x). So one thread is taken up to the
    threshold, where a product is too short for more threads to pay much even on many
    idle cores; larger X keeps the user's setting (threadpoolctl, or
    OPENBLAS_NUM_THREADS / OMP_NUM_THREADS on a shared machine). scipy.sparse products
    are single-threaded anyway; dask and GPU arrays are left alone.
    """
    global _CONTROLLER
    X = getattr(engine, "X", None)
    if type(engine) is not HostEngine or sp.issparse(X) or X.size > SINGLE_THREAD_ENTRIES:
        return contextlib.nullcontext()
    if _CONTROLLER is None:  # (inspecting the loaded libraries costs ~0.2 ms: once)
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")


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
