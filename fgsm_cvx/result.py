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


@dataclass(frozen=True)
class Certificate:
    """Evidence of optimality (THEORY.md §6).

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
        if self.gap is None:
            return None
        return abs(self.gap) / max(1.0, abs(self.objective_numpy))

    def to_dict(self):
        out = {k: (_json_float(v) if not isinstance(v, str) else v)
               for k, v in asdict(self).items()}
        out["discrepancy"] = _json_float(self.discrepancy)
        out["relative_gap"] = _json_float(self.relative_gap)
        out["suboptimality_bound"] = _json_float(self.suboptimality_bound)
        return out

    def __str__(self):
        parts = [f"{self.backend}/{self.solver}: {self.status}",
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

    ``objective`` is always the robust objective recomputed in numpy at (coef,
    intercept); ``certificate`` carries the solver's own evidence.
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
        }
