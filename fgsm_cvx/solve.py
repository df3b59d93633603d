"""fc.solve: one entry point over the backends."""

from __future__ import annotations

from .cvx import solve_cvxpy
from .problem import AdversarialProblem

BACKENDS = ("auto", "cvxpy", "fast")


def solve(prob, backend="auto", solver="ECOS", tol=1e-8, max_iter=None, verbose=False):
    """Solve an AdversarialProblem and return a certified Result.

    Parameters
    ----------
    prob : AdversarialProblem
    backend : {"auto", "cvxpy", "fast"}
        "cvxpy": the disciplined convex program (exact, interior point).
        "fast": the first-order path for large n (not available yet in this version).
        "auto": currently always cvxpy.
    solver : {"ECOS", "CLARABEL", "SCS"}
        Conic solver for the cvxpy backend (ECOS by default).
    tol : float
        Solver tolerance.
    max_iter : int or None
        Iteration limit.
    """
    if not isinstance(prob, AdversarialProblem):
        raise TypeError(f"prob must be an AdversarialProblem, got {type(prob).__name__}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got '{backend}'")
    if backend == "fast":
        raise NotImplementedError("the fast first-order backend is not available yet; "
                                  "use backend='cvxpy'")
    return solve_cvxpy(prob, solver=solver, tol=tol, max_iter=max_iter, verbose=verbose)
