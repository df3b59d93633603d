"""Input checks with clear messages, run before any solver.

Every public entry point funnels its arguments through these helpers so that
bad input raises ``ValueError``/``TypeError`` naming the argument and the
expected form.
"""

from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse as sp


def check_scalar(value, name, *, lower=None, upper=None, lower_inclusive=True,
                 upper_inclusive=True):
    """Return ``value`` as a finite float in the stated range, or raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    too_low = lower is not None and (value < lower or (value == lower and not lower_inclusive))
    too_high = upper is not None and (value > upper or (value == upper and not upper_inclusive))
    if too_low or too_high:
        interval = (f"{'[' if lower_inclusive else '('}{lower if lower is not None else '-inf'}, "
                    f"{upper if upper is not None else 'inf'}{']' if upper_inclusive else ')'}")
        raise ValueError(f"{name} must be in {interval}, got {value}")
    return value


def _check_numeric_dtype(arr, name):
    # (timedelta64 is a subtype of np.signedinteger: refused as datetime64 is)
    if arr.dtype == object or arr.dtype.kind == "m" or not (
            np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{name} must be real, got complex dtype {arr.dtype}")


def _from_pandas(frame):
    """A pandas DataFrame as a numpy array; nullable numeric columns (``Float64``,
    ``Int64``, ``boolean``: the dtypes of ``convert_dtypes()``, for which ``to_numpy``
    gives object arrays, refused as not numeric) as float64, <NA> as NaN (then refused
    as a missing value)."""
    out = frame.to_numpy()
    if out.dtype != object:
        return out
    try:
        from pandas.api.types import is_numeric_dtype
    except ImportError:  # (another library's frame)
        return out
    dtypes = [frame.dtype] if hasattr(frame, "dtype") else list(frame.dtypes)
    if dtypes and all(is_numeric_dtype(dt) for dt in dtypes):
        return frame.to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def check_X(X, stats=None):
    """Validate a design matrix: 2-d, numeric, finite, at least one row and column.

    Dense input becomes a C- or F-ordered float64/float32 ndarray (copied only when the
    dtype must change); scipy.sparse input becomes CSR or CSC (never densified). A dask
    array or an array of the array API standard (CuPy, torch, ...) stays where it is
    (``fgsm_cvx.engine``): its entries are checked in one reduction over X (one
    ``dask.compute``), which also yields their count of nonzeros and sum of squares,
    stored in the dict ``stats`` when one is given (for ``AdversarialProblem.x_scale``).
    """
    from .engine import is_engine_array

    if is_engine_array(X):
        return _check_engine_X(X, stats)
    if sp.issparse(X):
        if X.format not in ("csr", "csc"):
            X = X.tocsr()
        _check_numeric_dtype(X.data, "X")
        if X.dtype not in (np.float64, np.float32):
            X = X.astype(np.float64)
    else:
        if hasattr(X, "to_numpy"):  # pandas DataFrame
            X = _from_pandas(X)
        try:
            X = np.asarray(X)
        except (ValueError, TypeError) as exc:  # ragged nested lists
            raise ValueError(f"X must be a 2-d array of shape (n_samples, n_features) with "
                             f"rows of equal length ({exc})") from exc
        _check_numeric_dtype(X, "X")
        if X.ndim != 2:
            raise ValueError(f"X must be a 2-d array of shape (n_samples, n_features), "
                             f"got {X.ndim}-d array of shape {X.shape}")
        if X.dtype not in (np.float64, np.float32):
            X = X.astype(np.float64)
    _check_entries(X.data if sp.issparse(X) else X)
    n, d = X.shape
    if n < 1:
        raise ValueError("X has no samples (0 rows)")
    if d < 1:
        raise ValueError("X has no features (0 columns)")
    return X


#: The largest entry of X lies in [1 / X_MAGNITUDE, X_MAGNITUDE] (or X is zero)
X_MAGNITUDE = 1e100


def _check_entries(data):
    """ValueError where an entry is NaN or infinite, or the largest |entry| is beyond
    ``X_MAGNITUDE`` or below its inverse (but zero): the backends' rescaling reads the
    entries' sum of squares, which overflows (1e155: the fast path's step search never
    ended, the cvxpy backend's answer was wrong and called optimal) or underflows
    (1e-165: a zero fit called optimal).

    One maximum and one minimum over the entries test both: each is NaN where an entry
    is (the reductions propagate NaN) and infinite where one is +-inf. (A separate
    ``np.all(np.isfinite(X))`` made a third pass and an n x d boolean temporary: 7 ms
    -> 5 ms at n = 1e5, d = 50, each problem's construction.)"""
    if not data.size:
        return
    high, low = float(data.max()), float(data.min())
    if not (np.isfinite(high) and np.isfinite(low)):
        raise ValueError("X contains NaN or infinity")
    largest = max(abs(high), abs(low))
    if largest > X_MAGNITUDE or 0.0 < largest < 1.0 / X_MAGNITUDE:
        raise ValueError(f"X's largest entry is {largest:.3g} in absolute value: beyond "
                         f"[{1.0 / X_MAGNITUDE:.0e}, {X_MAGNITUDE:.0e}] the solvers' sums of "
                         f"squares overflow or underflow; rescale X (e.g. StandardScaler, or "
                         f"a power of ten)")


def _check_engine_X(X, stats):
    """check_X for a dask / array API array: no conversion, one reduction over X."""
    from array_api_compat import array_namespace

    from .engine import engine_name, summarise

    name = engine_name(X)
    if len(X.shape) != 2:
        raise ValueError(f"X must be a 2-d array of shape (n_samples, n_features), "
                         f"got {len(X.shape)}-d array of shape {tuple(X.shape)}")
    if any(s is None or s != s for s in X.shape):  # dask: unknown chunk sizes are NaN
        raise ValueError(f"X ({name}) has unknown dimensions {tuple(X.shape)}; call "
                         "X.compute_chunk_sizes() first")
    xp = array_namespace(X)
    if xp.isdtype(X.dtype, "complex floating"):
        raise TypeError(f"X must be real, got complex dtype {X.dtype}")
    if not xp.isdtype(X.dtype, ("real floating", "integral", "bool")):
        raise TypeError(f"X must be numeric, got dtype {X.dtype}")
    n, d = X.shape
    if n < 1:
        raise ValueError("X has no samples (0 rows)")
    if d < 1:
        raise ValueError("X has no features (0 columns)")
    finite, nnz, sum_sq = summarise(X)
    if not finite:
        raise ValueError("X contains NaN or infinity")
    if stats is not None:
        stats.update(nnz=nnz, sum_sq=sum_sq)
    return X


def _to_host(v):
    """A dask / GPU / array API vector as numpy (y and weights are kept on the host)."""
    from .engine import is_engine_array, to_numpy

    return to_numpy(v) if is_engine_array(v) else v


def check_no_missing_labels(y):
    """ValueError where y (pandas, or an array of objects) holds None, NaN or pandas.NA:
    comparisons with pandas.NA have no truth value, so other checks fail on it with
    "boolean value of NA is ambiguous"."""
    if y is None:  # (no y at all: the caller's own error)
        return
    if hasattr(y, "isna"):
        missing = bool(np.asarray(y.isna()).any())
    else:
        y = np.asarray(y) if not hasattr(y, "dtype") else y
        missing = y.dtype == object and any(
            v is None or (isinstance(v, float) and v != v) or type(v).__name__ == "NAType"
            for v in np.ravel(y))
    if missing:
        raise ValueError("y contains missing values (NaN, None or pandas.NA)")


def check_y(y, n_samples):
    """Validate a response vector of length ``n_samples`` (labels may be non-numeric)."""
    y = _to_host(y)
    if hasattr(y, "to_numpy"):
        y = y.to_numpy()
    try:
        y = np.asarray(y)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"y must be 1-d of length n_samples={n_samples} ({exc})") from exc
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(f"y must be 1-d of length n_samples={n_samples}, got shape {y.shape}")
    if y.shape[0] != n_samples:
        raise ValueError(f"y has {y.shape[0]} entries but X has {n_samples} rows")
    if np.issubdtype(y.dtype, np.complexfloating):
        raise TypeError(f"y must be real, got complex dtype {y.dtype}")
    if np.issubdtype(y.dtype, np.number) and not np.all(np.isfinite(y)):
        raise ValueError("y contains NaN or infinity")
    check_no_missing_labels(y)  # (pandas.NA of the nullable dtypes: an object array here)
    return y


