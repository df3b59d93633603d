"""The first-order fast path, one file per concern: the epigraph projections
(``epigraph.py``, ``box.py``), the smoothed objective and its derivatives
(``objective.py``), the accelerated solver with continuation (``solver.py``), the Newton
step on the smooth manifold (``newton.py``) and the exact step at the kinks
(``kinks.py``)."""

from .solver import shift_set, solve_fast, solve_fast_penalized

__all__ = ["shift_set", "solve_fast", "solve_fast_penalized"]
