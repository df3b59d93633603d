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
        }