def check_real_y(y, family_name):
    """y as a finite float array; raise if it is not numeric."""
    try:
        _check_numeric_dtype(y, "y")
    except TypeError as exc:
        raise ValueError(f"family '{family_name}' needs a numeric response y, "
                         f"got dtype {y.dtype}") from exc
    y = y.astype(np.float64)
    if not np.all(np.isfinite(y)):
        raise ValueError("y contains NaN or infinity")
    return y


def check_sample_weight(sample_weight, n_samples):
    """Return weights normalised to sum 1 (None -> uniform 1/n)."""
    if sample_weight is None:
        return np.full(n_samples, 1.0 / n_samples)
    w = np.asarray(_to_host(sample_weight))
    _check_numeric_dtype(w, "sample_weight")
    if w.ndim == 2 and w.shape[1] == 1:
        w = w[:, 0]
    if w.ndim != 1:
        raise ValueError(f"sample_weight must be 1-d of length n_samples={n_samples}, "
                         f"got shape {w.shape}")
    w = w.astype(np.float64)
    if w.shape[0] != n_samples:
        raise ValueError(f"sample_weight has {w.shape[0]} entries but X has {n_samples} rows")
    if not np.all(np.isfinite(w)):
        raise ValueError("sample_weight contains NaN or infinity")
    if np.any(w < 0):
        raise ValueError("sample_weight must be nonnegative")
    total = w.sum()
    if total <= 0:
        raise ValueError("sample_weight must have a positive sum (all weights are zero)")
    return w / total


