"""The first-order fast path, one file per concern: the epigraph projections
(``epigraph.py``, ``box.py``), the smoothed objective and its derivatives
(``objective.py``), the problem evaluated on its engine (``model.py``), the accelerated
solver with continuation (``solver.py``), the Newton step on the smooth manifold
(``newton.py``), the exact step at the kinks (``kinks.py``) and the exact finishes by a
reduced conic program: the hinge's (``working_set.py``) and the symmetric losses'
(``linear_pieces.py``), both solved by Clarabel from data assembled in ``conic.py``."""

from .solver import shift_set, solve_fast, solve_fast_penalized

__all__ = ["shift_set", "solve_fast", "solve_fast_penalized"]
