"""Exceptions and warnings raised by fgsm_cvx."""


class SolverError(RuntimeError):
    """A solver did not return a usable optimal solution.

    The message names the solver status and what to try next. fgsm_cvx never
    returns a silent zero vector in place of a failed solve.

    Attributes
    ----------
    status : str or None
        The solver's status ("unbounded", "infeasible", "user_limit", ...).
    solver : str or None

    Examples
    --------
    Two separable points: the logistic loss has no minimiser at eps = 0.

    >>> import fgsm_cvx as fc
    >>> prob = fc.AdversarialProblem([[-1.0], [1.0]], [0, 1], family="logistic", eps=0.0)
    >>> try:
    ...     fc.solve(prob)
    ... except fc.SolverError as exc:
    ...     print(exc.status)
    unbounded
    """

    def __init__(self, message, status=None, solver=None):
        super().__init__(message)
        self.status = status
        self.solver = solver


class InaccurateSolutionWarning(UserWarning):
    """The solver stopped with a usable but inaccurate solution (see its certificate).

    Raised only when the package's own certificate does not confirm the point (its
    suboptimality bound is above ``max(1000 tol, 1e-6)`` relative). With
    ``backend="auto"`` the fast path then solves from that point where it covers the
    problem, and its answer replaces the inaccurate one where no worse (a
    ``SolverFallbackWarning`` instead).

    Examples
    --------
    Turn the warning into an error where an inaccurate answer is not acceptable:

    >>> import warnings, fgsm_cvx as fc
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error", fc.InaccurateSolutionWarning)
    ...     res = fc.solve(fc.AdversarialProblem([[0.0], [1.0], [2.0]], [0.0, 1.0, 1.5],
    ...                                          eps=0.1))
    >>> res.status
    'optimal'
    """


class SolverFallbackWarning(UserWarning):
    """The requested solver failed and another one solved the problem.

    Interior-point solvers on exponential cones (Poisson, logistic) occasionally stop
    with a numerical error on well-posed problems. The cvxpy backend then tries the
    other installed solvers in the order ECOS, CLARABEL, SCS (at the same tolerance);
    the Result and its certificate name the solver that succeeded. When every solver
    fails, the first failure is raised as a ``SolverError``. Likewise, where
    ``backend="auto"`` chose the fast path and it ran out of iterations, the cvxpy
    backend solves the problem (``Result.backend`` is then "cvxpy").

    Examples
    --------
    Refuse the fallback where only the requested solver is acceptable:

    >>> import warnings, fgsm_cvx as fc
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error", fc.SolverFallbackWarning)
    ...     res = fc.solve(fc.AdversarialProblem([[0.0], [1.0], [2.0]], [0.0, 1.0, 1.5],
    ...                                          eps=0.1), solver="ECOS")
    >>> res.solver
    'ECOS'
    """