# The finite exponents other than 1 that the norms, their projections and cvxpy's
# ``pnorm`` resolve, for a perturbation's p and a penalty's q alike (q = 1.004 is the
# penalty of the ball p = 251). Beyond, the fast path's projection onto the l_p ball
# (multipliers mu with z + mu p z^(p-1) = a: mu ~ 1e395 at p = 1000 for z = 0.4) leaves
# double precision: at p = 500-1000 it returned feasible points up to 2.7x farther than
# the nearest (against Clarabel), and binomial solves at p = 1000 ended 4-12% above the
# optimum; p = 300 and p = 1.001 were exact. cvxpy's rational approximation of p fails
# further out (DCPError at p = 1e4, ZeroDivisionError at p = 1.0001). Outside the range
# ||.||_p is within a factor d^(1/p) (resp. d^(1 - 1/p)) of the l-inf (l1) norm, which
# p = inf (1) gives exactly.
EXPONENT_RANGE = (1.004, 250.0)


def check_exponent(p, name):
    """A norm exponent: 1, +inf (or the string "inf"), or a real number in
    ``EXPONENT_RANGE``."""
    if isinstance(p, str) and p.lower() in ("inf", "infinity"):
        return np.inf
    if isinstance(p, numbers.Real) and not isinstance(p, bool) and p == np.inf:
        return np.inf
    p = check_scalar(p, name, lower=1.0)
    lo, hi = EXPONENT_RANGE
    if p != 1.0 and not lo <= p <= hi:
        nearest, factor = ("1", f"d^{1.0 - 1.0 / p:.4g}") if p < lo else \
            ("inf", f"d^{1.0 / p:.4g}")
        raise ValueError(f"{name} must be 1, inf or in [{lo}, {hi:g}], got {p:g}: beyond "
                         f"that range its powers leave double precision; use {name}="
                         f"{nearest} (the norms differ by a factor of at most {factor} on "
                         f"d coordinates)")
    return p


def check_bool(value, name):
    """``value`` as a bool; anything but a bool (or numpy bool) raises TypeError."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def check_tol(tol):
    """A solver tolerance: a finite float in (0, 1)."""
    return check_scalar(tol, "tol", lower=0.0, upper=1.0, lower_inclusive=False,
                        upper_inclusive=False)


def check_max_iter(max_iter):
    """None or a positive integer (a float such as 2.5 or a bool is refused)."""
    if max_iter is None:
        return None
    if isinstance(max_iter, (bool, np.bool_)) or not isinstance(max_iter, numbers.Integral):
        raise TypeError(f"max_iter must be a positive integer or None, got "
                        f"{type(max_iter).__name__} {max_iter!r}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer or None, got {max_iter}")
    return int(max_iter)


def check_vector(v, name, *, length=None, nonneg=False):
    """A finite 1-d float vector, optionally of a given length and nonnegative."""
    try:
        v = np.asarray(v)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name} must be a 1-d numeric array ({exc})") from exc
    _check_numeric_dtype(v, name)
    v = v.astype(np.float64)
    if v.ndim != 1:
        raise ValueError(f"{name} must be 1-d, got shape {v.shape}")
    if length is not None and v.shape[0] != length:
        raise ValueError(f"{name} has length {v.shape[0]}, expected {length} (n_features)")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} contains NaN or infinity")
    if nonneg and np.any(v < 0):
        raise ValueError(f"{name} must be nonnegative")
    return v


def resolve(value, registry, kind):
    """Turn a string shorthand into an object from ``registry`` (name -> factory)."""
    if isinstance(value, str):
        key = value.lower()
        if key not in registry:
            valid = ", ".join(sorted(registry))
            raise ValueError(f"unknown {kind} '{value}'; valid names: {valid}")
        return registry[key]()
    return value
