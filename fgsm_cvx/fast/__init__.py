"""The first-order fast path (one file per concern: epigraph projection, smoothed
objective, accelerated solver)."""

from .solver import shift_set, solve_fast, solve_fast_penalized

__all__ = ["shift_set", "solve_fast", "solve_fast_penalized"]
