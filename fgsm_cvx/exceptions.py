"""Exceptions and warnings raised by fgsm_cvx."""


class SolverError(RuntimeError):
    """A solver did not return a usable optimal solution.

    The message names the solver status and what to try next. fgsm_cvx never
    returns a silent zero vector in place of a failed solve.
    """

    def __init__(self, message, status=None, solver=None):
        super().__init__(message)
        self.status = status
        self.solver = solver


class InaccurateSolutionWarning(UserWarning):
    """The solver stopped with a usable but inaccurate solution (see its certificate)."""
