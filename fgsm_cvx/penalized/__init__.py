"""Penalised likelihood next to FGSM (docs/theory.md §4): the twin, the certified comparison,
and the sign-neutrality diagnostics (one file per concern)."""

from .compare import Comparison, compare
from .diagnostics import SignNeutrality, sign_neutrality
from .twin import PenalizedProblem, penalized_fit

__all__ = ["Comparison", "PenalizedProblem", "SignNeutrality", "compare", "penalized_fit",
           "sign_neutrality"]
