"""fgsm_cvx: exact adversarial (FGSM) training of generalized linear models.

The attacker's inner maximisation over a perturbation set is closed-form for a linear
predictor, so FGSM training and its generalisations are convex programs. See
docs/theory.md / docs for the mathematics.
"""

from . import attacks, penalties
from .attacks import (
    fgsm_perturbation,
    perturb,
    robust_score,
    robust_scorer,
    worst_case_perturbation,
)
from .estimators import (
    AdversarialClassifier,
    AdversarialClassifierCV,
    AdversarialRegressor,
    AdversarialRegressorCV,
    model_from_dict,
)
from .exceptions import InaccurateSolutionWarning, SolverError, SolverFallbackWarning
from .families import FAMILIES, Binomial, Family, Gaussian, Hinge, Huber, Poisson
from .path import adversarial_path, eps_grid, eps_max
from .perturbations import (
    L1,
    L2,
    PERTURBATIONS,
    Box,
    CustomSet,
    Ellipsoid,
    Group,
    Linf,
    Lp,
    Masked,
    Perturbation,
    WeightedLinf,
)
from .problem import AdversarialProblem, fgsm_objective, robust_objective
from .result import Certificate, Path, Result
from .solve import solve

# isort: split
# penalised-likelihood twin, comparison, sign neutrality, LLA (issue 5)
from .lla import adaptive_fgsm, lla_solve
from .penalized import Comparison, SignNeutrality, compare, penalized_fit, sign_neutrality

# isort: split
# asymptotic theory and simulation; FGSM training as practitioners run it (issue 6)
from . import theory
from .training import TrainingResult, fgsm_train

__version__ = "0.1.0"

__all__ = [
    "AdversarialClassifier",
    "AdversarialClassifierCV",
    "AdversarialProblem",
    "AdversarialRegressor",
    "AdversarialRegressorCV",
    "Binomial",
    "Box",
    "Certificate",
    "CustomSet",
    "Ellipsoid",
    "FAMILIES",
    "Family",
    "Gaussian",
    "Group",
    "Hinge",
    "Huber",
    "InaccurateSolutionWarning",
    "SolverFallbackWarning",
    "L1",
    "L2",
    "Linf",
    "Lp",
    "Masked",
    "PERTURBATIONS",
    "Path",
    "Perturbation",
    "Poisson",
    "Result",
    "SolverError",
    "WeightedLinf",
    "adversarial_path",
    "attacks",
    "eps_grid",
    "eps_max",
    "fgsm_objective",
    "fgsm_perturbation",
    "model_from_dict",
    "penalties",
    "perturb",
    "robust_objective",
    "robust_score",
    "robust_scorer",
    "solve",
    "worst_case_perturbation",
    # penalised-likelihood twin, comparison, sign neutrality, LLA (issue 5)
    "Comparison",
    "SignNeutrality",
    "adaptive_fgsm",
    "compare",
    "lla_solve",
    "penalized_fit",
    "sign_neutrality",
    # asymptotic theory and simulation; FGSM training (issue 6)
    "TrainingResult",
    "fgsm_train",
    "theory",
]
