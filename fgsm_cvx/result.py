"""Result and Certificate: a solution together with the evidence of its optimality."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np


def _json_float(x):
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else str(x)


def _read_float(value, name, optional=True):
    """Inverse of ``_json_float``, refusing anything that is not a number."""
    if value is None and optional:
        return None
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"'{name}' must be a number, got {value!r}")
    return float(value)


def _read_str(value, name):
    if not isinstance(value, str):
        raise ValueError(f"'{name}' must be a string, got {value!r}")
    return value


def _check_keys(d, required, name):
    if not isinstance(d, dict):
        raise ValueError(f"{name} must be a JSON object, got {type(d).__name__}")
    missing = sorted(set(required) - set(d))
    if missing:
        raise ValueError(f"{name} is missing {missing}")


@dataclass(frozen=True)
class Certificate:
    """Evidence of optimality (docs/theory.md §6).

    For the cvxpy backend the solver's primal and dual objectives bound the optimum
    F* from both sides, and the objective recomputed in numpy at the returned point
    checks the solver's own evaluation:

    .. math::

        \\text{gap} = p - d, \\qquad
        F(\\hat\\beta, \\hat b) - F^\\star \\le
        \\underbrace{(F_{numpy} - F_{solver}) + \\text{gap}}_{\\text{suboptimality\\_bound}}.

    For the fast backend ``residual`` is the norm of the projected-gradient mapping,
    zero exactly at a minimiser (relative to the objective scale). Where a reduced
    program finished the solve (the hinge's, ``fast/working_set.py``, or the symmetric
    losses', ``fast/linear_pieces.py``), the primal and dual objectives are F at the
    returned point and the reduced program's dual bound, which is a lower bound on F*
    (the reduced objective is a minorant of F), ``gap`` their difference, and
    ``residual`` that gap relative to the objective scale. Where a gaussian eps path's
    active-set method answered (``solver`` "active-set", ``fast/active_set.py``),
    ``residual`` is the norm of a subgradient of F recomputed at the returned point
    (per standardised column, relative to 1 + |F|).

    An interior-point solver's dual point is feasible only to its tolerance, so its
    dual objective bounds F* only to that accuracy: a ``gap`` (and a
    ``suboptimality_bound``) slightly below zero, within the tolerance (a hinge solve's
    reduced program: -1e-10 to -3e-9 relative at tol 1e-8), says the point is optimal to
    that accuracy. The cvxpy backend takes a bound below -0.1 max(1000 tol, 1e-6)
    (1 + |F|) as no certificate (``cvx._certified``).

    Attributes
    ----------
    primal_objective, dual_objective : float or None
        The solver's own primal and dual objective values (cvxpy backend; in the
        solver's internal scaling, which may differ from ours by a constant), or None
        when the solver does not report them.
    gap : float or None
        primal_objective - dual_objective: a bound on the suboptimality of the
        returned point for the solver's problem.
    objective_solver : float or None
        The objective value cvxpy reports for the returned point.
    objective_numpy : float
        The robust objective recomputed independently in numpy from (coef, intercept).
    residual : float or None
        First-order optimality residual (fast backend).
    engine : str or None
        Where the products with X ran ("numpy", "scipy.sparse", "dask", "cupy", "torch",
        "array_api_strict", ...; ``fgsm_cvx.engine``), None where not recorded.
    """

    backend: str
    solver: str
    status: str
    objective_numpy: float
    objective_solver: float | None = None
    primal_objective: float | None = None
    dual_objective: float | None = None
    gap: float | None = None
    residual: float | None = None
    engine: str | None = None

    @property
    def discrepancy(self):
        """|objective_solver - objective_numpy|: how well the two computations agree."""
        if self.objective_solver is None:
            return None
        return abs(self.objective_solver - self.objective_numpy)

    @property
    def suboptimality_bound(self):
        """objective_numpy minus the solver's dual (lower) bound, in our scaling.

        The solver reports primal and dual objectives up to a constant offset that cvxpy
        adds back (offset = objective_solver - primal_objective), so the dual bound on the
        optimum is dual_objective + offset and the returned point is at most
        (objective_numpy - objective_solver) + gap above the optimum (exact when the dual
        iterate is feasible, to the solver's feasibility tolerance).
        """
        if self.gap is None or self.objective_solver is None:
            return None
        return (self.objective_numpy - self.objective_solver) + self.gap

    @property
    def relative_gap(self):
        """|gap| / max(1, |objective_numpy|): the gap on the scale of the objective."""
        if self.gap is None:
            return None
        return abs(self.gap) / max(1.0, abs(self.objective_numpy))

    def to_dict(self):
        """A JSON-safe dictionary: the fields and the derived bounds (inf as "inf")."""
        out = {k: (_json_float(v) if not isinstance(v, str) else v)
               for k, v in asdict(self).items()}
        out["discrepancy"] = _json_float(self.discrepancy)
        out["relative_gap"] = _json_float(self.relative_gap)
        out["suboptimality_bound"] = _json_float(self.suboptimality_bound)
        return out

    @classmethod
    def from_dict(cls, d):
        """Rebuild from ``to_dict`` output (derived entries are recomputed, not read)."""
        _check_keys(d, ("backend", "solver", "status", "objective_numpy"), "certificate")
        floats = ("objective_solver", "primal_objective", "dual_objective", "gap", "residual")
        engine = d.get("engine")  # absent in dictionaries written before engines existed
        return cls(backend=_read_str(d["backend"], "backend"),
                   solver=_read_str(d["solver"], "solver"),
                   status=_read_str(d["status"], "status"),
                   objective_numpy=_read_float(d["objective_numpy"], "objective_numpy", False),
                   engine=None if engine is None else _read_str(engine, "engine"),
                   **{k: _read_float(d.get(k), k) for k in floats})

    def __str__(self):
        # numpy is the default engine: named only when the products ran elsewhere
        on = "" if self.engine in (None, "numpy") else f" on {self.engine}"
        parts = [f"{self.backend}/{self.solver}{on}: {self.status}",
                 f"objective {self.objective_numpy:.10g} (numpy)"]
        if self.objective_solver is not None:
            parts.append(f"{self.objective_solver:.10g} (solver), discrepancy "
                         f"{self.discrepancy:.2e}")
        if self.gap is not None:
            parts.append(f"duality gap {self.gap:.2e}")
        if self.residual is not None:
            parts.append(f"residual {self.residual:.2e}")
        return "; ".join(parts)


@dataclass(frozen=True)
class Result:
    """A solution of an AdversarialProblem.

    ``objective`` is always the problem's objective recomputed in numpy at (coef,
    intercept): the robust objective of an AdversarialProblem, or the penalised
    likelihood mean loss + lam P(beta) of ``penalized_fit``; ``certificate`` carries the
    solver's own evidence.

    Optional attributes (None where they do not apply):

    lam : float
        The penalty level of a penalised-likelihood fit (``penalized_fit``).
    n_lla_steps : int
        Number of local-linear-approximation steps (non-convex penalties, ``lla_solve``,
        ``adaptive_fgsm``); ``certificate`` is then that of the last convex step.
    lla_objectives : tuple of float
        The true objective at the starting point and after each LLA step.
    weights : ndarray
        The weighted-L1 weights of the last LLA step / the adaptive weights (inf marks
        a coefficient pinned at 0).
    engine : str
        Where the products with X ran: "numpy", "scipy.sparse", "dask", "cupy", "torch",
        or another array API namespace such as "array_api_strict" (``fgsm_cvx.engine``).

    Examples
    --------
    >>> import numpy as np, fgsm_cvx as fc
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 3))
    >>> y = X @ [1.0, 0.0, -2.0] + 0.5 * rng.standard_normal(100)
    >>> res = fc.solve(fc.AdversarialProblem(X, y, eps=0.05))
    >>> res.coef.round(2), res.status, res.backend
    (array([ 0.97, -0.05, -2.06]), 'optimal', 'cvxpy')
    >>> bool(res.certificate.suboptimality_bound < 1e-6)
    True
    >>> fc.Result.from_dict(res.to_dict()).objective == res.objective
    True
    """

    coef: np.ndarray
    intercept: float
    objective: float
    status: str
    backend: str
    solver: str
    n_iter: int | None
    solve_time: float
    eps: float
    alpha: float
    certificate: Certificate = field(repr=False)
    lam: float | None = None
    n_lla_steps: int | None = None
    lla_objectives: tuple | None = field(default=None, repr=False)
    weights: np.ndarray | None = field(default=None, repr=False)
    engine: str = "numpy"

    def to_dict(self):
        """A JSON-safe dictionary."""
        return {
            "coef": [float(c) for c in self.coef],
            "intercept": float(self.intercept),
            "objective": _json_float(self.objective),
            "status": self.status,
            "backend": self.backend,
            "solver": self.solver,
            "n_iter": self.n_iter,
            "solve_time": float(self.solve_time),
            "eps": float(self.eps),
            "alpha": float(self.alpha),
            "certificate": self.certificate.to_dict(),
            "lam": _json_float(self.lam),
            "n_lla_steps": self.n_lla_steps,
            "lla_objectives": (None if self.lla_objectives is None
                               else [_json_float(v) for v in self.lla_objectives]),
            "weights": (None if self.weights is None
                        else [_json_float(v) for v in self.weights]),
            "engine": self.engine,
        }

    @classmethod
    def from_dict(cls, d):
        """Rebuild from ``to_dict`` output; raises ValueError on a malformed dictionary."""
        keys = ("coef", "intercept", "objective", "status", "backend", "solver", "n_iter",
                "solve_time", "eps", "alpha", "certificate")
        _check_keys(d, keys, "result")
        if not isinstance(d["coef"], list):
            raise ValueError("'coef' must be a list of numbers")
        n_iter = d["n_iter"]
        if n_iter is not None and (isinstance(n_iter, bool) or not isinstance(n_iter, int)):
            raise ValueError(f"'n_iter' must be an integer or null, got {n_iter!r}")
        return cls(coef=np.array([_read_float(c, "coef", False) for c in d["coef"]]),
                   intercept=_read_float(d["intercept"], "intercept", False),
                   objective=_read_float(d["objective"], "objective", False),
                   status=_read_str(d["status"], "status"),
                   backend=_read_str(d["backend"], "backend"),
                   solver=_read_str(d["solver"], "solver"),
                   n_iter=n_iter,
                   solve_time=_read_float(d["solve_time"], "solve_time", False),
                   eps=_read_float(d["eps"], "eps", False),
                   alpha=_read_float(d["alpha"], "alpha", False),
                   certificate=Certificate.from_dict(d["certificate"]),
                   # absent in dictionaries written before engines existed
                   engine=_read_str(d.get("engine", "numpy"), "engine"))


@dataclass(frozen=True)
class Path:
    """Solutions along a grid of attack radii (largest first), from ``adversarial_path``.

    Attributes
    ----------
    eps : ndarray, shape (n_eps,)
        The radii, decreasing.
    coefs : ndarray, shape (n_eps, n_features)
    intercepts, objectives : ndarray, shape (n_eps,)
        Intercepts and robust objectives (recomputed in numpy) at each radius.
    results : list of Result
        The full Results, each with its certificate.
    eps_max : float
        The smallest radius at which the coefficients vanish (``fc.eps_max``).

    Examples
    --------
    >>> import numpy as np, fgsm_cvx as fc
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((100, 3))
    >>> y = X @ [1.0, 0.0, -2.0] + 0.5 * rng.standard_normal(100)
    >>> path = fc.adversarial_path(fc.AdversarialProblem(X, y), n_eps=5)
    >>> len(path), path.n_nonzero.tolist()        # all zero at eps_max, then growing
    (5, [0, 2, 3, 3, 3])
    >>> bool(path.eps[0] == path.eps_max)
    True
    """

    eps: np.ndarray
    coefs: np.ndarray
    intercepts: np.ndarray
    objectives: np.ndarray
    results: list = field(repr=False)
    eps_max: float = np.nan

    def __len__(self):
        return self.eps.shape[0]

    @property
    def certificates(self):
        """The Certificate of each radius, in the order of ``eps``."""
        return [r.certificate for r in self.results]

    @property
    def n_nonzero(self):
        """Number of coefficients with |beta_j| > 1e-8 max(1, max_j |beta_j|) per radius."""
        scale = np.maximum(1.0, np.max(np.abs(self.coefs), axis=1, keepdims=True))
        return np.sum(np.abs(self.coefs) > 1e-8 * scale, axis=1)

    def to_dict(self):
        """A JSON-safe dictionary."""
        return {"eps": [float(e) for e in self.eps],
                "coefs": self.coefs.tolist(),
                "intercepts": [float(b) for b in self.intercepts],
                "objectives": [_json_float(v) for v in self.objectives],
                "eps_max": _json_float(self.eps_max),
                "results": [r.to_dict() for r in self.results]}

    def plot(self, ax=None, feature_names=None, log=True):
        """Draw the coefficient paths beta_j(eps) (matplotlib: ``pip install fgsm_cvx[plot]``).

        Returns the matplotlib Axes.
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("Path.plot needs matplotlib: pip install 'fgsm_cvx[plot]'") from exc
        if feature_names is not None and len(feature_names) != self.coefs.shape[1]:
            raise ValueError(f"feature_names has {len(feature_names)} names for "
                             f"{self.coefs.shape[1]} features")
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        names = feature_names if feature_names is not None else [
            f"x{j}" for j in range(self.coefs.shape[1])]
        for j in range(self.coefs.shape[1]):
            ax.plot(self.eps, self.coefs[:, j], label=str(names[j]) if j < 10 else None)
        if log:
            ax.set_xscale("log")
        ax.axhline(0.0, color="0.6", lw=0.8)
        ax.set_xlabel("eps (attack radius)")
        ax.set_ylabel("coefficient")
        if self.coefs.shape[1] <= 10:
            ax.legend(fontsize="small")
        return ax
